/**
 * Heap retained per connection once it is gone, measured in a server process (after a full GC)
 * across 2,000 connections that each ask once and go away.
 *
 * This caught a leak of ~0.7 KiB per connection ever accepted: XState memoizes transition
 * candidates per state node and event type (`candidates-${event.type}` in StateNode.next, a
 * module-level cache keyed by the state node), and each child's done event is named after the
 * child, `xstate.done.actor.<child id>`. The server now recycles child ids, so the cache is
 * bounded by the peak number of connections at once.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import type { RelClientApi, RelServerApi } from '../fixtures/rel-protocol.js';
import { cleanup } from '../helpers/cleanup.js';
import { relServer, statsUntil, type ServerStats } from '../reliability/support.js';

afterEach(cleanup);

const CONNECTIONS = Number(process.env.HEAP_CONNECTIONS ?? 2000);
let perConnection = Number.NaN;

beforeAll(async () => {
  const { name, server } = await relServer();
  const churn = async (count: number): Promise<ServerStats> => {
    for (let i = 0; i < count; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          const connection = await connect<RelServerApi, RelClientApi>(name);
          await connection.ask({ type: 'add', a: 1, b: 1 });
          connection.destroy();
          await connection.closed;
        }),
      );
    }
    return statsUntil(server, (s) => s.cores === 0 && s.children === 0, 'every connection is gone', 30_000);
  };
  // Warm up (JIT code, pools and caches that reach a fixed size), then measure the slope over a
  // second batch: a per-connection leak grows with it, one-off growth does not.
  await churn(500);
  const before = await churn(CONNECTIONS);
  const after = await churn(CONNECTIONS);
  perConnection = (after.heap - before.heap) / CONNECTIONS;
  console.log(`heap retained per closed connection: ${perConnection.toFixed(0)} bytes (${CONNECTIONS} connections)`);
}, 300_000);

describe('heap retained per connection', () => {
  it('is nothing (under 100 bytes each, noise): no per-connection state outlives the connection', () => {
    expect(perConnection).toBeLessThan(100);
  });
});
