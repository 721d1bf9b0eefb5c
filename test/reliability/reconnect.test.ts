/**
 * The reconnecting client (`connect(name, { reconnect })`) across real server restarts: its
 * states (`connection.reconnectActor`: active / reconnecting.waiting / reconnecting.connecting /
 * closed; `connection.state` 'reconnecting'), backoff with jitter and a cap, a limit on
 * attempts, asks made while disconnected waiting (bounded queue, bounded time) or failing fast,
 * nothing ever sent twice, and a daemon restarted (SIGTERM, graceful) under a busy client that the
 * client's code never notices except as latency.
 *
 * A reconnect attempt fails at once when nothing listens (only the first connect waits, for up to
 * `connectTimeout`), so the backoff between attempts is what is measured.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ConverseError, ReconnectingConnection } from '../../src/index.js';
import { cleanup, settle, sleep, waitUntil } from '../helpers/cleanup.js';
import { relConnect, relServer, testName, type Proc, type RelConnection } from './support.js';
import { noticeDeadPeerWithin } from '../helpers/transport.js';

afterEach(cleanup);

type Reconnecting = RelConnection & ReconnectingConnection;

/** Every state the logical connection's actor enters, with when (performance.now()). */
function recordStates(connection: Reconnecting): Array<{ state: string; at: number }> {
  const states: Array<{ state: string; at: number }> = [];
  const value = (v: unknown): string => (typeof v === 'string' ? v : Object.entries(v as Record<string, string>).map(([k, s]) => `${k}.${s}`)[0]!);
  states.push({ state: value(connection.reconnectActor.getSnapshot().value), at: performance.now() });
  connection.reconnectActor.subscribe((snapshot) => {
    const state = value(snapshot.value);
    if (states.at(-1)!.state !== state) states.push({ state, at: performance.now() });
  });
  return states;
}

/** The labels a rel-server (printGot) received, in order. */
const labels = (server: Proc): string[] => server.lines.filter((line) => line.event === 'got').map((line) => line.label as string);

async function reconnecting(name: string, reconnect: Record<string, unknown>, connectTimeout = 100): Promise<Reconnecting> {
  return (await relConnect(name, { connectTimeout, reconnect })) as Reconnecting;
}

describe('connect(name, { reconnect })', () => {
  it('goes active → reconnecting.waiting ⇄ reconnecting.connecting → active across a SIGKILLed server, keeping its id, then closed', async () => {
    const name = await testName();
    let { server } = await relServer({}, name);
    const connection = await reconnecting(name, { initialDelay: 50, maxDelay: 200 });
    const states = recordStates(connection);
    const firstActor = connection.actor;
    expect(connection.state).toBe('active');
    expect(await connection.ask({ type: 'add', a: 1, b: 2 })).toBe(3);

    await server.kill('SIGKILL');
    await waitUntil(() => connection.state === 'reconnecting', 'the client is reconnecting');
    await sleep(500); // several failed attempts while the server is away
    expect(connection.state).toBe('reconnecting');
    expect(connection.reconnectActor.getSnapshot().matches('reconnecting')).toBe(true);

    ({ server } = await relServer({}, name));
    await waitUntil(() => connection.state === 'active', 'the client is connected again');
    expect(connection.reconnectActor.getSnapshot().matches('active')).toBe(true);
    expect(connection.reconnects).toBe(1);
    expect(connection.actor).not.toBe(firstActor); // a new physical connection (its own actor) …
    expect(await connection.ask({ type: 'add', a: 2, b: 3 })).toBe(5); // … under the same logical one

    await connection.close();
    expect(connection.state).toBe('closed');
    expect(connection.reconnectActor.getSnapshot().status).toBe('done');
    const seen = states.map((s) => s.state);
    expect(seen[0]).toBe('active');
    expect(seen[1]).toBe('reconnecting.waiting');
    expect(seen[2]).toBe('reconnecting.connecting');
    expect(seen.filter((s) => s === 'reconnecting.connecting').length).toBeGreaterThanOrEqual(2);
    expect(seen.slice(-2)).toEqual(['active', 'closed']);
    for (let i = 1; i < seen.length - 2; i++) expect(seen[i]).toMatch(/^reconnecting\.(waiting|connecting)$/);
  });

  it('backs off exponentially, with jitter, up to the cap', async () => {
    const name = await testName();
    let { server } = await relServer({}, name);
    const policy = { initialDelay: 20, factor: 2, maxDelay: 160, jitter: 0.25 };
    const connection = await reconnecting(name, policy, 50);
    const states = recordStates(connection);
    await server.kill('SIGKILL');
    await sleep(2500);
    ({ server } = await relServer({}, name));
    await waitUntil(() => connection.state === 'active', 'the client is connected again', 5000);

    // The time spent in each `waiting` is the backoff delay for that attempt.
    const delays: number[] = [];
    for (let i = 0; i < states.length - 1; i++) {
      if (states[i]!.state === 'reconnecting.waiting') delays.push(states[i + 1]!.at - states[i]!.at);
    }
    expect(delays.length).toBeGreaterThanOrEqual(8);
    delays.forEach((delay, attempt) => {
      const base = Math.min(policy.maxDelay, policy.initialDelay * policy.factor ** attempt);
      expect(delay, `attempt ${attempt}`).toBeGreaterThanOrEqual(base * (1 - policy.jitter) - 2);
      expect(delay, `attempt ${attempt}`).toBeLessThanOrEqual(base * (1 + policy.jitter) + 40);
    });
    // Capped from the 4th attempt on; the jitter spreads the capped delays out.
    const capped = delays.slice(3);
    expect(Math.max(...capped)).toBeLessThanOrEqual(policy.maxDelay * (1 + policy.jitter) + 40);
    expect(Math.max(...capped) - Math.min(...capped)).toBeGreaterThan(5);
    // Early delays grow.
    expect(delays[2]!).toBeGreaterThan(delays[0]!);
  });

  it('gives up after maxAttempts: closed, and what waited fails with CONNECTION_CLOSED', async () => {
    const { name, server } = await relServer();
    const connection = await reconnecting(name, { maxAttempts: 3, initialDelay: 20, maxDelay: 40 }, 50);
    const states = recordStates(connection);
    await server.kill('SIGKILL');
    await waitUntil(() => connection.state === 'reconnecting', 'reconnecting');
    const waited = settle(connection.ask({ type: 'add', a: 1, b: 1 }, { timeout: 10_000 }));
    await connection.closed;
    expect(connection.state).toBe('closed');
    expect(connection.reconnectActor.getSnapshot().status).toBe('done');
    expect(states.filter((s) => s.state === 'reconnecting.connecting')).toHaveLength(3);
    const outcome = await waited;
    expect(outcome.error?.code).toBe('CONNECTION_CLOSED');
    expect(outcome.error?.message).toMatch(/after 3 attempts/);
    expect((await settle(connection.ask({ type: 'add', a: 1, b: 1 }))).error?.code).toBe('CONNECTION_CLOSED');
    // Closing or destroying what already ended is quiet (no event sent to a stopped actor).
    const warn = vi.spyOn(console, 'warn');
    try {
      await connection.close();
      connection.destroy();
      await sleep(10);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it("whileDisconnected: 'wait' — asks and tells wait in a bounded queue for a bounded time; in-flight asks fail, and nothing is ever sent twice", async () => {
    const name = await testName();
    const first = (await relServer({ printGot: true }, name)).server;
    const connection = await reconnecting(name, { whileDisconnected: 'wait', maxQueue: 3, initialDelay: 50, maxDelay: 100 });

    // An ask in flight when the server dies fails (it may or may not have been handled: the user decides whether to retry).
    const inFlight = settle(connection.ask({ type: 'hang', label: 'in-flight' }, { timeout: 10_000 }));
    await first.waitFor((line) => line.event === 'got' && line.label === 'in-flight');
    const killedAt = performance.now();
    await first.kill('SIGKILL');
    const lost = await inFlight;
    expect(lost.error?.code).toBe('CONNECTION_CLOSED');
    expect(lost.at - killedAt).toBeLessThan(noticeDeadPeerWithin(1000));
    await waitUntil(() => connection.state === 'reconnecting', 'reconnecting');

    // While the server is away: two asks wait, one gives up after its own timeout (never sent).
    const q1 = settle(connection.ask({ type: 'echo', value: 1, label: 'q1' }, { timeout: 5000 }));
    const q2 = settle(connection.ask({ type: 'echo', value: 2, label: 'q2' }, { timeout: 5000 }));
    const timedOut = settle(connection.ask({ type: 'echo', value: 't', label: 'timed-out' }, { timeout: 200 }));
    // The queue is full (maxQueue: 3): the next is refused at once.
    const overflow = await settle(connection.ask({ type: 'echo', value: 4, label: 'overflow' }));
    expect(overflow.error?.code).toBe('CONNECTION_CLOSED');
    expect(overflow.error?.message).toMatch(/maxQueue/);
    const gaveUp = await timedOut;
    expect(gaveUp.error?.code).toBe('TIMEOUT');
    expect(gaveUp.error?.message).toMatch(/never sent/);
    // A slot is free again: a tell waits too.
    const told = settle(connection.tell({ type: 'note', label: 'told-while-away' }));

    const second = (await relServer({ printGot: true }, name)).server;
    expect(await q1).toMatchObject({ ok: true, value: 1 });
    expect(await q2).toMatchObject({ ok: true, value: 2 });
    expect((await told).ok).toBe(true);
    await second.waitFor((line) => line.label === 'told-while-away');
    expect(connection.reconnects).toBe(1);

    // Each message reached a server at most once, and only the ones the user was told succeeded.
    expect(labels(first)).toEqual(['in-flight']);
    expect(labels(second).sort()).toEqual(['q1', 'q2', 'told-while-away']);
  });

  it("whileDisconnected: 'fail' — asks, sends and tells while disconnected fail at once with CONNECTION_CLOSED", async () => {
    const name = await testName();
    const { server } = await relServer({}, name);
    const connection = await reconnecting(name, { whileDisconnected: 'fail', initialDelay: 50 });
    await server.kill('SIGKILL');
    await waitUntil(() => connection.state === 'reconnecting', 'reconnecting');
    const attempts: Array<Promise<unknown>> = [
      connection.ask({ type: 'add', a: 1, b: 1 }, { timeout: 10_000 }),
      connection.send({ type: 'add', a: 1, b: 1 }),
      connection.tell({ type: 'note', label: 'x' }),
    ];
    for (const attempt of attempts) {
      const started = performance.now();
      const outcome = await settle(attempt);
      expect((outcome.error as ConverseError)?.code).toBe('CONNECTION_CLOSED');
      expect(outcome.at - started).toBeLessThan(50);
    }
    await relServer({}, name);
    await waitUntil(() => connection.state === 'active', 'connected again', 5000);
    expect(await connection.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
  });

  it('a daemon restarted (SIGTERM, graceful) under a busy client is invisible to its code except for latency', async () => {
    const name = await testName();
    let { server } = await relServer({ printGot: true }, name);
    const servers = [server];
    const connection = await reconnecting(name, { initialDelay: 20, maxDelay: 200 }, 2000);
    const TOTAL = 600;
    let next = 0;
    let done = 0;
    const slowest = { ms: 0 };
    const worker = async (): Promise<void> => {
      while (next < TOTAL) {
        const i = next++;
        const started = performance.now();
        // Any rejection fails the test: the client's code must not see the restart.
        expect(await connection.ask({ type: 'echo', value: i, label: `m${i}` })).toBe(i);
        slowest.ms = Math.max(slowest.ms, performance.now() - started);
        done++;
        if (i % 3 === 0) await sleep(1);
      }
    };
    const workers = Promise.all([0, 1, 2, 3].map(worker));
    for (const at of [150, 350]) {
      await waitUntil(() => done >= at, `${at} asks done`, 10_000);
      server.child.kill('SIGTERM');
      await server.exited;
      ({ server } = await relServer({ printGot: true }, name));
      servers.push(server);
    }
    await workers;
    expect(done).toBe(TOTAL);
    expect(connection.reconnects).toBe(2);
    expect(connection.state).toBe('active');
    expect(slowest.ms).toBeLessThan(3000);
    // Every message reached exactly one server, exactly once.
    const received = servers.flatMap(labels).sort();
    expect(received).toEqual(Array.from({ length: TOTAL }, (_, i) => `m${i}`).sort());
  });
});
