/**
 * Faults: clients killed (SIGKILL) mid-ask, mid-frame and mid-handshake leave nothing behind in
 * the server process; a server killed under many clients fails every pending ask at once;
 * handlers that throw anything at all give REMOTE_ERROR and never harm the connection.
 *
 * The 1,000-kill version of the first test is test/stress/kills.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ConverseError } from '../../src/index.js';
import { cleanup, settle, waitUntil } from '../helpers/cleanup.js';
import { startClients, startServer } from '../helpers/scenario.js';
import { killVictims, relClient, relConnect, relServer, statsOf, statsUntil, type Proc } from './support.js';

afterEach(cleanup);

describe('clients killed with SIGKILL', () => {
  it('mid-ask, mid-frame and mid-handshake: child actors go away, handlers see ctx.signal abort, fds and heap return to baseline', async () => {
    const { name, server } = await relServer();
    // Warm up (lazy code paths, JIT, the watchdog timer), then take the baseline.
    await killVictims(name, 4);
    const baseline = await statsUntil(server, (s) => s.connections === 0 && s.cores === 0 && s.children === 0, 'the warm-up victims are gone', 60_000);

    const KILLS = 24;
    await killVictims(name, KILLS);
    const after = await statsUntil(
      server,
      (s) => s.cores === 0 && s.children === 0 && s.live === 0 && s.fds <= baseline.fds,
      'every victim’s connection is gone and its fds closed',
      60_000,
    );
    expect(after.connections).toBe(0);
    expect(after.perUid).toBe(0);
    expect(after.fds).toBe(baseline.fds);
    // Each victim had one `hang` in flight: every handler that started saw its signal abort.
    expect(after.hangStarted - baseline.hangStarted).toBeGreaterThanOrEqual(KILLS / 2);
    expect(after.hangAborted).toBe(after.hangStarted);
    // Half a frame then EOF is reported as such; half a handshake fails the handshake.
    expect((after.errors.PROTOCOL_ERROR ?? 0) - (baseline.errors.PROTOCOL_ERROR ?? 0)).toBe(KILLS);
    expect((after.errors.HANDSHAKE_FAILED ?? 0) - (baseline.errors.HANDSHAKE_FAILED ?? 0)).toBe(KILLS);
    // 72 connections came and went; what they held is released (generous bound: a leak of one
    // connection's state per kill would be several hundred KiB).
    expect(after.heap - baseline.heap).toBeLessThan(2 * 1024 * 1024);

    // The server still serves.
    const client = await relConnect(name);
    expect(await client.ask({ type: 'add', a: 1, b: 2 })).toBe(3);
  }, 180_000); // 28 processes started one after another: many seconds on a busy machine
});

describe('handlers of tells', () => {
  it('an async tell handler still running sees ctx.signal abort when its client is SIGKILLed', async () => {
    const aborted: string[] = [];
    const { name, server } = await startServer({
      handlers: {
        log: ({ line }, { signal }) =>
          new Promise<void>((resolve) =>
            signal.addEventListener('abort', () => {
              aborted.push(line);
              resolve();
            }),
          ),
      },
    });
    const { clients } = await startClients(server, name, 1);
    await clients[0]!.request({ op: 'tell', event: { type: 'log', line: 'working on it' } });
    await waitUntil(() => server.connections.size === 1 && [...server.connections.values()][0]!.stats.messagesIn >= 1, 'the tell arrived');
    await clients[0]!.kill('SIGKILL');
    await waitUntil(() => aborted.length === 1, 'the tell handler’s signal aborted');
    expect(aborted).toEqual(['working on it']);
  });
});

describe('the server killed with SIGKILL', () => {
  it('every pending ask on every client (3 processes × 3 connections × 4 asks, and 2 in-process clients) rejects with CONNECTION_CLOSED at once', async () => {
    const { name, server } = await relServer();
    const clients: Proc[] = await Promise.all([0, 1, 2].map(() => relClient(name, { connections: 3 })));
    for (const client of clients) expect(client.first).toMatchObject({ connected: 3, failures: [] });
    const tags = clients.map((client, i) => {
      const tag = `pending-${i}`;
      client.send({ op: 'ask', tag, event: { type: 'hang' }, count: 4, timeout: 30_000 });
      return tag;
    });
    await Promise.all(clients.map((client, i) => client.waitFor((line) => line.sentTag === tags[i])));

    const inProcess = await Promise.all([0, 1].map(() => relConnect(name)));
    const local = inProcess.flatMap((connection) => Array.from({ length: 5 }, () => settle(connection.ask({ type: 'hang' }, { timeout: 30_000 }))));
    await statsUntil(server, (s) => s.hangStarted === 3 * 3 * 4 + 2 * 5, 'all 46 asks are being handled');

    const killedAt = Date.now();
    const started = performance.now();
    await server.kill('SIGKILL');

    const outcomes = await Promise.all(local);
    for (const outcome of outcomes) {
      expect(outcome.ok).toBe(false);
      expect((outcome.error as ConverseError).code).toBe('CONNECTION_CLOSED');
      expect(outcome.at - started).toBeLessThan(10_000); // not the 30 s timeout (generous: a busy machine is slow)
    }
    for (const [i, client] of clients.entries()) {
      const { results } = await client.waitFor((line) => line.tag === tags[i]);
      expect(results).toHaveLength(12);
      for (const result of results as Array<{ ok: boolean; code: string; at: number }>) {
        expect(result).toMatchObject({ ok: false, code: 'CONNECTION_CLOSED' });
        expect(result.at - killedAt).toBeLessThan(10_000); // not the 30 s timeout (generous: a busy machine is slow)
      }
    }
    for (const connection of inProcess) {
      await connection.closed;
      expect(connection.state).toBe('closed');
    }
  });
});

describe('handlers that throw or reject', () => {
  const KINDS = ['error', 'string', 'undefined', 'null', 'number', 'object', 'nullPrototype', 'symbolName', 'throwingGetter', 'proxy', 'huge', 'cyclic'];

  it('whatever they throw (Errors, primitives, hostile objects), synchronously or not: REMOTE_ERROR, and the connection and server carry on', async () => {
    const { name, server } = await relServer();
    const connection = await relConnect(name);
    const id = connection.id;
    for (const async of [false, true]) {
      for (const kind of KINDS) {
        const outcome = await settle(connection.ask({ type: 'throwing', kind, async }, { timeout: 2000 }));
        expect(outcome.ok, `${kind} (async: ${async})`).toBe(false);
        const error = outcome.error as ConverseError;
        expect(error.code, `${kind} (async: ${async}): ${error.message}`).toBe('REMOTE_ERROR');
        expect(typeof error.remote?.name).toBe('string');
        expect(typeof error.remote?.message).toBe('string');
        if (kind === 'error') expect(error.remote).toEqual({ name: 'RangeError', message: 'out of range', code: 'E_RANGE' });
        if (kind === 'string') expect(error.remote?.message).toBe('a plain string');
        if (kind === 'symbolName') expect(error.remote).toMatchObject({ name: 'Symbol(weird)', message: 'named by a symbol' });
        expect(await connection.ask({ type: 'add', a: 2, b: 2 })).toBe(4);
      }
    }
    // Same connection throughout, still active; the server process is alive and reported no connection error.
    expect(connection.id).toBe(id);
    expect(connection.state).toBe('active');
    const stats = await statsOf(server);
    expect(stats.connections).toBe(1);
    expect(stats.errors).toEqual({});
    expect(server.child.exitCode).toBeNull();
  });
});
