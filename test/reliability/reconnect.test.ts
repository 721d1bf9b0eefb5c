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

/**
 * Every state the logical connection's actor enters, with when (performance.now()); on entering
 * `reconnecting.waiting`, the backoff the machine chose for that wait (context.delay).
 */
function recordStates(connection: Reconnecting): Array<{ state: string; at: number; delay?: number }> {
  const states: Array<{ state: string; at: number; delay?: number }> = [];
  const value = (v: unknown): string => (typeof v === 'string' ? v : Object.entries(v as Record<string, string>).map(([k, s]) => `${k}.${s}`)[0]!);
  states.push({ state: value(connection.reconnectActor.getSnapshot().value), at: performance.now() });
  connection.reconnectActor.subscribe((snapshot) => {
    const state = value(snapshot.value);
    if (states.at(-1)!.state !== state) states.push({ state, at: performance.now(), ...(state === 'reconnecting.waiting' ? { delay: snapshot.context.delay } : {}) });
  });
  return states;
}

/**
 * The outcome of `promise` if it settles before the event loop's next turn (setImmediate), else
 * 'pending'. "Fails at once" as an order, not a stopwatch: on a busy machine every timer is late,
 * but a promise rejected on the spot still settles before the next turn.
 */
async function settledThisTurn<T>(promise: Promise<T>): Promise<{ ok: boolean; value?: T; error?: any } | 'pending'> {
  return Promise.race([settle(promise), new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);
}

/** The labels a rel-server (printGot) received, in order. */
const labels = (server: Proc): string[] => server.lines.filter((line) => line.event === 'got').map((line) => line.label as string);

// connectTimeout bounds only the first connect (to a server that listens: generous for a busy
// machine); a reconnect attempt fails at once when nothing listens.
async function reconnecting(name: string, reconnect: Record<string, unknown>, connectTimeout = 30_000): Promise<Reconnecting> {
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
    // Several failed attempts while the server is away (counted, not timed).
    await waitUntil(() => states.filter((s) => s.state === 'reconnecting.connecting').length >= 2, 'two attempts failed', 30_000);
    expect(connection.state).toBe('reconnecting');
    expect(connection.reconnectActor.getSnapshot().matches('reconnecting')).toBe(true);

    ({ server } = await relServer({}, name));
    await waitUntil(() => connection.state === 'active', 'the client is connected again', 30_000);
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

  it('backs off exponentially, with jitter, up to the cap; each wait lasts at least the delay chosen', async () => {
    const name = await testName();
    let { server } = await relServer({}, name);
    const policy = { initialDelay: 20, factor: 2, maxDelay: 160, jitter: 0.25 };
    const connection = await reconnecting(name, policy);
    const states = recordStates(connection);
    await server.kill('SIGKILL');
    const waits = (): Array<{ state: string; at: number; delay?: number }> => states.filter((s) => s.state === 'reconnecting.waiting');
    // Counted, not timed: however slow the machine, wait for 9 failed attempts.
    await waitUntil(() => waits().length >= 9, 'nine waits between attempts', 60_000);
    ({ server } = await relServer({}, name));
    await waitUntil(() => connection.state === 'active', 'the client is connected again', 30_000);

    // The delay chosen for each attempt (the machine's context.delay): exact bounds, no clock involved.
    const chosen = waits().map((s) => s.delay!);
    chosen.forEach((delay, attempt) => {
      const base = Math.min(policy.maxDelay, policy.initialDelay * policy.factor ** attempt);
      expect(delay, `attempt ${attempt}`).toBeGreaterThanOrEqual(base * (1 - policy.jitter));
      expect(delay, `attempt ${attempt}`).toBeLessThanOrEqual(base * (1 + policy.jitter));
    });
    // It grows (with jitter 0.25 each step of ×2 outgrows the jitter) …
    for (let attempt = 1; attempt <= 3; attempt++) expect(chosen[attempt]!, `attempt ${attempt}`).toBeGreaterThan(chosen[attempt - 1]!);
    // … up to the cap, from the 4th attempt on; the jitter spreads the capped delays out.
    const capped = chosen.slice(3);
    expect(Math.max(...capped)).toBeLessThanOrEqual(policy.maxDelay * (1 + policy.jitter));
    expect(Math.max(...capped) - Math.min(...capped)).toBeGreaterThan(5);

    // The machine waited that long: never less (a timer may fire up to a millisecond early
    // against performance.now()); a busy machine only makes the waits longer, so no upper bound.
    for (let i = 0; i < states.length - 1; i++) {
      if (states[i]!.state !== 'reconnecting.waiting') continue;
      expect(states[i + 1]!.state).toBe('reconnecting.connecting');
      expect(states[i + 1]!.at - states[i]!.at).toBeGreaterThanOrEqual(states[i]!.delay! - 2);
    }
  }, 120_000);

  it('gives up after maxAttempts: closed, and what waited fails with CONNECTION_CLOSED', async () => {
    const { name, server } = await relServer();
    const connection = await reconnecting(name, { maxAttempts: 3, initialDelay: 20, maxDelay: 40 });
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
    // When the socket closes, not at the ask's own 10 s timeout (generous: a busy machine is slow).
    expect(lost.at - killedAt).toBeLessThan(noticeDeadPeerWithin(6000));
    await waitUntil(() => connection.state === 'reconnecting', 'reconnecting');

    // While the server is away: two asks wait, one gives up after its own timeout (never sent).
    // (Generous timeouts: on a busy machine the server takes seconds to come back.)
    const q1 = settle(connection.ask({ type: 'echo', value: 1, label: 'q1' }, { timeout: 60_000 }));
    const q2 = settle(connection.ask({ type: 'echo', value: 2, label: 'q2' }, { timeout: 60_000 }));
    const timedOut = settle(connection.ask({ type: 'echo', value: 't', label: 'timed-out' }, { timeout: 200 }));
    // The queue is full (maxQueue: 3): the next is refused at once.
    const overflow = await settledThisTurn(connection.ask({ type: 'echo', value: 4, label: 'overflow' }));
    if (overflow === 'pending') throw new Error('the ask over maxQueue was not refused at once');
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
    // At once: each has failed before the event loop's next turn (not after any timer).
    for (const attempt of attempts) {
      const outcome = await settledThisTurn(attempt);
      if (outcome === 'pending') throw new Error('not refused at once');
      expect((outcome.error as ConverseError)?.code).toBe('CONNECTION_CLOSED');
    }
    await relServer({}, name);
    await waitUntil(() => connection.state === 'active', 'connected again', 30_000);
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
    const worker = async (): Promise<void> => {
      while (next < TOTAL) {
        const i = next++;
        // Any rejection fails the test: the client's code must not see the restart. The timeout
        // is generous: on a busy machine a restart takes seconds, and latency is not the point here.
        expect(await connection.ask({ type: 'echo', value: i, label: `m${i}` }, { timeout: 60_000 })).toBe(i);
        done++;
        if (i % 3 === 0) await sleep(1);
      }
    };
    const workers = Promise.all([0, 1, 2, 3].map(worker));
    for (const at of [150, 350]) {
      await waitUntil(() => done >= at, `${at} asks done`, 60_000);
      server.child.kill('SIGTERM');
      await server.exited;
      ({ server } = await relServer({ printGot: true }, name));
      servers.push(server);
    }
    await workers;
    expect(done).toBe(TOTAL);
    expect(connection.reconnects).toBe(2);
    expect(connection.state).toBe('active');
    // Every message reached exactly one server, exactly once.
    const received = servers.flatMap(labels).sort();
    expect(received).toEqual(Array.from({ length: TOTAL }, (_, i) => `m${i}`).sort());
  }, 180_000);
});
