/**
 * Soak: 200 clients (10 processes × 20 connections) × 1,000 asks each, with random payload sizes
 * (mostly under 16 KiB, now and then up to 256 KiB, every byte checked), random tells (each
 * sender numbers its own: the server checks none is lost, duplicated or reordered) and 200
 * server broadcasts during the run (each client checks it got every one, once, in order). At
 * the end the server process's heap (after a full GC) and open fds are back at their baseline.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '../helpers/cleanup.js';
import { relClient, relConnect, relServer, statsOf, statsUntil, type Proc } from '../reliability/support.js';

afterEach(cleanup);

const PROCESSES = 10;
const PER_PROCESS = 20;
const ASKS = 1000;
const BROADCASTS = 200;

describe('soak', () => {
  it(`${PROCESSES * PER_PROCESS} clients × ${ASKS} asks with random payloads, tells and broadcasts: every reply right, nothing lost or duplicated, heap back to baseline`, async () => {
    const { name, server } = await relServer();
    // Warm up the server's code paths, then measure.
    const warm = await relConnect(name);
    for (let i = 0; i < 200; i++) await warm.ask({ type: 'echo', value: new Uint8Array(i * 100) });
    await warm.close();
    const baseline = await statsUntil(server, (s) => s.cores === 0, 'the warm-up client is gone');

    const clients: Proc[] = await Promise.all(Array.from({ length: PROCESSES }, () => relClient(name, { connections: PER_PROCESS, connectTimeout: 30_000 })));
    for (const client of clients) expect(client.first).toMatchObject({ connected: PER_PROCESS, failures: [] });
    const started = performance.now();

    const soaks = clients.map((client) =>
      client.request({ op: 'soak', asks: ASKS, maxPayload: 16 * 1024, bigChance: 0.002, bigPayload: 256 * 1024, tellChance: 0.3, concurrency: 2 }, 580_000),
    );
    const broadcast = server.request({ op: 'broadcast', count: BROADCASTS }, 580_000);
    const results = await Promise.all(soaks);
    expect(await broadcast).toMatchObject({ ok: true });
    const elapsed = performance.now() - started;

    // Every reply matched, byte for byte; no ask failed.
    const told = new Map<string, number>();
    for (const result of results) {
      expect(result.connections).toHaveLength(PER_PROCESS);
      for (const connection of result.connections as Array<{ from: string; asked: number; wrong: number; told: number; errors: Record<string, number> }>) {
        expect(connection).toMatchObject({ asked: ASKS, wrong: 0, errors: {} });
        told.set(connection.from, connection.told);
      }
    }
    // Every tell arrived once, in order.
    const { senders } = await server.request({ op: 'seqReport' });
    expect(Object.keys(senders).sort()).toEqual([...told.keys()].filter((from) => told.get(from)! > 0).sort());
    for (const [from, count] of told) if (count > 0) expect(senders[from], from).toEqual({ next: count, bad: 0 });
    // Every broadcast reached every client once, in order (a round trip first: replies follow the broadcasts on each connection).
    await Promise.all(clients.map((client) => client.request({ op: 'ask', event: { type: 'add', a: 1, b: 1 } }, 60_000)));
    for (const client of clients) {
      const { notifies } = await client.request({ op: 'notifies' });
      expect(notifies).toEqual(Array.from({ length: PER_PROCESS }, () => ({ count: BROADCASTS, bad: 0 })));
    }

    await Promise.all(clients.map((client) => client.request({ op: 'close' }, 60_000)));
    const after = await statsUntil(server, (s) => s.cores === 0 && s.children === 0 && s.fds <= baseline.fds, 'every client is gone', 30_000);
    const totalTells = [...told.values()].reduce((a, b) => a + b, 0);
    console.log(
      `soak: ${PROCESSES * PER_PROCESS * ASKS} asks, ${totalTells} tells, ${BROADCASTS} broadcasts × ${PROCESSES * PER_PROCESS} in ${Math.round(elapsed)} ms; ` +
        `server heap ${(baseline.heap / 2 ** 20).toFixed(1)} → ${(after.heap / 2 ** 20).toFixed(1)} MiB, fds ${baseline.fds} → ${after.fds}`,
    );
    expect(after.fds).toBe(baseline.fds);
    expect(after.heap - baseline.heap).toBeLessThan(4 * 1024 * 1024);
    expect((await statsOf(server)).errors).toEqual({});
  });
});
