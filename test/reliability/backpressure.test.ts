/**
 * Load and backpressure: a peer that never reads cannot make the server buffer without bound
 * (user sends wait for room, then TIMEOUT; replies to a non-reading asker pause reading its asks;
 * PEER_NOT_READING after frameTimeout with no progress) while other clients are served (during the
 * stall: an order, not a latency; latency is measured in bench/); and a burst of 300 connections from 3 processes through a backlog of 8 all get in (EAGAIN retried).
 *
 * An unconsumed iterator pausing reading is test/integration/iteration.test.ts. The 2,000-client
 * burst from several processes at the default backlog is test/stress/burst.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Connection } from '../../src/index.js';
import type { ClientApi, ServerApi } from '../fixtures/protocol.js';
import { cleanup, settle, sleep, waitUntil } from '../helpers/cleanup.js';
import { frame, handshakeBytes, parseHandshake, rawConnect, type RawPeer } from '../helpers/raw.js';
import { connectClient, startServer } from '../helpers/scenario.js';
import { connectionErrors, relClient } from './support.js';

afterEach(cleanup);

const MAX_WRITE_BUFFER = 256 * 1024;
// Long enough that another client's round trips fit inside the stall even on a busy machine.
const FRAME_TIMEOUT = 5000;

/**
 * Ask through `ask` repeatedly until `connection` closes; how many round trips completed while it
 * was still open (stalled): other clients are served during the stall, not after it ended.
 */
async function servedDuring(connection: Connection<ServerApi, ClientApi>, ask: () => Promise<unknown>): Promise<{ during: number; total: number }> {
  let during = 0;
  let total = 0;
  const open = (): boolean => connection.state !== 'closed';
  while (open()) {
    await ask();
    total++;
    if (open()) during++;
    await sleep(20);
  }
  return { during, total };
}

/** A raw peer that completes the handshake; the server-side connection of it. */
async function rawPeerOf(name: string, server: Awaited<ReturnType<typeof startServer>>['server']): Promise<{ raw: RawPeer; connection: Connection<ServerApi, ClientApi> }> {
  const raw = await rawConnect(name);
  raw.write(handshakeBytes());
  await raw.until((bytes) => parseHandshake(bytes));
  // The raw peer is the test process itself (the kernel reports our pid); other clients are child processes.
  const mine = (): Connection<ServerApi, ClientApi> | undefined => [...server.connections.values()].find((c) => c.peer.pid === process.pid);
  await waitUntil(() => mine() !== undefined, 'the server registered the raw peer');
  return { raw, connection: mine()! };
}

/** Sample a socket's writableLength every few ms; `largest` is the most it held. */
function watchBuffer(connection: Connection<ServerApi, ClientApi>): { largest: number; stop(): void } {
  const socket = connection.core.socket;
  const watch = { largest: 0, stop: () => clearInterval(timer) };
  const timer = setInterval(() => (watch.largest = Math.max(watch.largest, socket.writableLength)), 2);
  return watch;
}

describe('a peer that never reads', () => {
  it('what the server sends it waits for room, then fails with TIMEOUT; the buffer stays bounded; PEER_NOT_READING after frameTimeout; others are served', async () => {
    const { name, server } = await startServer({ maxWriteBuffer: MAX_WRITE_BUFFER, frameTimeout: FRAME_TIMEOUT, replyTimeout: 300 });
    const errors = connectionErrors(server);
    const { raw, connection } = await rawPeerOf(name, server);
    // Another client (in this process, connected after the raw peer so rawPeerOf's match by pid is
    // unambiguous: its round trips measure the server, not a child process's scheduling).
    const other = await connectClient(name);
    raw.socket.pause(); // never reads again
    const buffer = watchBuffer(connection);
    const text = 'x'.repeat(64 * 1024);

    // Tells go out until the socket's buffer is over the limit; then one waits for room and times out.
    let sent = 0;
    let failure: any;
    while (failure === undefined && sent < 1000) {
      try {
        await connection.tell({ type: 'notify', text });
        sent++;
      } catch (error) {
        failure = error;
      }
    }
    expect(failure?.code).toBe('TIMEOUT');
    expect(failure?.message).toMatch(/maxWriteBuffer/);
    expect(sent).toBeGreaterThanOrEqual(4); // the buffer took up to the limit (4 × 64 KiB) before sends had to wait
    // An ask waits for room too, bounded by its own timeout.
    const ask = await settle(connection.ask({ type: 'add', a: 1, b: 1 }, { timeout: 200 }));
    expect(ask.error?.code).toBe('TIMEOUT');

    // Meanwhile, another client is served (during the stall: an order, not a latency; normal
    // latency is measured in bench/).
    const served = servedDuring(connection, async () =>
      expect(await other.ask({ type: 'add', a: 2, b: 2 }, { timeout: 30_000 })).toBe(4),
    );
    // Closed at all is the point (without frameTimeout it would stall for ever); when exactly
    // depends on the machine's load, so no upper bound.
    await connection.closed;
    buffer.stop();
    expect(connection.closeReason?.code).toBe('PEER_NOT_READING');
    expect(errors.map((e) => e.code)).toEqual(['PEER_NOT_READING']);
    // Bounded: the limit plus the one message that crossed it.
    expect(buffer.largest).toBeGreaterThan(MAX_WRITE_BUFFER);
    expect(buffer.largest).toBeLessThanOrEqual(MAX_WRITE_BUFFER + 70 * 1024);
    expect((await served).during).toBeGreaterThanOrEqual(1);
    expect(server.connections.size).toBe(1);
  });

  it('an asker that never reads its replies: the server stops reading its asks (memory bounded), then PEER_NOT_READING; others are served', async () => {
    const { name, server } = await startServer({ maxWriteBuffer: MAX_WRITE_BUFFER, frameTimeout: FRAME_TIMEOUT });
    const errors = connectionErrors(server);
    const { raw, connection } = await rawPeerOf(name, server);
    // Another client (in this process, connected after the raw peer so rawPeerOf's match by pid is
    // unambiguous: its round trips measure the server, not a child process's scheduling).
    const other = await connectClient(name);
    raw.socket.pause(); // never reads a reply
    const buffer = watchBuffer(connection);

    // Asks for 32 KiB echoes, written as fast as our own socket takes them, until the server stops taking them.
    const value = new Uint8Array(32 * 1024).fill(7);
    let written = 0;
    for (let id = 0; id < 2000; id++) {
      written += 1;
      if (!raw.socket.write(frame([1, id, { type: 'echo', value }]))) {
        // Generous: on a busy machine a server that still reads may take a while to drain us.
        const drained = await Promise.race([new Promise((resolve) => raw.socket.once('drain', () => resolve(true))), sleep(2000).then(() => false)]);
        if (!drained) break; // the server no longer reads from us
      }
    }
    // Another client is served during the stall (sampling starts now, inside frameTimeout).
    const served = servedDuring(connection, async () =>
      expect(await other.ask({ type: 'echo', value: 'hi' }, { timeout: 30_000 })).toBe('hi'),
    );
    expect(written).toBeLessThan(2000);
    // The server took in only a bounded number of asks (their replies wait for us, unread).
    const asksIn = connection.stats.messagesIn;
    await sleep(1000);
    expect(connection.stats.messagesIn).toBe(asksIn);
    expect(asksIn).toBeLessThan(written);
    await connection.closed;
    buffer.stop();
    expect(connection.closeReason?.code).toBe('PEER_NOT_READING');
    expect(errors.map((e) => e.code)).toEqual(['PEER_NOT_READING']);
    expect(buffer.largest).toBeLessThanOrEqual(MAX_WRITE_BUFFER + 2 * 40 * 1024); // the limit, plus the reply that crossed it
    expect((await served).during).toBeGreaterThanOrEqual(1);
    expect(server.connections.size).toBe(1);
  });

  it('a user send waiting for room goes ahead once the peer reads again', async () => {
    const { name, server } = await startServer({ maxWriteBuffer: MAX_WRITE_BUFFER, frameTimeout: 10_000 });
    const { raw, connection } = await rawPeerOf(name, server);
    raw.socket.pause();
    const text = 'y'.repeat(64 * 1024);
    // Fill past the limit (the kernel's buffer first, then ours).
    while (connection.core.socket.writableLength <= MAX_WRITE_BUFFER) await connection.tell({ type: 'notify', text });
    const waiting = settle(connection.tell({ type: 'notify', text: 'after the wait' }));
    await sleep(200);
    expect(connection.core.socket.writableLength).toBeGreaterThan(MAX_WRITE_BUFFER);
    raw.socket.resume(); // reads again
    const outcome = await waiting;
    expect(outcome.ok).toBe(true);
    await raw.until((bytes) => (bytes.includes('after the wait') ? true : undefined), 5000);
    expect(connection.state).toBe('active');
  });
});

describe('bursts', () => {
  it('300 connections from 3 client processes at once through a listen backlog of 8 all get in (EAGAIN is retried) and are served', async () => {
    // A backlog of 8 cannot queue 300 simultaneous connects: the kernel answers most with EAGAIN,
    // which connect() retries until connectTimeout. maxConnectionsPerUid is raised: all the
    // clients run as this user, and its default (1024) is a per-user cap, not the server's.
    const { name, server } = await startServer({ backlog: 8, maxConnectionsPerUid: 4096 });
    // Generous limits: on a busy machine 300 connects through a backlog of 8 take a while.
    const clients = await Promise.all([0, 1, 2].map(() => relClient(name, { connections: 100, connectTimeout: 60_000 }, 90_000)));
    for (const client of clients) expect(client.first).toMatchObject({ connected: 100, failures: [] });
    await waitUntil(() => server.connections.size === 300, 'the server registered all 300', 60_000);
    const answers = await Promise.all(clients.map((client) => client.request({ op: 'ask', event: { type: 'add', a: 20, b: 22 }, timeout: 30_000 }, 60_000)));
    for (const answer of answers) {
      expect(answer.results).toHaveLength(100);
      expect(answer.results.every((r: { ok: boolean; value: number }) => r.ok && r.value === 42)).toBe(true);
    }
    await Promise.all(clients.map((client) => client.request({ op: 'close' }, 60_000)));
    await waitUntil(() => server.actor.getSnapshot().context.live === 0, 'every connection is gone', 60_000);
    expect(Object.keys(server.actor.getSnapshot().children)).toEqual([]);
  }, 240_000);
});
