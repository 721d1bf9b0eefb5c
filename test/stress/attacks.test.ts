/**
 * Issue 9's attack list at its own scale, each by a peer process (test/fixtures/attacker.ts)
 * that handshakes by hand and then reads nothing, against a server in this process whose heap is
 * sampled after a full GC while the attack goes on. Each attack prints what the server held at
 * most over its baseline; the test asserts it stays within the bound of docs/RELIABILITY.md
 * ("What a peer can make the server hold") with a generous margin, and that another client is
 * served meanwhile. Before the bounds, the same attacks held: 158 MiB (100,000 asks), 135 MiB
 * (120,000 tells), 127 MiB (async 64 KiB replies, maxWriteBuffer 1 MiB), 1.8 GB in 3 s (an
 * endless stream), 18.8 MiB (300 broadcasts), and a heap growing for good (distinct types).
 *
 * Options: maxWriteBuffer 1 MiB (as the issue measured), the rest at their defaults
 * (maxInFlight 64, maxMessageSize 1 MiB).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createMachine } from 'xstate';
import { connect } from '../../src/index.js';
import { fullGc } from '../fixtures/rel-protocol.js';
import { cleanup, onCleanup, sleep, waitUntil } from '../helpers/cleanup.js';
import { startFixture } from '../helpers/fixture.js';
import { BIG, connectionOf, startAttackedServer } from '../helpers/attacked-server.js';

afterEach(cleanup);

const KiB = 1024;
const MiB = 1024 * KiB;
const W = 1 * MiB;
const F = 64;

/** The attacked server with this file's budget W; the non-reader is not closed for not reading while we measure. */
function startServer(options: Record<string, unknown> = {}) {
  return startAttackedServer({ maxWriteBuffer: W, frameTimeout: 120_000, ...options });
}

/** Heap in use plus memory outside it (Buffers: queued frames live there), after a full GC. */
function heap(): number {
  fullGc();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

/** The most the heap held over `baseline` (after a full GC) in `samples` samples, `every` ms apart. */
async function mostHeld(baseline: number, samples: number, every = 500): Promise<number> {
  let most = 0;
  for (let i = 0; i < samples; i++) {
    await sleep(every);
    most = Math.max(most, heap() - baseline);
  }
  return most;
}

async function servedMeanwhile(name: string): Promise<void> {
  const other = await connect(name);
  onCleanup(() => other.destroy());
  expect(await other.ask({ type: 'add', a: 2, b: 3 }, { timeout: 20_000 })).toBe(5);
}

const held: Record<string, number> = {};
function report(attack: string, bytes: number): void {
  held[attack] = bytes;
  console.log(`${attack}: server heap held at most ${(bytes / MiB).toFixed(2)} MiB over its baseline`);
}

describe('issue 9 attacks at full scale: the server heap stays within the documented bound', () => {
  it('100,000 pipelined asks to a handler that never answers', async () => {
    const { name, server, counters } = await startServer();
    const baseline = heap();
    const attacker = await startFixture('attacker', [name, 'asks', { type: 'hang', count: 100_000 }]);
    const connection = await connectionOf(server, attacker.pid, 20_000);
    await waitUntil(() => counters.started === F, 'maxInFlight handlers started', 20_000);
    const most = await mostHeld(baseline, 6);
    report('100,000 asks (never answered)', most);
    expect(counters.started).toBe(F);
    expect(connection.state).toBe('active');
    await servedMeanwhile(name);
    // F handlers, each an event and a context, the frames read ahead (M + 64 KiB): a few MiB.
    expect(most).toBeLessThan(8 * MiB);
    // Closing it no longer has 100,000 asks to abort.
    const started = performance.now();
    await attacker.kill();
    await waitUntil(() => counters.running === 0, 'the handlers saw the connection go', 20_000);
    console.log(`  closing that connection took ${(performance.now() - started).toFixed(0)} ms (a process kill and its notice included)`);
  });

  it('120,000 tells at a slow async handler', async () => {
    const { name, server, counters } = await startServer();
    const baseline = heap();
    const attacker = await startFixture('attacker', [name, 'tells', { type: 'slow', fields: { ms: 2000 }, count: 120_000 }]);
    const connection = await connectionOf(server, attacker.pid, 20_000);
    await waitUntil(() => counters.started >= F, 'maxInFlight handlers started', 20_000);
    let most = 0;
    let mostRunning = 0;
    for (let i = 0; i < 10; i++) {
      await sleep(500);
      mostRunning = Math.max(mostRunning, counters.running);
      most = Math.max(most, heap() - baseline);
    }
    report('120,000 tells (slow handler)', most);
    expect(mostRunning).toBeLessThanOrEqual(F);
    expect(connection.state).toBe('active');
    await servedMeanwhile(name);
    expect(most).toBeLessThan(8 * MiB);
  });

  it('asks answered by async 64 KiB replies, to a peer that never reads', async () => {
    const { name, server } = await startServer();
    const baseline = heap();
    const attacker = await startFixture('attacker', [name, 'asks', { type: 'big', count: 2_000 }]);
    const connection = await connectionOf(server, attacker.pid, 20_000);
    const most = await mostHeld(baseline, 8);
    report('2,000 asks with async 64 KiB replies (non-reader)', most);
    expect(connection.state).toBe('active');
    await servedMeanwhile(name);
    // W + one frame queued, and at most F answers (64 KiB each) waiting for room: about 5 MiB.
    expect(most).toBeLessThan(W + F * 2 * 64 * KiB + 8 * MiB);
  });

  it('a streamed ask with a window of 10^9 endless 64 KiB items, to a peer that never reads', async () => {
    const { name, server } = await startServer();
    const baseline = heap();
    const attacker = await startFixture('attacker', [name, 'stream', { type: 'endless', window: 1e9 }]);
    const connection = await connectionOf(server, attacker.pid, 20_000);
    const most = await mostHeld(baseline, 8);
    report('endless stream, window 10^9 (non-reader)', most);
    expect(connection.state).toBe('active');
    expect(connection.work().streaming).toHaveLength(1);
    await servedMeanwhile(name);
    expect(most).toBeLessThan(W + 8 * MiB);
  });

  it('300 broadcasts of 64 KiB to a peer that reads nothing', async () => {
    const { name, server } = await startServer();
    const attacker = await startFixture('attacker', [name, 'idle']);
    const connection = await connectionOf(server, attacker.pid, 20_000);
    const baseline = heap();
    let skipped = 0;
    for (let i = 0; i < 300; i++) skipped += (await server.broadcast({ type: 'tick', text: BIG } as never, { report: true })).skipped;
    const most = await mostHeld(baseline, 4);
    report('300 broadcasts of 64 KiB (non-reader)', most);
    console.log(`  ${skipped} of them skipped for that peer`);
    expect(skipped).toBeGreaterThan(0);
    expect(connection.state).toBe('active');
    await servedMeanwhile(name);
    expect(most).toBeLessThan(W + 8 * MiB);
  });

  it('small replies to a peer that stopped reading, spread over other connections\' traffic, hold only their own bytes', async () => {
    // Each small reply the attacker does not read queues behind the ones before it; if a queued
    // frame were a view into a buffer shared with other connections' frames (an output slab, or
    // msgpackr's), each would pin that whole buffer: the busy client below makes sure the
    // attacker's replies are far apart in the shared buffers.
    const ECHO = 'e'.repeat(KiB);
    const { name, server } = await startServer({
      handlers: { add: (e: { a: number; b: number }) => e.a + e.b, echo: (e: { value: unknown }) => e.value, big: () => Promise.resolve(BIG) },
    });
    const busy = await connect(name);
    onCleanup(() => busy.destroy());
    let busyAsks = 0;
    let stop = false;
    const busyLoop = async () => {
      while (!stop) {
        await busy.ask({ type: 'echo', value: ECHO } as never, { timeout: 60_000 });
        busyAsks++;
      }
    };
    const loops = Array.from({ length: 16 }, busyLoop);
    const baseline = heap();
    const attacker = await startFixture('attacker', [name, 'drip', { type: 'add', fields: { a: 1, b: 2 }, fill: 12, count: 2_000, every: 4 }]);
    const connection = await connectionOf(server, attacker.pid, 20_000);
    const most = await mostHeld(baseline, 16);
    stop = true;
    await Promise.all(loops);
    report('2,000 small replies to a non-reader among busy traffic', most);
    console.log(`  the busy client made ${busyAsks} asks of 1 KiB meanwhile; ${(connection.stats.bytesOut / MiB).toFixed(2)} MiB written to the attacker`);
    expect(busyAsks).toBeGreaterThan(1000);
    expect(connection.state).toBe('active');
    await servedMeanwhile(name);
    // The attacker's queue: its 12 big replies and 2,000 small ones (under 1 MiB with the kernel's
    // share), not a shared buffer per reply.
    expect(most).toBeLessThan(W + 8 * MiB);
  });

  it('100,000 distinct message types to a server with a session machine', async () => {
    const session = createMachine({
      initial: 'open',
      states: { open: { on: { add: 'open', bye: 'done' } }, done: { type: 'final' } },
    });
    const { name, server } = await startServer({ session });
    server.on('handlerError', () => {}); // 100,000 refused tells: observed, not 256 process warnings
    // Warm up (the first refusals build code and caches of a fixed size).
    const warmup = await startFixture('attacker', [name, 'types', { count: 2_000, read: true }]);
    const warmed = await connectionOf(server, warmup.pid);
    await waitUntil(() => warmed.stats.unhandledTells >= 2_000, 'the warm-up types were refused', 20_000);
    await warmup.kill();
    const baseline = heap();
    const attacker = await startFixture('attacker', [name, 'types', { count: 100_000, read: true }]);
    const connection = await connectionOf(server, attacker.pid, 20_000);
    await waitUntil(() => connection.stats.unhandledTells >= 100_000, 'every type was refused', 120_000);
    await attacker.kill();
    await waitUntil(() => connection.state === 'closed', 'the attacker is gone', 20_000);
    const grown = heap() - baseline;
    report('100,000 distinct types with a session (after the peer left)', grown);
    await servedMeanwhile(name);
    // XState would keep an entry per type asked about, for good: 100,000 of them are many MiBs.
    expect(grown).toBeLessThan(2 * MiB);
  });

  it('summary', () => {
    console.log(Object.entries(held).map(([attack, bytes]) => `${attack}: ${(bytes / MiB).toFixed(2)} MiB`).join('\n'));
  });
});
