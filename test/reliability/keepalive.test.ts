/**
 * Dead peers: with `keepalive: { interval, timeout }`, a peer process stopped with SIGSTOP is
 * detected within interval + timeout (+ the 100 ms watchdog tick) and its connection closed;
 * pending asks get CONNECTION_CLOSED. Healthy idle peers — with or without keepalive of their
 * own — are never closed by it. Stopped processes are continued (SIGCONT) before they are killed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, settle, sleep } from '../helpers/cleanup.js';
import { startClients, startServer } from '../helpers/scenario.js';
import { connectionErrors, relConnect, relServer, stopProcess } from './support.js';

afterEach(cleanup);

const INTERVAL = 300;
const TIMEOUT = 300;
/** Worst case: silence for `interval`, then the probe's `timeout`, each noticed at the next 100 ms tick; plus scheduling slack. */
const DETECTED_WITHIN = INTERVAL + TIMEOUT + 200 + 400;

describe('keepalive', () => {
  it('the server detects a client process stopped with SIGSTOP, closes it and fails its pending asks; another client is untouched', async () => {
    const { name, server } = await startServer({ keepalive: { interval: INTERVAL, timeout: TIMEOUT } });
    const errors = connectionErrors(server);
    const { clients, connectionOf } = await startClients(server, name, 2);
    const [stopped, healthy] = [clients[0]!, clients[1]!];
    const connection = connectionOf(stopped);
    const pending = settle(connection.ask({ type: 'hang' }, { timeout: 30_000 }));
    await stopped.waitFor((line) => line.event === 'handling' && line.type === 'hang');

    stopProcess(stopped);
    const started = performance.now();
    await connection.closed;
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT - 100);
    expect(elapsed).toBeLessThan(DETECTED_WITHIN);
    const outcome = await pending;
    expect(outcome.error?.code).toBe('CONNECTION_CLOSED');
    expect(outcome.at - started).toBeLessThan(DETECTED_WITHIN);
    expect(connection.closeReason?.code).toBe('CONNECTION_CLOSED');
    expect(connection.closeReason?.message).toMatch(/keepalive/);
    expect(server.connections.size).toBe(1);
    expect(Object.keys(server.actor.getSnapshot().children)).toEqual([connectionOf(healthy).actor.id]);

    // The healthy client (idle all along, answering probes) is still served both ways.
    expect(await healthy.request({ op: 'ask', event: { type: 'add', a: 1, b: 2 } })).toMatchObject({ ok: true, value: 3 });
    expect(await connectionOf(healthy).ask({ type: 'add', a: 3, b: 4 })).toBe(7);
    expect(errors).toEqual([]); // a dead peer is CONNECTION_CLOSED, not an error of the peer's making
  });

  it('a client detects a server process stopped with SIGSTOP: its pending ask rejects with CONNECTION_CLOSED and it closes', async () => {
    const { name, server } = await relServer();
    const connection = await relConnect(name, { keepalive: { interval: INTERVAL, timeout: TIMEOUT } });
    const pending = settle(connection.ask({ type: 'hang' }, { timeout: 30_000 }));
    expect(await connection.ask({ type: 'add', a: 1, b: 1 })).toBe(2); // the hang is in the server by now

    stopProcess(server);
    const started = performance.now();
    const outcome = await pending;
    const elapsed = outcome.at - started;
    expect(outcome.error?.code).toBe('CONNECTION_CLOSED');
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT - 100);
    expect(elapsed).toBeLessThan(DETECTED_WITHIN);
    await connection.closed;
    expect(connection.state).toBe('closed');
    expect(connection.closeReason?.message).toMatch(/keepalive/);
    // New asks fail at once.
    const after = await settle(connection.ask({ type: 'add', a: 1, b: 1 }));
    expect(after.error?.code).toBe('CONNECTION_CLOSED');
  });

  it('healthy idle peers are never closed: a client with keepalive and one without stay connected through many intervals', async () => {
    // Probes every 100 ms; the answer may take up to 2 s (a 100 ms timeout closed a healthy peer
    // whose process was stalled that long on a loaded machine: that is the timeout working).
    const keepalive = { interval: 100, timeout: 2000 };
    const { name, server } = await startServer({ keepalive });
    const errors = connectionErrors(server);
    const withKeepalive = await startClients(server, name, 1, { keepalive });
    const without = await startClients(server, name, 1);
    const inProcess = await relConnect(name, { keepalive });
    await sleep(1500); // 15 intervals of silence
    expect(server.connections.size).toBe(3);
    expect(inProcess.state).toBe('active');
    for (const { clients } of [withKeepalive, without]) {
      expect(await clients[0]!.request({ op: 'state' })).toMatchObject({ state: 'active' });
      expect(await clients[0]!.request({ op: 'ask', event: { type: 'add', a: 2, b: 3 } })).toMatchObject({ ok: true, value: 5 });
    }
    expect(errors).toEqual([]);
    // Probes crossed the wire: bytes flowed on an otherwise idle connection.
    expect(inProcess.stats.bytesIn).toBeGreaterThan(0);
  });
});
