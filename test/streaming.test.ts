/**
 * Streaming replies: a handler that is an async generator yields many replies, consumed with
 * `for await (const part of connection.stream(event))` — in order, credit-backpressured,
 * cancellable from either side, ending cleanly or with an error code. The last tests run the
 * producer in a real child process (built to dist/ by `npm run build`).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, ConverseError, listen, type Connection, type Handlers, type Server } from '../src/index.js';
import { cleanup, onCleanup, rejectionOf, sleep, socketName, waitUntil } from './helpers/cleanup.js';
import { transportConnectOptions, transportListenOptions, transportName } from './helpers/transport.js';

afterEach(cleanup);

type Api = {
  numbers(e: { count: number; delay?: number }): AsyncIterable<number>;
  forever(): AsyncIterable<number>;
  failing(e: { after: number }): AsyncIterable<string>;
  plain(e: { value: string }): string;
  drip(e: { gap: number; count: number }): AsyncIterable<number>;
};

/** A server and a client on the test transport (a local socket, or tls:// / nats://: helpers/transport.ts). */
async function setUp(handlers: Handlers<Api, any>): Promise<{ server: Server<Api>; client: Connection<any, Api>; name: string }> {
  const server = await listen<Api>((await transportName()) ?? socketName(), { handlers, ...transportListenOptions() });
  onCleanup(() => server.close({ timeout: 1000 }));
  const name = server.name;
  const client = await connect<Api>(name, transportConnectOptions());
  onCleanup(() => client.close({ timeout: 1000 }));
  return { server, client, name };
}

/** What a generator handler went through. */
class Probe {
  yielded = 0;
  finallyRan = false;
  aborted: unknown = undefined;
  watch(signal: AbortSignal): void {
    signal.addEventListener('abort', () => (this.aborted = signal.reason), { once: true });
  }
}

async function* count(n: number, probe?: Probe, delay = 0): AsyncGenerator<number> {
  try {
    for (let i = 0; i < n; i++) {
      if (delay > 0) await sleep(delay);
      if (probe) probe.yielded++;
      yield i;
    }
  } finally {
    if (probe) probe.finallyRan = true;
  }
}

describe('streaming replies', () => {
  it('many items arrive in order, then the loop ends cleanly', async () => {
    const { client } = await setUp({ numbers: ({ count: n }, ctx) => (expect(ctx.streaming).toBe(true), count(n)) });
    const items: number[] = [];
    for await (const item of client.stream({ type: 'numbers', count: 2000 })) items.push(item);
    expect(items).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    // A second stream on the same connection, and an empty one.
    const few: number[] = [];
    for await (const item of client.stream({ type: 'numbers', count: 3 }, { window: 1 })) few.push(item);
    expect(few).toEqual([0, 1, 2]);
    const none: number[] = [];
    for await (const item of client.stream({ type: 'numbers', count: 0 })) none.push(item);
    expect(none).toEqual([]);
    expect(client.pendingAsks).toBe(0);
  });

  it('several streams on one connection interleave without mixing', async () => {
    const { client } = await setUp({ numbers: ({ count: n, delay }) => count(n, undefined, delay ?? 0) });
    const collect = async (n: number, delay: number): Promise<number[]> => {
      const out: number[] = [];
      for await (const item of client.stream({ type: 'numbers', count: n, delay }, { window: 3 })) out.push(item);
      return out;
    };
    const [a, b, c] = await Promise.all([collect(30, 1), collect(50, 0), collect(10, 3)]);
    expect(a).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(b).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(c).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });

  for (const window of [1, 4, 16]) {
    it(`backpressure: the producer is never more than window=${window} items ahead of the consumer`, async () => {
      const probe = new Probe();
      const { client } = await setUp({ numbers: ({ count: n }) => count(n, probe) });
      let consumed = 0;
      let maxAhead = 0;
      for await (const item of client.stream({ type: 'numbers', count: 60 }, { window })) {
        expect(item).toBe(consumed);
        consumed++;
        // A slow consumer: give the producer every chance to run ahead.
        await sleep(3);
        maxAhead = Math.max(maxAhead, probe.yielded - consumed);
      }
      expect(consumed).toBe(60);
      expect(maxAhead).toBeLessThanOrEqual(window);
      // …and it does run ahead, up to the window (the stream is not one-at-a-time).
      expect(maxAhead).toBeGreaterThanOrEqual(Math.max(0, window - 1));
    });
  }

  it('backpressure holds a fast producer: with an unread stream it stops after `window` items', async () => {
    const probe = new Probe();
    const { client } = await setUp({ forever: (_e, ctx) => (probe.watch(ctx.signal), count(Infinity, probe)) });
    const stream = client.stream({ type: 'forever' }, { window: 8 });
    expect((await stream.next()).value).toBe(0);
    await sleep(100);
    // One taken, at most 8 in flight (credit is granted back in batches of half the window).
    expect(probe.yielded).toBeLessThanOrEqual(9);
    expect(probe.yielded).toBeGreaterThanOrEqual(8);
    await stream.return!();
    await waitUntil(() => probe.finallyRan, 'the generator finished');
  });

  it('a slow consumer is not a slow producer: a full window does not time out', async () => {
    const { client } = await setUp({ numbers: ({ count: n }) => count(n) });
    const items: number[] = [];
    // Each item takes the consumer twice the stream's timeout, while the producer waits for credit.
    // (The timeout leaves a busy machine room to deliver the first item.)
    for await (const item of client.stream({ type: 'numbers', count: 4 }, { window: 2, timeout: 500 })) {
      items.push(item);
      await sleep(1000);
    }
    expect(items).toEqual([0, 1, 2, 3]);
  });

  it('breaking out of the loop cancels the handler: ctx.signal aborts and the generator’s finally runs', async () => {
    const probe = new Probe();
    const { client } = await setUp({ forever: (_e, ctx) => (probe.watch(ctx.signal), count(Infinity, probe)), plain: ({ value }) => value });
    const items: number[] = [];
    for await (const item of client.stream({ type: 'forever' }, { window: 4 })) {
      items.push(item);
      if (items.length === 3) break;
    }
    expect(items).toEqual([0, 1, 2]);
    await waitUntil(() => probe.finallyRan && probe.aborted !== undefined, 'the producer cancelled');
    expect((probe.aborted as ConverseError).code).toBe('ABORTED');
    const stopped = probe.yielded;
    await sleep(50);
    expect(probe.yielded).toBe(stopped);
    expect(client.pendingAsks).toBe(0);
    // The connection carries on.
    expect(await client.ask({ type: 'plain', value: 'still here' })).toBe('still here');
  });

  it('a handler blocked inside the generator (not at a yield) sees ctx.signal abort when the consumer breaks', async () => {
    const probe = new Probe();
    const { client } = await setUp({
      forever: async function* (_e, ctx) {
        probe.watch(ctx.signal);
        try {
          yield 1;
          // Waits for something that never comes, unless cancelled.
          await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
          yield 2;
        } finally {
          probe.finallyRan = true;
        }
      },
    });
    for await (const item of client.stream({ type: 'forever' })) {
      expect(item).toBe(1);
      break;
    }
    await waitUntil(() => probe.finallyRan, 'the generator finished');
    expect((probe.aborted as ConverseError).code).toBe('ABORTED');
  });

  it('an AbortSignal cancels the stream: the loop throws ABORTED and the handler is told', async () => {
    const probe = new Probe();
    const { client } = await setUp({ forever: (_e, ctx) => (probe.watch(ctx.signal), count(Infinity, probe, 2)) });
    const controller = new AbortController();
    const items: number[] = [];
    const error = await rejectionOf(
      (async () => {
        for await (const item of client.stream({ type: 'forever' }, { signal: controller.signal })) {
          items.push(item);
          if (items.length === 5) controller.abort();
        }
      })(),
    );
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('ABORTED');
    expect(items.length).toBeGreaterThanOrEqual(5);
    await waitUntil(() => probe.finallyRan && probe.aborted !== undefined, 'the producer cancelled');
  });

  it('the producer ends the stream with an error: the items before it arrive, then the loop throws REMOTE_ERROR with its code', async () => {
    const { client } = await setUp({
      failing: async function* ({ after }) {
        for (let i = 0; i < after; i++) yield `item ${i}`;
        throw Object.assign(new Error('the disk is full'), { code: 'DISK_FULL' });
      },
    });
    const items: string[] = [];
    const error = await rejectionOf(
      (async () => {
        for await (const item of client.stream({ type: 'failing', after: 3 })) items.push(item);
      })(),
    );
    expect(items).toEqual(['item 0', 'item 1', 'item 2']);
    expect(error.code).toBe('REMOTE_ERROR');
    expect(error.remote).toEqual({ name: 'Error', message: 'the disk is full', code: 'DISK_FULL' });
  });

  it('the producer can stop early on its own: returning ends the stream cleanly', async () => {
    const { client } = await setUp({
      numbers: async function* ({ count: n }) {
        for (let i = 0; ; i++) {
          if (i === n) return; // the producer decides it is done
          yield i;
        }
      },
    });
    const items: number[] = [];
    for await (const item of client.stream({ type: 'numbers', count: 4 })) items.push(item);
    expect(items).toEqual([0, 1, 2, 3]);
  });

  it('a handler that throws before yielding anything (or rejects) ends the loop with REMOTE_ERROR', async () => {
    const { client } = await setUp({
      failing: () => {
        throw new Error('refused up front');
      },
      numbers: async () => {
        throw new Error('rejected up front');
      },
    });
    const first = await rejectionOf(client.stream({ type: 'failing', after: 0 }).next());
    expect(first.code).toBe('REMOTE_ERROR');
    expect(first.remote.message).toBe('refused up front');
    const second = await rejectionOf(client.stream({ type: 'numbers', count: 1 }).next());
    expect(second.remote.message).toBe('rejected up front');
  });

  it('TIMEOUT between items: a producer slower than `timeout` ends the loop with TIMEOUT, and is told to stop', async () => {
    const probe = new Probe();
    const { client } = await setUp({
      drip: async function* ({ gap, count: n }, ctx) {
        probe.watch(ctx.signal);
        try {
          for (let i = 0; i < n; i++) {
            if (i > 0) await sleep(gap);
            probe.yielded++;
            yield i;
          }
        } finally {
          probe.finallyRan = true;
        }
      },
    });
    // Under the timeout between items, however long the whole stream takes: fine.
    const steady: number[] = [];
    for await (const item of client.stream({ type: 'drip', gap: 40, count: 6 }, { timeout: 150 })) steady.push(item);
    expect(steady).toEqual([0, 1, 2, 3, 4, 5]);

    probe.finallyRan = false;
    const items: number[] = [];
    const error = await rejectionOf(
      (async () => {
        for await (const item of client.stream({ type: 'drip', gap: 400, count: 3 }, { timeout: 100 })) items.push(item);
      })(),
    );
    expect(error.code).toBe('TIMEOUT');
    // Before the next item (400 ms later) arrived: the 100 ms timeout between items fired, not the
    // stream's end. An order, not a stopwatch (every timer is late on a busy machine).
    expect(items).toEqual([0]);
    await waitUntil(() => probe.finallyRan, 'the producer stopped');
    expect((probe.aborted as ConverseError | undefined)?.code).toBe('ABORTED');
  });

  it('CONNECTION_CLOSED when the server side goes away mid-stream (no waiting for a timeout)', async () => {
    const { server, client } = await setUp({ forever: () => count(Infinity, undefined, 5) });
    const items: number[] = [];
    const started = performance.now();
    const error = await rejectionOf(
      (async () => {
        for await (const item of client.stream({ type: 'forever' }, { timeout: 10_000 })) {
          items.push(item);
          if (items.length === 3) for (const connection of server.connections.values()) connection.destroy();
        }
      })(),
    );
    expect(error.code).toBe('CONNECTION_CLOSED');
    expect(items.length).toBeGreaterThanOrEqual(3);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  for (const how of ['destroy', 'close'] as const) {
    it(`the asker going away (${how}) stops a producer that waits for credit: its signal aborts and its finally runs`, async () => {
      const probe = new Probe();
      const { client } = await setUp({ forever: (_e, ctx) => (probe.watch(ctx.signal), count(Infinity, probe)) });
      const stream = client.stream({ type: 'forever' }, { window: 2 });
      expect((await stream.next()).value).toBe(0);
      await waitUntil(() => probe.yielded >= 2, 'the window filled');
      // The consumer neither reads on nor breaks out: the producer waits for credit.
      if (how === 'destroy') client.destroy();
      else await client.close({ timeout: 100 });
      await waitUntil(() => probe.finallyRan, 'the producer stopped');
      expect(probe.aborted).toBeDefined();
      expect(probe.yielded).toBeLessThanOrEqual(3);
    });
  }

  it('ask() on a streaming handler fails with an error that says to use stream(); the generator is closed', async () => {
    const probe = new Probe();
    const { client } = await setUp({ numbers: ({ count: n }, ctx) => (expect(ctx.streaming).toBe(false), count(n, probe)) });
    const error = await rejectionOf(client.ask({ type: 'numbers', count: 3 }) as Promise<unknown>);
    expect(error.code).toBe('REMOTE_ERROR');
    expect(error.remote.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('stream()');
    expect(probe.yielded).toBe(0);
  });

  it('stream() on a plain handler yields its one reply', async () => {
    const { client } = await setUp({ plain: ({ value }) => value.toUpperCase() });
    const items: string[] = [];
    for await (const item of client.stream({ type: 'plain', value: 'one' })) items.push(item);
    expect(items).toEqual(['ONE']);
  });

  it('stream() on a message answered through iteration (no handlers) yields the one reply', async () => {
    const name = socketName();
    const server = await listen<Api>(name);
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect<Api>(name);
    onCleanup(() => client.close({ timeout: 1000 }));
    const connection = await server.accept();
    void (async () => {
      for await (const message of connection) if (message.event.type === 'plain') await message.reply(`got ${message.event.value}`);
    })();
    const items: string[] = [];
    for await (const item of client.stream({ type: 'plain', value: 'x' })) items.push(item);
    expect(items).toEqual(['got x']);
  });

  it('stream() on a closed connection throws CONNECTION_CLOSED from the first next()', async () => {
    const { client } = await setUp({ plain: ({ value }) => value });
    await client.close();
    const error = await rejectionOf(client.stream({ type: 'plain', value: 'x' }).next());
    expect(error.code).toBe('CONNECTION_CLOSED');
  });

  it('a graceful server close lets a finite stream finish before the connection closes', async () => {
    const { server, client } = await setUp({ numbers: ({ count: n }) => count(n, undefined, 10) });
    const items: number[] = [];
    const consuming = (async () => {
      for await (const item of client.stream({ type: 'numbers', count: 10 })) items.push(item);
    })();
    await waitUntil(() => items.length >= 2, 'the stream started');
    await server.close({ timeout: 3000 });
    await consuming;
    expect(items).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });
});

// ── Across a real child process ────────────────────────────────────────────────────────────

const distIndex = fileURLToPath(new URL('../dist/src/index.js', import.meta.url));

/** A streaming server in a child process; prints JSON lines (ready, finally, aborted). */
const childServer = `
import { listen } from ${JSON.stringify(distIndex)};
const print = (line) => process.stdout.write(JSON.stringify(line) + '\\n');
const server = await listen(process.argv[1], {
  handlers: {
    forever: async function* (_event, ctx) {
      ctx.signal.addEventListener('abort', () => print({ event: 'aborted', code: ctx.signal.reason?.code }), { once: true });
      let i = 0;
      try {
        for (;;) {
          await new Promise((resolve) => setTimeout(resolve, 2));
          yield i++;
        }
      } finally {
        print({ event: 'finally', yielded: i });
      }
    },
  },
});
print({ ready: true, pid: process.pid });
process.stdin.resume();
process.stdin.on('end', () => void server.close().then(() => process.exit(0)));
`;

async function startChildServer(name: string): Promise<{ lines: Array<Record<string, unknown>>; waitFor(event: string): Promise<Record<string, unknown>>; kill(): Promise<void> }> {
  if (!fs.existsSync(distIndex)) throw new Error(`${distIndex} is missing: run \`npm run build\` first`);
  const child = spawn(process.execPath, ['--input-type=module', '-e', childServer, name], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  onCleanup(kill);
  const lines: Array<Record<string, unknown>> = [];
  const listeners: Array<() => void> = [];
  createInterface({ input: child.stdout }).on('line', (text) => {
    lines.push(JSON.parse(text) as Record<string, unknown>);
    for (const listener of listeners.slice()) listener();
  });
  const waitFor = (event: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const line = lines.find((l) => l.event === event || (event === 'ready' && l.ready === true));
        if (line !== undefined) resolve(line);
        return line !== undefined;
      };
      if (check()) return;
      const timer = setTimeout(() => reject(new Error(`no "${event}" line from the child; got ${JSON.stringify(lines)}`)), 60_000); // generous: a busy machine
      const listener = (): void => {
        if (check()) {
          clearTimeout(timer);
          listeners.splice(listeners.indexOf(listener), 1);
        }
      };
      listeners.push(listener);
      void exited.then(() => {
        clearTimeout(timer);
        if (!check()) reject(new Error(`the child exited before a "${event}" line; got ${JSON.stringify(lines)}`));
      });
    });
  await waitFor('ready');
  return { lines, waitFor, kill };
}

describe('streaming across processes', () => {
  it('the consumer breaking out cancels the producer in the other process (its signal aborts, its finally runs)', async () => {
    const name = socketName();
    const child = await startChildServer(name);
    const client = await connect(name);
    onCleanup(() => client.close({ timeout: 1000 }));
    const items: number[] = [];
    for await (const item of client.stream({ type: 'forever' }, { window: 4 })) {
      items.push(item as number);
      if (items.length === 20) break;
    }
    expect(items).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(await child.waitFor('aborted')).toMatchObject({ code: 'ABORTED' });
    const finished = await child.waitFor('finally');
    // It stopped near where the consumer did: at most a window (and the batch in flight) beyond.
    expect(finished.yielded as number).toBeLessThanOrEqual(20 + 4 + 1);
    expect(await client.ask({ type: 'missing' }).catch((error: ConverseError) => error.code)).toBe('NO_HANDLER');
  });

  it('CONNECTION_CLOSED at once when the producing process is killed mid-stream', async () => {
    const name = socketName();
    const child = await startChildServer(name);
    const client = await connect(name);
    onCleanup(() => client.close({ timeout: 1000 }));
    const items: number[] = [];
    let killedAt = 0;
    const error = await rejectionOf(
      (async () => {
        for await (const item of client.stream({ type: 'forever' }, { timeout: 20_000 })) {
          items.push(item as number);
          if (items.length === 10) {
            killedAt = performance.now();
            void child.kill();
          }
        }
      })(),
    );
    expect(error.code).toBe('CONNECTION_CLOSED');
    expect(performance.now() - killedAt).toBeLessThan(10_000); // not the 20 s timeout (generous: a busy machine is slow)
    expect(items.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(client.state).toBe('closed');
  });
});
