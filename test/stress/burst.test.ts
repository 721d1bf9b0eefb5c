/**
 * Bursts: 2,000 clients connecting at once all get in and are served — from 8 processes of 250
 * connections at the default backlog (4096), and from 4 processes of 500 through a backlog of 16,
 * where the kernel answers most connects with EAGAIN and connect() retries them.
 *
 * All the clients run as one user, so maxConnectionsPerUid (default 1024, a per-user cap) is
 * raised; maxConnections keeps its default of 4096.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, waitUntil } from '../helpers/cleanup.js';
import { startServer } from '../helpers/scenario.js';
import { relClient, type Proc } from '../reliability/support.js';

afterEach(cleanup);

describe('2,000 clients connecting at once', () => {
  for (const { backlog, processes } of [
    { backlog: undefined, processes: 8 },
    { backlog: 16, processes: 4 },
  ]) {
    it(`from ${processes} processes, backlog ${backlog ?? 'default (4096)'}: all get in and are served`, async () => {
      const { name, server } = await startServer({ maxConnectionsPerUid: 4096, ...(backlog === undefined ? {} : { backlog }) });
      const per = 2000 / processes;
      const started = performance.now();
      const clients: Proc[] = await Promise.all(
        Array.from({ length: processes }, () => relClient(name, { connections: per, connectTimeout: 60_000, handshakeTimeout: 60_000 })),
      );
      const connectedIn = performance.now() - started;
      for (const client of clients) expect(client.first).toMatchObject({ connected: per, failures: [] });
      await waitUntil(() => server.connections.size === 2000, 'the server registered all 2,000', 30_000);
      const answers = await Promise.all(clients.map((client) => client.request({ op: 'ask', event: { type: 'add', a: 40, b: 2 } }, 60_000)));
      for (const answer of answers) expect(answer.results.every((r: { ok: boolean; value: number }) => r.ok && r.value === 42)).toBe(true);
      console.log(`backlog ${backlog ?? 4096}: 2,000 connected in ${Math.round(connectedIn)} ms (including starting ${processes} processes)`);
      await Promise.all(clients.map((client) => client.request({ op: 'close' }, 60_000)));
      await waitUntil(() => server.actor.getSnapshot().context.live === 0, 'every connection is gone', 60_000);
      expect(Object.keys(server.actor.getSnapshot().children)).toEqual([]);
    });
  }
});
