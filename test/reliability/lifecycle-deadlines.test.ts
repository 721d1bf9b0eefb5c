/**
 * The handshake and close deadlines are kept outside XState (src/connection/deadline-queue.ts).
 * As `after` transitions, each connection handshaking or closing had a delayed event in the
 * server's actor system, and XState's scheduler walks every delayed event of the system each
 * time any actor stops: stopping N such connections cost O(N²). These tests look at the
 * structure (what is scheduled where), over real sockets; the speed is measured in bench/.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Server } from '../../src/index.js';
import { armedDeadlines } from '../../src/connection/deadline-queue.js';
import { cleanup, waitUntil } from '../helpers/cleanup.js';
import { listening } from '../helpers/listening.js';
import { handshakeBytes, parseHandshake, rawConnect, type RawPeer } from '../helpers/raw.js';

afterEach(cleanup);


/** The delayed events XState's scheduler holds for the server's whole actor system. */
function scheduledEvents(s: Server): string[] {
  const system = s.actor.system as unknown as { getSnapshot(): { _scheduledEvents: Record<string, unknown> } };
  return Object.keys(system.getSnapshot()._scheduledEvents);
}

/** Connections the supervisor holds (handshaking ones included). */
const held = (s: Server): number => s.actor.getSnapshot().context.live;

describe('the handshake and close deadlines are not delayed events of the actor system', () => {
  it('300 connections that never handshake: nothing scheduled in XState, 300 deadlines in one queue, none left once they go', async () => {
    const { name, server: s } = await listening({ handshakeTimeout: 60_000 });
    expect(scheduledEvents(s)).toEqual([]);
    const flood = await Promise.all(Array.from({ length: 300 }, () => rawConnect(name)));
    await waitUntil(() => held(s) === 300, 'the server holds all 300 in handshake', 30_000);
    // With `after`, 300 entries here, every one walked whenever any actor of the server stops.
    expect(scheduledEvents(s)).toEqual([]);
    expect(armedDeadlines()).toEqual({ deadlines: 300, queues: 1 });
    for (const raw of flood) raw.socket.destroy();
    await waitUntil(() => held(s) === 0, 'the server let all 300 go', 30_000);
    expect(armedDeadlines()).toEqual({ deadlines: 0, queues: 0 });
  }, 60_000);

  it('100 connections closing (closeTimeout and a close({ timeout }) of their own): nothing scheduled in XState, one queue per duration, none left once they go', async () => {
    const { name, server: s } = await listening({ closeTimeout: 60_000 });
    const peers: RawPeer[] = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const raw = await rawConnect(name);
        raw.write(handshakeBytes({ kind: 1 }));
        expect(await raw.until((bytes) => parseHandshake(bytes))).toMatchObject({ kind: 2 });
        return raw; // and it never says GOODBYE: each close waits for its deadline
      }),
    );
    await waitUntil(() => s.connections.size === 100, 'all 100 are active');
    expect(armedDeadlines()).toEqual({ deadlines: 0, queues: 0 }); // active connections have none
    let i = 0;
    const closes = [...s.connections.values()].map((connection) => connection.close(i++ % 2 === 0 ? undefined : { timeout: 45_000 }).catch(() => undefined));
    await waitUntil(() => [...s.connections.values()].every((connection) => connection.state === 'closing'), 'all 100 are closing');
    expect(scheduledEvents(s)).toEqual([]);
    expect(armedDeadlines()).toEqual({ deadlines: 100, queues: 2 });
    for (const raw of peers) raw.socket.destroy();
    await Promise.all(closes);
    await waitUntil(() => held(s) === 0, 'the server let all 100 go');
    expect(armedDeadlines()).toEqual({ deadlines: 0, queues: 0 });
  }, 60_000);

  it('a close({ timeout }) of its own cuts off a peer that never says goodbye, not before the timeout', async () => {
    const { name, server: s } = await listening({ closeTimeout: 60_000 });
    const raw = await rawConnect(name);
    raw.write(handshakeBytes({ kind: 1 }));
    await raw.until((bytes) => parseHandshake(bytes));
    await waitUntil(() => s.connections.size === 1, 'the connection is active');
    const [connection] = [...s.connections.values()];
    const started = performance.now();
    await connection!.close({ timeout: 200 }).catch(() => undefined);
    // A timer may fire up to a millisecond early against performance.now().
    expect(performance.now() - started).toBeGreaterThanOrEqual(199);
    expect(connection!.closeReason?.code).toBe('CONNECTION_CLOSED');
    expect(connection!.closeReason?.message).toContain('did not finish closing within 200 ms');
    await raw.closed;
    expect(armedDeadlines()).toEqual({ deadlines: 0, queues: 0 });
  });
});
