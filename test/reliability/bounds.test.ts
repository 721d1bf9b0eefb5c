/**
 * Every resource a peer can make the server hold is bounded (docs/RELIABILITY.md, "What a peer
 * can make the server hold"). Each attack is run by a real peer process (test/fixtures/
 * attacker.ts) that handshakes by hand, attacks, and never reads; the server is in this
 * process, so the test can watch what it holds: handlers running, bytes queued on the socket,
 * heap. Meanwhile another client is served, and a well-behaved peer at the bound loses nothing.
 * Long versions (100,000 asks, minutes of streaming) are in test/stress.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createMachine } from 'xstate';
import { connect, type Connection } from '../../src/index.js';
import { fullGc } from '../fixtures/rel-protocol.js';
import { cleanup, onCleanup, sleep, waitUntil } from '../helpers/cleanup.js';
import { startFixture } from '../helpers/fixture.js';
import { BIG, MEDIUM, connectionOf, startAttackedServer } from '../helpers/attacked-server.js';

afterEach(cleanup);

const KiB = 1024;
const MAX_WRITE_BUFFER = 256 * KiB;
/** A frame of BIG with its envelope: what one reply, item or broadcast may add past the budget. */
const ONE_FRAME = 64 * KiB + 64;

/** The attacked server with this file's budget: 256 KiB, and 20 s for a frame. */
function startServer(options: Record<string, unknown> = {}) {
  return startAttackedServer({ maxWriteBuffer: MAX_WRITE_BUFFER, frameTimeout: 20_000, ...options });
}

function attack(name: string, mode: string, options: Record<string, unknown> = {}) {
  return startFixture('attacker', [name, mode, options]);
}

/** The most bytes ever queued on `connection`'s socket, recorded on every write. */
function watchQueued(connection: Connection): { most: number } {
  const socket = connection.core.socket;
  const watch = { most: 0 };
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  (socket as unknown as { write: (...args: unknown[]) => boolean }).write = (...args: unknown[]) => {
    const result = write(...args);
    watch.most = Math.max(watch.most, socket.writableLength);
    return result;
  };
  return watch;
}

async function servedMeanwhile(name: string): Promise<void> {
  const other = await connect(name);
  onCleanup(() => other.destroy());
  expect(await other.ask({ type: 'add', a: 2, b: 3 })).toBe(5);
}

describe('maxInFlight: handlers running at once per connection', () => {
  it('20,000 pipelined asks to a handler that never answers start at most maxInFlight handlers; reading pauses, nothing errors; others are served', async () => {
    const { name, server, counters } = await startServer({ maxInFlight: 16 });
    const attacker = await attack(name, 'asks', { type: 'hang', count: 20_000 });
    const connection = await connectionOf(server, attacker.pid);
    await waitUntil(() => counters.started === 16, '16 handlers started');
    await sleep(300);
    expect(counters.started).toBe(16);
    expect(connection.state).toBe('active');
    expect(connection.closeReason).toBeUndefined(); // nothing refused, nothing closed
    // Work in flight says why: the 16 handlers, and reading paused for maxInFlight.
    const work = connection.work();
    expect(work.handling).toHaveLength(16);
    expect(work.reading).toEqual({ paused: true, reasons: ['in-flight'] });
    await servedMeanwhile(name);
    await attacker.kill();
    await waitUntil(() => counters.running === 0, 'the handlers saw the connection go');
  });

  it('a tell flood at a slow async handler: at most maxInFlight run at once', async () => {
    const { name, counters } = await startServer({ maxInFlight: 16 });
    const attacker = await attack(name, 'tells', { type: 'hang', count: 20_000 });
    await waitUntil(() => counters.started === 16, '16 tell handlers started');
    await sleep(300);
    expect(counters.started).toBe(16);
    await servedMeanwhile(name);
    await attacker.kill();
  });

  it('a well-behaved peer over the bound loses nothing: 300 pipelined asks all answered, in-flight never above maxInFlight', async () => {
    const { name, counters } = await startServer({ maxInFlight: 8 });
    const client = await connect(name);
    onCleanup(() => client.destroy());
    const replies = await Promise.all(Array.from({ length: 300 }, (_, i) => client.ask({ type: 'slow', ms: 2, value: i }, { timeout: 20_000 })));
    expect(replies).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(counters.started).toBe(300);
    expect(counters.most).toBeLessThanOrEqual(8);
  });
});

describe('the write budget covers every frame', () => {
  it('async 64 KiB replies to a peer that never reads: the queue stays within maxWriteBuffer plus one frame', async () => {
    const { name, server, counters } = await startServer();
    const attacker = await attack(name, 'asks', { type: 'big', count: 2_000 });
    const connection = await connectionOf(server, attacker.pid);
    const queued = watchQueued(connection);
    await waitUntil(() => connection.core.socket.writableLength >= MAX_WRITE_BUFFER, 'the budget is used up');
    await sleep(500);
    expect(queued.most).toBeLessThanOrEqual(MAX_WRITE_BUFFER + ONE_FRAME);
    expect(counters.started).toBeLessThanOrEqual(64 + Math.ceil(MAX_WRITE_BUFFER / (64 * KiB)) + 1 + 64); // in flight + written + one chunk's worth
    await servedMeanwhile(name);
    await attacker.kill();
  });

  it('a streamed ask with a window of 10^9 items and a peer that never reads: the queue stays within maxWriteBuffer plus one item', async () => {
    const { name, server } = await startServer();
    const attacker = await attack(name, 'stream', { type: 'endless', window: 1e9 });
    const connection = await connectionOf(server, attacker.pid);
    const queued = watchQueued(connection);
    await waitUntil(() => connection.core.socket.writableLength >= MAX_WRITE_BUFFER, 'the budget is used up');
    await sleep(500);
    expect(queued.most).toBeLessThanOrEqual(MAX_WRITE_BUFFER + ONE_FRAME);
    await servedMeanwhile(name);
    await attacker.kill();
  });

  it('300 broadcasts of 64 KiB to a peer that reads nothing: the queue stays within the budget plus one frame; skips are reported', async () => {
    const { name, server } = await startServer();
    const attacker = await attack(name, 'idle');
    const connection = await connectionOf(server, attacker.pid);
    const reader = await connect(name, { handlers: { tick: () => {} } } as never);
    onCleanup(() => reader.destroy());
    await waitUntil(() => server.connections.size === 2, 'both connected');
    const queued = watchQueued(connection);
    let sent = 0;
    let skipped = 0;
    for (let i = 0; i < 300; i++) {
      const result = await server.broadcast({ type: 'tick', text: BIG } as never, { report: true });
      sent += result.sent;
      skipped += result.skipped;
      if (i % 10 === 0) await sleep(1); // let the reader read
    }
    expect(queued.most).toBeLessThanOrEqual(MAX_WRITE_BUFFER + ONE_FRAME);
    // The reader may have been skipped a few times too; the one that reads nothing most of them.
    expect(connection.stats.broadcastsSkipped).toBeGreaterThan(200);
    expect(skipped).toBeGreaterThanOrEqual(connection.stats.broadcastsSkipped);
    expect(sent + skipped).toBe(600);
    await attacker.kill();
  });

  it('maxWriteBuffer below Node’s own high-water mark (1 KiB): reading resumes once the peer catches up', async () => {
    const { name } = await startServer({ maxWriteBuffer: 1024 });
    const client = await connect(name);
    onCleanup(() => client.destroy());
    // Each reply passes the budget and pauses reading; without a resume the next asks would hang.
    // A 4 KiB reply stays under Node's own high-water mark (16 KiB), so Node never emits 'drain'
    // for it: only the write's callback can say there is room again.
    for (let i = 0; i < 5; i++) expect(await client.ask({ type: 'medium' }, { timeout: 5000 })).toBe(MEDIUM);
    const replies = await Promise.all(Array.from({ length: 20 }, () => client.ask({ type: 'medium' }, { timeout: 5000 })));
    expect(replies.every((r) => r === MEDIUM)).toBe(true);
    // And async 64 KiB replies, which wait for room.
    for (let i = 0; i < 5; i++) expect(await client.ask({ type: 'big' }, { timeout: 5000 })).toBe(BIG);
    const big = await Promise.all(Array.from({ length: 20 }, () => client.ask({ type: 'big' }, { timeout: 5000 })));
    expect(big.every((r) => r === BIG)).toBe(true);
  });
});

describe('a session machine is never asked about a type it does not name', () => {
  const session = createMachine({
    initial: 'open',
    states: { open: { on: { add: 'open', bye: 'done' } }, done: { type: 'final' } },
  });

  it('answers such a type NOT_ACCEPTED at once', async () => {
    const { name } = await startServer({ session });
    const client = await connect(name);
    onCleanup(() => client.destroy());
    const error = await client.ask({ type: 'whatever' }).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('NOT_ACCEPTED');
    expect(await client.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
  });

  it('20,000 distinct types from a peer process do not grow the heap', async () => {
    const { name, server } = await startServer({ session });
    server.on('handlerError', () => {});
    const warmup = await attack(name, 'types', { count: 2_000, read: true });
    await warmup.waitFor((line) => line.sent !== undefined);
    const warmed = await connectionOf(server, warmup.pid);
    await waitUntil(() => warmed.stats.unhandledTells >= 2_000, 'the warm-up types were refused', 10_000);
    fullGc();
    const before = process.memoryUsage().heapUsed;
    const attacker = await attack(name, 'types', { count: 20_000, read: true });
    const connection = await connectionOf(server, attacker.pid);
    await waitUntil(() => connection.stats.unhandledTells >= 20_000, 'every type was refused', 20_000);
    fullGc();
    const grown = process.memoryUsage().heapUsed - before;
    // XState keeps an entry (~100 bytes and more) per event type it is asked about, for good: 20,000 would be MiBs.
    expect(grown).toBeLessThan(1024 * KiB);
    expect(connection.state).toBe('active');
  });
});
