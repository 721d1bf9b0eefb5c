/**
 * Graceful shutdown under load: server.close() while 100 asks from 4 client processes are in
 * flight — every one gets its reply, new asks get CONNECTION_CLOSED at once (while the 100 are
 * still held: an order, not a stopwatch), the socket file is gone at the end; with a timeout,
 * stragglers are cut off after it. And the example daemon's
 * SIGTERM handler (examples/daemon.ts) does the same for a real process.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Handlers } from '../../src/index.js';
import type { ClientApi, ServerApi } from '../fixtures/protocol.js';
import type { ClientApi as ExampleClientApi, ServerApi as ExampleServerApi } from '../../examples/protocol.js';
import { cleanup, onCleanup, settle, sleep, socketName, waitUntil } from '../helpers/cleanup.js';
import { connectClient, HandlerLog, serverHandlers, startServer } from '../helpers/scenario.js';
import { relClient, type Proc } from './support.js';

afterEach(cleanup);

type Result = { ok: boolean; value?: unknown; code?: string; at: number };

/** 4 client processes × 5 connections × `perConnection` asks of `event`; resolves once all are written. */
async function hundredAsks(name: string, event: Record<string, unknown>, perConnection = 5): Promise<{ clients: Proc[]; results: Promise<Result[]> }> {
  const clients = await Promise.all([0, 1, 2, 3].map(() => relClient(name, { connections: 5 })));
  const done = clients.map((client, i) => {
    const tag = `many-${i}`;
    client.send({ op: 'ask', tag, event, count: perConnection, timeout: 20_000 });
    return { tag, client };
  });
  await Promise.all(done.map(({ client, tag }) => client.waitFor((line) => line.sentTag === tag)));
  const results = Promise.all(done.map(({ client, tag }) => client.waitFor((line) => line.tag === tag, 20_000))).then((lines) =>
    lines.flatMap((line) => line.results as Result[]),
  );
  results.catch(() => {}); // a test that failed early never awaits it; awaiting it still sees the rejection
  return { clients, results };
}

/**
 * ServerApi handlers whose `slow` asks wait for `gate` instead of a timer: the test decides when
 * they finish, so "refused while the 100 are still in flight" is an order, not a race against
 * the clock (which a busy machine loses).
 */
function gatedHandlers(log: HandlerLog, gate: Promise<void>): Handlers<ServerApi, ClientApi> {
  return {
    ...serverHandlers(log),
    slow: async ({ value }, { signal }) => {
      log.record('slow', signal);
      log.running++;
      try {
        await gate;
        return value;
      } finally {
        log.running--;
      }
    },
  };
}

function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('server.close() under load', () => {
  it('100 asks in flight all get their replies; new asks fail with CONNECTION_CLOSED at once; the socket file is gone', async () => {
    const log = new HandlerLog();
    const handlersDone = gate();
    const { name, server } = await startServer({ handlers: gatedHandlers(log, handlersDone.promise) });
    onCleanup(handlersDone.open);
    const watcher = await connectClient(name); // an in-process client that asks as soon as it sees the server closing
    const { results } = await hundredAsks(name, { type: 'slow', ms: 0, value: 'done' });
    await waitUntil(() => log.running === 100, 'all 100 handlers are running', 30_000);

    let askedWhileClosing: Promise<{ ok: boolean; error?: any; at: number }> | undefined;
    let runningWhenAsked = -1;
    watcher.actor.subscribe((snapshot) => {
      if (snapshot.value !== 'active' && askedWhileClosing === undefined) {
        runningWhenAsked = log.running;
        askedWhileClosing = settle(watcher.ask({ type: 'add', a: 1, b: 1 }, { timeout: 10_000 }));
      }
    });

    const closing = settle(server.close());
    let closeDone = false;
    void closing.then(() => (closeDone = true));
    // A new ask made by the server after close started is refused at once: while all 100
    // handlers are still held at the gate (no time limit; the order is the point) …
    const serverSide = [...server.connections.values()][0]!;
    const refused = await settle(serverSide.ask({ type: 'add', a: 1, b: 2 }, { timeout: 10_000 }));
    expect(refused.error?.code).toBe('CONNECTION_CLOSED');
    expect(log.running).toBe(100);
    // … and so is a new client.
    const late = await settle(connect(name, { connectTimeout: 300 }));
    expect(late.ok).toBe(false);
    expect(['CONNECTION_CLOSED', 'CONNECT_FAILED']).toContain(late.error?.code);

    // The client sees the server closing while the handlers are still held, and its ask is
    // refused then, not after they finish (nor after its own 10 s timeout).
    await waitUntil(() => askedWhileClosing !== undefined, 'the in-process client saw the server closing', 30_000);
    const whileClosing = await askedWhileClosing!;
    expect(whileClosing.error?.code).toBe('CONNECTION_CLOSED');
    expect(runningWhenAsked).toBe(100);
    expect(log.running).toBe(100);

    // close() waits for the handlers in flight; each of the 100 asks gets its reply.
    await sleep(50);
    expect(closeDone).toBe(false);
    handlersDone.open();
    const replies = await results;
    expect(replies).toHaveLength(100);
    expect(replies.every((r) => r.ok && r.value === 'done')).toBe(true);

    expect((await closing).ok).toBe(true);
    expect(fs.existsSync(name)).toBe(false);
    expect(server.connections.size).toBe(0);
    expect(Object.keys(server.actor.getSnapshot().children)).toEqual([]);
    expect(server.actor.getSnapshot().status).toBe('done');
  });

  it('close({ timeout }): asks that finish in time get replies, stragglers are cut off after the timeout with CONNECTION_CLOSED', async () => {
    const log = new HandlerLog();
    const quickDone = gate();
    const { name, server } = await startServer({ handlers: gatedHandlers(log, quickDone.promise) });
    onCleanup(quickDone.open);
    const [quick, stuck] = await Promise.all([
      hundredAsks(name, { type: 'slow', ms: 0, value: 'quick' }, 3), // 60 asks that finish in time
      hundredAsks(name, { type: 'hang' }, 2), // 40 asks that never return
    ]);
    await waitUntil(() => log.running === 60 && log.started.filter((t) => t === 'hang').length === 40, 'all 100 handlers are running', 30_000);

    const CLOSE_TIMEOUT = 1500;
    const started = performance.now();
    const closing = server.close({ timeout: CLOSE_TIMEOUT });
    quickDone.open(); // the 60 finish now, well within the timeout; the 40 never do
    await closing;
    const elapsed = performance.now() - started;
    // Not before the timeout (a timer never fires early) …
    expect(elapsed).toBeGreaterThanOrEqual(CLOSE_TIMEOUT - 50);
    // … and cut off by it, not by the asks' own 20 s timeout (generous: a busy machine is slow).
    expect(elapsed).toBeLessThan(15_000);

    const quickReplies = await quick.results;
    expect(quickReplies).toHaveLength(60);
    expect(quickReplies.every((r) => r.ok && r.value === 'quick')).toBe(true);
    const stuckReplies = await stuck.results;
    expect(stuckReplies).toHaveLength(40);
    expect(stuckReplies.every((r) => !r.ok && r.code === 'CONNECTION_CLOSED')).toBe(true);
    await waitUntil(() => log.aborted.filter((a) => a.type === 'hang').length === 40, 'every hung handler saw its signal abort');
    expect(log.aborted.filter((a) => a.type === 'slow')).toEqual([]);
    expect(fs.existsSync(name)).toBe(false);
    expect(Object.keys(server.actor.getSnapshot().children)).toEqual([]);
  });
});

describe('the example daemon on SIGTERM', () => {
  it('answers the ask in flight, closes, removes its socket file and exits 0', async () => {
    const name = socketName();
    // Built by `npm run build` like the fixtures (CONVERSE_TEST_DIST: another build directory).
    const dist = process.env.CONVERSE_TEST_DIST ?? fileURLToPath(new URL('../../dist', import.meta.url));
    const daemon = spawn(process.execPath, [path.join(dist, 'examples', 'daemon.js'), name], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
    onCleanup(async () => {
      if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
      await exited;
    });
    let stdout = '';
    daemon.stdout.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      daemon.stdout.on('data', (chunk: string) => {
        stdout += chunk;
        if (/^READY /m.test(stdout)) resolve();
      });
      daemon.once('exit', () => reject(new Error(`the daemon exited early: ${stdout}`)));
    });

    let confirmAsked!: () => void;
    const confirming = new Promise<void>((resolve) => (confirmAsked = resolve));
    const connection = await connect<ExampleServerApi, ExampleClientApi>(name, {
      handlers: {
        notify: () => {},
        // Answers slowly: the daemon's `subscribe` handler is still waiting when SIGTERM arrives.
        confirm: async () => {
          confirmAsked();
          await new Promise((resolve) => setTimeout(resolve, 300));
          return true;
        },
      },
    });
    onCleanup(() => connection.destroy());
    const subscribed = settle(connection.ask({ type: 'subscribe', topic: 'news' }, { timeout: 5000 }));
    await confirming;
    daemon.kill('SIGTERM');

    expect(await subscribed).toMatchObject({ ok: true, value: true });
    expect(await exited).toBe(0);
    await connection.closed;
    expect(stdout).toMatch(/SIGTERM: closing[\s\S]*closed; socket file removed; bye/);
    expect(fs.existsSync(name)).toBe(false);
  });
});
