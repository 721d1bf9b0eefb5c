/**
 * The sender's batching: a burst of frames written in one tick leaves in batches that grow
 * (8, 16, 32, 64, then 128 frames), so the peer can start on the first ones while the rest are
 * still being encoded; what is left leaves at the end of the tick; a lone frame waits for the
 * end of its tick (coalescing stays); bytes arrive in order. Small frames are copied back to
 * back into one chunk per batch, so each write is checked by its bytes: the frames it carries.
 * An in-memory Duplex records each write the stream hands down (no timing is measured).
 */
import { getEventListeners } from 'node:events';
import { Duplex } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { PauseReason, ReadFlow } from '../../src/connection/flow.js';
import type { FlightRecorder } from '../../src/connection/recorder.js';
import { Sender } from '../../src/connection/sender.js';
import { newStats } from '../../src/connection/stats.js';
import { ConverseError } from '../../src/errors.js';
import { decodeBody, encodeFrame } from '../../src/wire/codec.js';
import { FrameKind } from '../../src/wire/constants.js';
import { FrameDecoder } from '../../src/wire/framing.js';
import { SharedFrame } from '../../src/wire/shared-frame.js';
import { cleanup, waitUntil } from '../helpers/cleanup.js';
import { corePair } from './pair.js';

/** A Duplex that records the bytes of each write down to the "socket" (chunks of one writev together). */
function recordingStream(): { stream: Duplex; writes: number[]; bytes: Buffer[] } {
  const writes: number[] = [];
  const bytes: Buffer[] = [];
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      writes.push(chunk.length);
      bytes.push(Buffer.from(chunk)); // a copy: what the stream held then
      callback();
    },
    writev(chunks, callback) {
      writes.push(chunks.reduce((n, c) => n + (c.chunk as Buffer).length, 0));
      for (const c of chunks) bytes.push(Buffer.from(c.chunk as Buffer));
      callback();
    },
  });
  return { stream, writes, bytes };
}

/** The byte counts of writes carrying `counts[0]` frames, then `counts[1]` … of `frames` in order. */
function batches(frames: Buffer[], counts: number[]): number[] {
  let at = 0;
  return counts.map((n) => frames.slice(at, (at += n)).reduce((sum, f) => sum + f.length, 0));
}

function sender(stream: Duplex): Sender {
  const s = new Sender(stream, newStats(), 8 * 1024 * 1024, 4 * 1024 * 1024, new ReadFlow(stream));
  s.framing = true;
  return s;
}

const nextTick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

describe('Sender batching', () => {
  it('a burst of 300 frames in one tick leaves in growing batches, the rest at the end of the tick, in order', async () => {
    const { stream, writes, bytes } = recordingStream();
    const s = sender(stream);
    const frames = Array.from({ length: 300 }, (_, i) => s.encode([FrameKind.REPLY, i, i * 2]));
    for (const f of frames) s.writeFrame(f);
    // Before the tick ends, the first batches have already gone down.
    expect(writes).toEqual(batches(frames, [8, 16, 32, 64, 128]));
    await nextTick();
    expect(writes).toEqual(batches(frames, [8, 16, 32, 64, 128, 52]));
    expect(Buffer.concat(bytes).equals(Buffer.concat(frames))).toBe(true);
  });

  it('past 128 frames the batches stay at 128 (a long burst: 8, 16, 32, 64, 128, 128, 128, then the rest)', async () => {
    const { stream, writes, bytes } = recordingStream();
    const s = sender(stream);
    const frames = Array.from({ length: 600 }, (_, i) => s.encode([FrameKind.REPLY, i, i]));
    for (const f of frames) s.writeFrame(f);
    expect(writes).toEqual(batches(frames, [8, 16, 32, 64, 128, 128, 128]));
    await nextTick();
    expect(writes).toEqual(batches(frames, [8, 16, 32, 64, 128, 128, 128, 96]));
    expect(Buffer.concat(bytes).equals(Buffer.concat(frames))).toBe(true);
  });

  it('exactly 64 KiB leaves at once; a byte less waits for the end of the tick', async () => {
    const { stream, writes } = recordingStream();
    const s = sender(stream);
    const exact = s.encode([FrameKind.REPLY, 0, new Uint8Array(65_527)]);
    expect(exact.length).toBe(64 * 1024);
    const less = s.encode([FrameKind.REPLY, 0, new Uint8Array(65_526)]);
    s.writeFrame(less);
    expect(writes).toEqual([]);
    await nextTick();
    expect(writes).toEqual([less.length]);
    s.writeFrame(exact);
    expect(writes).toEqual([less.length, exact.length]);
  });

  it('the next tick starts with a small batch again', async () => {
    const { stream, writes } = recordingStream();
    const s = sender(stream);
    const frames = Array.from({ length: 20 }, (_, i) => s.encode([FrameKind.REPLY, i, i]));
    for (const f of frames) s.writeFrame(f);
    await nextTick();
    for (const f of frames) s.writeFrame(f);
    await nextTick();
    expect(writes).toEqual([...batches(frames, [8, 12]), ...batches(frames, [8, 12])]);
  });

  it('a few frames in one tick still leave together at its end (a lone ask is not split)', async () => {
    const { stream, writes } = recordingStream();
    const s = sender(stream);
    const frames = [s.encode([FrameKind.ASK, 1, { type: 'a' }]), s.encode([FrameKind.ASK, 2, { type: 'b' }]), s.encode([FrameKind.ASK, 3, { type: 'c' }])];
    for (const f of frames) s.writeFrame(f);
    expect(writes).toEqual([]);
    await nextTick();
    expect(writes).toEqual(batches(frames, [3]));
  });

  it('64 KiB of frames leave at once, whatever their count (large frames do not wait for the tick)', async () => {
    const { stream, writes } = recordingStream();
    const s = sender(stream);
    const big = s.encode([FrameKind.REPLY, 1, new Uint8Array(70 * 1024)]);
    const small = s.encode([FrameKind.REPLY, 0, 0]);
    s.writeFrame(small);
    s.writeFrame(big);
    expect(writes).toEqual([small.length + big.length]);
    await nextTick();
    expect(writes).toEqual([small.length + big.length]);
  });

  it('small frames (up to 4 KiB) leave copied into one chunk per batch; a larger frame goes as it is; every byte is counted', async () => {
    const chunks: Buffer[][] = [];
    const stream = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        chunks.push([chunk]);
        callback();
      },
      writev(list, callback) {
        chunks.push(list.map((c) => c.chunk as Buffer));
        callback();
      },
    });
    const stats = newStats();
    const s = new Sender(stream, stats, 8 * 1024 * 1024, 4 * 1024 * 1024, new ReadFlow(stream));
    s.framing = true;
    // [REPLY, 1, string of k]: 3-byte prefix, then 1 + 1 + 1 + 3 (str 16) + k bytes of body.
    const sized = (bytes: number): Buffer => s.encode([FrameKind.REPLY, 1, 'x'.repeat(bytes - 9)]);
    const small = s.encode([FrameKind.REPLY, 2, 2]);
    const exact = sized(4096);
    const over = sized(4097);
    expect([exact.length, over.length]).toEqual([4096, 4097]);
    s.writeFrame(small);
    s.writeFrame(exact);
    s.writeFrame(over);
    s.writeReply(3, 'sum', 6); // encoded and written from the codec's slab (a range of it)
    await nextTick();
    const reply = encodeFrame([FrameKind.REPLY, 3, 6], false, 1 << 20);
    expect(chunks).toHaveLength(1); // one writev
    const [batch] = chunks;
    expect(batch).toHaveLength(3);
    expect(batch![0]!.equals(Buffer.concat([small, exact]))).toBe(true);
    expect(batch![0]!.buffer).not.toBe(small.buffer); // a copy, in the output slab
    expect(batch![1]).toBe(over); // the frame itself
    expect(batch![2]!.equals(reply)).toBe(true);
    expect(stats.messagesOut).toBe(4);
    expect(stats.bytesOut).toBe(small.length + exact.length + over.length + reply.length);
  });

  it('small frames that fill the budget leave with a callback: a send waiting for room is released once they are handed over', async () => {
    // An in-memory stream whose high-water mark (16 KiB) is far above the budget: Node emits no
    // 'drain' for these writes, so only the write's own callback can tell that room came back.
    const stream = new Duplex({
      read() {},
      write(_chunk, _encoding, callback) {
        setImmediate(callback);
      },
      writev(_chunks, callback) {
        setImmediate(callback);
      },
    });
    const s = new Sender(stream, newStats(), 100, 1 << 20, new ReadFlow(stream));
    s.framing = true;
    const frame = s.encode([FrameKind.REPLY, 1, 'x'.repeat(44)]);
    expect(frame.length).toBe(50); // two fill the budget of 100 exactly
    s.writeFrame(frame);
    s.writeFrame(frame);
    expect(s.full).toBe(true);
    let released = false;
    void s.whenWritable(60_000, undefined, 't').then(() => (released = true));
    for (let i = 0; i < 20 && !released; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(released).toBe(true);
    expect(s.full).toBe(false);
  });

  it('two connections writing small frames in the same tick each send exactly their own frames, in order (the shared slab)', async () => {
    const a = recordingStream();
    const b = recordingStream();
    const sa = sender(a.stream);
    const sb = sender(b.stream);
    // Interleaved, and past the slab's size (256 KiB) in all, so runs are cut and slabs replaced.
    const framesA: Buffer[] = [];
    const framesB: Buffer[] = [];
    for (let i = 0; i < 3000; i++) {
      const fa = sa.encode([FrameKind.REPLY, i, 'a'.repeat(i % 97)]);
      sa.writeFrame(fa);
      framesA.push(Buffer.from(fa));
      const fb = sb.encode([FrameKind.REPLY, i, { b: i, pad: 'b'.repeat(i % 61) }]);
      sb.writeFrame(fb);
      framesB.push(Buffer.from(fb));
      if (i % 500 === 0) await nextTick();
    }
    await nextTick();
    expect(Buffer.concat(a.bytes).equals(Buffer.concat(framesA))).toBe(true);
    expect(Buffer.concat(b.bytes).equals(Buffer.concat(framesB))).toBe(true);
  });

  it('frames waiting in the batch count against the budget, and end() and flushed() send them first', async () => {
    const { stream, bytes } = recordingStream();
    const ended: Buffer[] = [];
    stream.on('finish', () => ended.push(Buffer.concat(bytes)));
    const s = new Sender(stream, newStats(), 100, 4 * 1024 * 1024, new ReadFlow(stream));
    s.framing = true;
    const frame = s.encode([FrameKind.REPLY, 1, 'x'.repeat(60)]);
    s.writeFrame(frame);
    s.writeFrame(frame);
    // Both wait in the batch (the tick is not over): the budget of 100 bytes is used up all the same.
    expect(bytes).toEqual([]);
    expect(s.buffered).toBe(2 * frame.length);
    expect(s.full).toBe(true);
    await s.flushed(undefined);
    expect(Buffer.concat(bytes).equals(Buffer.concat([frame, frame]))).toBe(true);
    s.writeFrame(frame);
    s.end();
    await new Promise((resolve) => stream.once('finish', resolve));
    expect(ended).toHaveLength(1);
    expect(ended[0]!.equals(Buffer.concat([frame, frame, frame]))).toBe(true);
  });
});

/**
 * A peer that reads only when told: each write down to the "socket" is held (its bytes stay in
 * the stream's writableLength) until `read()` hands the held writes over, as a socket whose peer
 * stopped reading does. Every frame handed over is decoded, in order.
 */
function slowPeer(highWaterMark = 1, checksum = false): { stream: Duplex; frames: unknown[][]; read(): void; held(): number } {
  const frames: unknown[][] = [];
  const decoder = new FrameDecoder(64 * 1024 * 1024, checksum, (body) => frames.push(decodeBody(body) as unknown[]), (error) => {
    throw error;
  });
  let held: Array<{ chunks: Buffer[]; callback: () => void }> = [];
  const stream = new Duplex({
    // 1: Node's own 'drain' comes after every write; large: it never comes (the budget is below it).
    highWaterMark,
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      held.push({ chunks: [chunk], callback });
    },
    writev(chunks, callback) {
      held.push({ chunks: chunks.map((c) => c.chunk as Buffer), callback });
    },
  });
  const read = (): void => {
    // Node hands the next buffered chunks down as each callback runs: read until nothing is held.
    while (held.length > 0) {
      const batch = held;
      held = [];
      for (const { chunks, callback } of batch) {
        for (const chunk of chunks) decoder.push(chunk);
        callback();
      }
    }
  };
  return { stream, frames, read, held: () => held.length };
}

const FRAME = encodeFrame([FrameKind.TELL, { type: 't', pad: 'x'.repeat(90) }], false, 1 << 20);

/** A sender with a budget of `frames` FRAMEs, framing, over a slow peer; its read flow is real. */
function budgeted(frames = 2) {
  const peer = slowPeer();
  const flow = new ReadFlow(peer.stream);
  const stats = newStats();
  const s = new Sender(peer.stream, stats, frames * FRAME.length, 1 << 20, flow);
  s.framing = true;
  return { s, peer, flow, stats };
}

const settleIo = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('Sender: the write budget (maxWriteBuffer)', () => {
  it('is used up exactly when the bytes not yet handed to the OS reach it, not one frame before', async () => {
    const { s, peer } = budgeted(2);
    expect(s.full).toBe(false);
    s.writeFrame(FRAME);
    expect(s.buffered).toBe(FRAME.length);
    expect(s.full).toBe(false);
    s.writeFrame(FRAME);
    expect(s.buffered).toBe(2 * FRAME.length);
    expect(s.full).toBe(true);
    await settleIo();
    expect(s.bytesHandedOver).toBe(0);
    peer.read();
    await settleIo();
    expect(s.full).toBe(false);
    expect(s.buffered).toBe(0);
    expect(s.bytesHandedOver).toBe(2 * FRAME.length);
    expect(peer.frames).toHaveLength(2);
  });

  it('a stream that is ended or destroyed has no room (writers then wait for the release)', () => {
    const ended = budgeted(2);
    ended.peer.stream.end();
    expect(ended.s.full).toBe(true);
    const destroyed = budgeted(2);
    destroyed.peer.stream.destroy();
    expect(destroyed.s.full).toBe(true);
    expect(destroyed.s.closed).toBe(true);
    expect(ended.s.closed).toBe(false);
  });

  it('a frame that takes the buffer over the budget pauses reading from the peer (WRITES); one that only fills it does not', async () => {
    const { s, peer, flow } = budgeted(2);
    s.writeFrame(FRAME);
    s.writeFrame(FRAME); // exactly at the budget: full, but not over it
    expect(flow.isPausedFor(PauseReason.WRITES)).toBe(false);
    s.writeFrame(FRAME); // the answer to something the peer sent may pass it by one frame
    expect(flow.isPausedFor(PauseReason.WRITES)).toBe(true);
    await settleIo();
    peer.read();
    await settleIo();
    expect(flow.isPausedFor(PauseReason.WRITES)).toBe(false);
    expect(peer.frames).toHaveLength(3);
  });

  it('reading resumes once the frames over the budget are handed over, though Node emits no drain below its own mark', async () => {
    // A budget below Node's high-water mark: 'drain' never says there is room.
    const peer = slowPeer(1 << 20);
    const flow = new ReadFlow(peer.stream);
    const s = new Sender(peer.stream, newStats(), 2 * FRAME.length, 1 << 20, flow);
    s.framing = true;
    let drains = 0;
    peer.stream.on('drain', () => drains++);
    for (let i = 0; i < 3; i++) s.writeFrame(FRAME);
    expect(flow.isPausedFor(PauseReason.WRITES)).toBe(true);
    await settleIo();
    peer.read();
    await settleIo();
    expect(flow.isPausedFor(PauseReason.WRITES)).toBe(false);
    expect(drains).toBe(0);
  });

  // Small frames go out copied into a batch, frames over 4 KiB as they are: both paths must ask
  // to be told when a frame that fills the budget exactly is flushed.
  it.each([
    ['frames of about 100 bytes', FRAME],
    ['frames over 4 KiB', encodeFrame([FrameKind.TELL, { type: 't', pad: 'x'.repeat(8 * 1024) }], false, 1 << 20)],
  ])('a writer waiting on a budget filled exactly (not passed) by %s runs once the peer reads, though Node emits no drain', async (_name, frame) => {
    const peer = slowPeer(1 << 20);
    const s = new Sender(peer.stream, newStats(), 2 * frame.length, 1 << 20, new ReadFlow(peer.stream));
    s.framing = true;
    s.writeFrame(frame);
    s.writeFrame(frame);
    expect(s.full).toBe(true);
    let ran = false;
    s.whenRoom(() => (ran = true));
    const sent = s.whenWritable(2_000, undefined, 'ask');
    await settleIo();
    peer.read();
    await sent;
    expect(ran).toBe(true);
    expect(peer.frames).toHaveLength(2);
  });

  it('whenRoom: writes at once when there is room and nobody waits; otherwise in order once the peer has read enough, each finding room', async () => {
    const { s, peer } = budgeted(2);
    const order: string[] = [];
    s.whenRoom(() => order.push('now'));
    expect(order).toEqual(['now']);
    s.writeFrame(FRAME);
    s.writeFrame(FRAME);
    for (const name of ['a', 'b', 'c']) {
      s.whenRoom(() => {
        order.push(name);
        s.writeFrame(FRAME); // each writer uses a frame of the budget
      });
    }
    expect(order).toEqual(['now']);
    await settleIo();
    peer.read(); // room for two frames: a and b write, c waits for the next room
    await settleIo();
    expect(order).toEqual(['now', 'a', 'b']);
    expect(s.full).toBe(true);
    peer.read();
    await settleIo();
    expect(order).toEqual(['now', 'a', 'b', 'c']);
  });

  it('whenRoom queues behind the writers still waiting even when there is room right now (writers queue fairly)', async () => {
    const { s, peer } = budgeted(1);
    const order: string[] = [];
    s.writeFrame(FRAME);
    // The first writer, run once there is room, asks for room again while another still waits.
    s.whenRoom(() => {
      order.push('a');
      s.whenRoom(() => order.push('newcomer'));
    });
    s.whenRoom(() => order.push('b'));
    await settleIo();
    peer.read();
    await settleIo();
    expect(order).toEqual(['a', 'b', 'newcomer']);
  });

  it('a frame that fills the budget after smaller ones already on their way: room comes back when it leaves', async () => {
    const peer = slowPeer(1 << 20);
    const s = new Sender(peer.stream, newStats(), FRAME.length, 1 << 20, new ReadFlow(peer.stream));
    s.framing = true;
    s.writeControl(FrameKind.PING);
    await settleIo(); // the PING is on its way (held by the peer)
    s.writeFrame(FRAME);
    expect(s.full).toBe(true);
    const sent = s.whenWritable(2_000, undefined, 'ask');
    await settleIo();
    peer.read();
    await sent;
    expect(peer.frames).toHaveLength(2);
  });

  it('the writers run before user sends waiting for room are released', async () => {
    const { s, peer } = budgeted(1);
    const order: string[] = [];
    s.writeFrame(FRAME);
    const sent = s.whenWritable(Infinity, undefined, 'ask').then(() => order.push('user send'));
    s.whenRoom(() => order.push('writer'));
    await settleIo();
    peer.read();
    await sent;
    expect(order).toEqual(['writer', 'user send']);
  });

  it('user sends waiting for room stay waiting while a writer has filled the budget again', async () => {
    const { s, peer } = budgeted(1);
    s.writeFrame(FRAME);
    let released = false;
    void s.whenWritable(Infinity, undefined, 'ask').then(() => (released = true));
    s.whenRoom(() => s.writeFrame(FRAME));
    await settleIo();
    peer.read(); // room for the writer only
    await settleIo();
    expect(peer.held()).toBe(1);
    expect(released).toBe(false);
    peer.read();
    await settleIo();
    expect(released).toBe(true);
  });

  it('whenWritable resolves every waiting send once there is room', async () => {
    const { s, peer } = budgeted(1);
    s.writeFrame(FRAME);
    const done: number[] = [];
    const waits = [1, 2, 3].map((n) => s.whenWritable(10_000, undefined, 'ask').then(() => done.push(n)));
    await settleIo();
    expect(done).toEqual([]);
    peer.read();
    await Promise.all(waits);
    expect(done).toEqual([1, 2, 3]);
  });

  it('whenWritable fails with TIMEOUT, naming the message type and the budget, when the peer reads nothing in time', async () => {
    const { s } = budgeted(1);
    s.writeFrame(FRAME);
    const error = await s.whenWritable(20, undefined, 'report').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TIMEOUT' });
    expect((error as Error).message).toBe(`"report" could not be sent within 20 ms: over ${FRAME.length} bytes (maxWriteBuffer) are waiting for the peer to read them.`);
  });

  it('a send that timed out is no longer waiting: it leaves no listener on its signal, and room later releases only the others', async () => {
    const { s, peer } = budgeted(1);
    s.writeFrame(FRAME);
    const controller = new AbortController(); // one signal for many sends, as an application may keep
    const timedOut = await s.whenWritable(20, controller.signal, 'report').catch((e: unknown) => e);
    expect(timedOut).toMatchObject({ code: 'TIMEOUT' });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    const other = s.whenWritable(10_000, controller.signal, 'report');
    await settleIo();
    peer.read();
    await other;
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('whenWritable fails with ABORTED when its signal aborts (or already had), and leaves no listener on the signal', async () => {
    const { s, peer } = budgeted(1);
    s.writeFrame(FRAME);
    const already = AbortSignal.abort(new Error('changed my mind'));
    const first = await s.whenWritable(10_000, already, 'ask').catch((e: unknown) => e);
    expect(first).toMatchObject({ code: 'ABORTED', cause: already.reason });
    const controller = new AbortController();
    const waiting = s.whenWritable(10_000, controller.signal, 'ask').catch((e: unknown) => e);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort(new Error('stop'));
    expect(await waiting).toMatchObject({ code: 'ABORTED', cause: controller.signal.reason });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    // The aborted send is no longer waiting: room later releases only the one still waiting.
    const kept = new AbortController();
    const resolved = s.whenWritable(10_000, kept.signal, 'ask');
    await settleIo();
    peer.read();
    await resolved;
    expect(getEventListeners(kept.signal, 'abort')).toHaveLength(0); // removed once it went ahead
  });

  it('a send that timed out or was aborted is let go: nothing is kept waiting for room (a peer that never reads cannot pile them up)', async () => {
    const { s } = budgeted(1);
    s.writeFrame(FRAME);
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const signals: Array<WeakRef<AbortSignal>> = [];
    await (async () => {
      // Each leaves from the head of the queue of sends waiting for room.
      const aborted = new AbortController();
      const timed = new AbortController();
      signals.push(new WeakRef(aborted.signal), new WeakRef(timed.signal));
      const first = s.whenWritable(10_000, aborted.signal, 'a').catch((e: unknown) => e);
      const second = s.whenWritable(5, timed.signal, 'b').catch((e: unknown) => e);
      aborted.abort();
      expect(await first).toMatchObject({ code: 'ABORTED' });
      expect(await second).toMatchObject({ code: 'TIMEOUT' });
    })();
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect(signals.map((ref) => ref.deref())).toEqual([undefined, undefined]);
  });

  it('release: every send still waiting fails CONNECTION_CLOSED with the reason, and the waiting writers run (to find the stream gone)', async () => {
    const { s, peer } = budgeted(1);
    s.writeFrame(FRAME);
    const controller = new AbortController();
    const waiting = [s.whenWritable(10_000, controller.signal, 'a'), s.whenWritable(Infinity, undefined, 'b')].map((p) => p.catch((e: unknown) => e));
    let ran = 0;
    s.whenRoom(() => ran++);
    s.whenRoom(() => ran++);
    const reason = new ConverseError('CONNECTION_CLOSED', 'the peer went away');
    peer.stream.destroy();
    s.release(reason);
    for (const error of await Promise.all(waiting)) {
      expect(error).toMatchObject({ code: 'CONNECTION_CLOSED', cause: reason });
      expect((error as Error).message).toMatch(/the peer went away/);
    }
    expect(ran).toBe(2);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    s.release(reason); // again: nothing left to release
    expect(ran).toBe(2);
  });
});

describe('Sender: what a queued write keeps alive', () => {
  /** A Duplex that keeps each chunk it is handed (not a copy) and completes a write only when told. */
  function heldStream() {
    const chunks: Buffer[] = [];
    const callbacks: Array<() => void> = [];
    const stream = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callbacks.push(callback);
      },
      writev(list, callback) {
        for (const c of list) chunks.push(c.chunk as Buffer);
        callbacks.push(callback);
      },
    });
    return { stream, chunks, release: () => callbacks.splice(0).forEach((callback) => callback()) };
  }
  const owns = (chunk: Buffer): boolean => chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.length;

  it('behind a backlog, frames are queued as copies of their own, not views that keep a shared buffer alive', async () => {
    const { stream, chunks, release } = heldStream();
    const s = sender(stream);
    // A peer keeping up: the batch goes down as a view into the shared slab (no copy).
    s.writeFrame(s.encode([FrameKind.REPLY, 1, 'first']));
    await nextTick();
    expect(chunks).toHaveLength(1);
    expect(owns(chunks[0]!)).toBe(false);
    // That write is not done (the peer reads nothing): the next batches wait in the stream.
    const small = s.encode([FrameKind.REPLY, 2, 'small']);
    const large = s.encode([FrameKind.REPLY, 3, 'x'.repeat(8 * 1024)]);
    expect(owns(large)).toBe(false); // the codec's frame is a view into msgpackr's buffer
    s.writeFrame(small);
    s.writeFrame(large);
    await nextTick();
    release(); // the stream now hands down what waited
    await waitUntil(() => chunks.length === 3, 'the queued chunks reached the stream');
    expect(chunks.slice(1).map(owns)).toEqual([true, true]);
    expect(Buffer.concat(chunks.slice(1)).equals(Buffer.concat([small, large]))).toBe(true);
    // Caught up again: views again.
    release();
    await waitUntil(() => stream.writableLength === 0, 'everything handed down');
    s.writeFrame(s.encode([FrameKind.REPLY, 4, 'caught up']));
    await nextTick();
    expect(owns(chunks.at(-1)!)).toBe(false);
  });

  it('behind a backlog, a frame over 4 KiB stays a view when the buffer behind it is at most about 4× its size (copying it would cost more than it saves)', async () => {
    const { stream, chunks, release } = heldStream();
    const s = sender(stream);
    s.writeFrame(s.encode([FrameKind.REPLY, 1, 'first']));
    await nextTick();
    // Frames over 4 KiB that are views: one nearly owns its buffer (as msgpackr's frame of a
    // large message does), one is a small part of a large buffer (a few KiB of a big slab).
    const mostlyItsOwn = Buffer.alloc(64 * 1024).subarray(0, 20_000);
    const smallPartOfMuch = Buffer.alloc(256 * 1024).subarray(1000, 11_000);
    s.writeFrame(mostlyItsOwn);
    s.writeFrame(smallPartOfMuch);
    await nextTick();
    release();
    await waitUntil(() => chunks.length === 3, 'the queued chunks reached the stream');
    expect(chunks[1]!.buffer).toBe(mostlyItsOwn.buffer); // written as it is: at most 64 KiB kept for 20 KB
    expect(owns(chunks[2]!)).toBe(true); // copied: 10 KB must not keep 256 KiB alive
    expect(chunks[2]!.equals(smallPartOfMuch)).toBe(true);
  });
});

describe('Sender: what it writes', () => {
  it('nothing once the stream is destroyed or ended, and nothing is counted', async () => {
    for (const how of ['destroy', 'end'] as const) {
      const { s, peer, stats } = budgeted(4);
      if (how === 'destroy') peer.stream.destroy();
      else peer.stream.end();
      s.writeFrame(FRAME);
      s.writeControl(FrameKind.PING);
      if (how === 'destroy') s.writeRaw(Buffer.from('hello'));
      expect(stats.messagesOut, how).toBe(0);
      expect(stats.bytesOut, how).toBe(0);
      await settleIo();
      peer.read();
      expect(peer.frames, how).toEqual([]);
    }
  });

  it('counts every frame and byte it writes; handshake bytes count as bytes only', async () => {
    const { s, stats, peer } = budgeted(4);
    s.writeRaw(Buffer.from('IPCV'));
    expect(stats).toMatchObject({ bytesOut: 4, messagesOut: 0 });
    s.writeFrame(FRAME);
    s.writeFrame(FRAME);
    expect(stats).toMatchObject({ bytesOut: 4 + 2 * FRAME.length, messagesOut: 2 });
    expect(s.buffered).toBe(4 + 2 * FRAME.length);
    peer.stream.destroy();
  });

  it('small frames of two connections written in turn in one tick each reach their own peer, whole and in order', async () => {
    const one = budgeted(1000);
    const two = budgeted(1000);
    const sent: Array<[unknown[], unknown[]]> = [];
    for (let i = 0; i < 40; i++) {
      const a = [FrameKind.TELL, { type: 'a', i, pad: 'a'.repeat(i * 7) }];
      const b = [FrameKind.TELL, { type: 'b', i, pad: 'b'.repeat(i * 5) }];
      one.s.writeEnvelope(a);
      two.s.writeEnvelope(b);
      if (i % 3 === 0) one.s.writeEnvelope(a); // runs of different lengths on each side
      sent.push([a, b]);
    }
    await settleIo();
    one.peer.read();
    two.peer.read();
    const expectedOne = sent.flatMap(([a], i) => (i % 3 === 0 ? [a, a] : [a]));
    expect(one.peer.frames).toEqual(expectedOne);
    expect(two.peer.frames).toEqual(sent.map(([, b]) => b));
  });

  it('small frames held by a peer that does not read stay intact while later frames fill new slabs (over 256 KiB across ticks)', async () => {
    const { s, peer } = budgeted(100_000);
    const expected: unknown[][] = [];
    for (let tick = 0; tick < 8; tick++) {
      for (let i = 0; i < 100; i++) {
        const envelope = [FrameKind.TELL, { type: 't', tick, i, pad: String.fromCharCode(97 + ((tick + i) % 26)).repeat(300 + i) }];
        s.writeEnvelope(envelope);
        expected.push(envelope);
      }
      await settleIo(); // this tick's frames are on their way, held by the peer
    }
    expect(s.buffered).toBeGreaterThan(256 * 1024);
    peer.read();
    expect(peer.frames).toEqual(expected);
  });

  it('frames carry the CRC-32 when the handshake agreed on it; the flight recorder sees each frame with its message type where known', async () => {
    const peer = slowPeer(1, true);
    const s = new Sender(peer.stream, newStats(), 1 << 20, 1 << 20, new ReadFlow(peer.stream));
    s.framing = true;
    s.checksum = true;
    const seen: Array<[number, boolean, string | undefined]> = [];
    s.recorder = { frameOut: (_buf: Buffer, start: number, end: number, checksum: boolean, type?: string) => seen.push([end - start, checksum, type]) } as unknown as FlightRecorder;
    s.writeEnvelope([FrameKind.TELL, { type: 'note' }]);
    s.writeEnvelope([FrameKind.ASK, 1, { type: 'question' }]); // the ask's type is recorded by its writer
    s.writeShared(new SharedFrame([FrameKind.TELL, { type: 'news' }]));
    s.writeReply(1, 'question', 42);
    await settleIo();
    peer.read();
    expect(peer.frames).toEqual([[FrameKind.TELL, { type: 'note' }], [FrameKind.ASK, 1, { type: 'question' }], [FrameKind.TELL, { type: 'news' }], [FrameKind.REPLY, 1, 42]]);
    expect(seen.map(([, checksum, type]) => [checksum, type])).toEqual([
      [true, 'note'],
      [true, undefined],
      [true, 'news'],
      [true, 'question'],
    ]);
  });

  it('refuses a frame over the limit agreed with the peer (MESSAGE_TOO_LARGE), and the stream stays usable', async () => {
    const peer = slowPeer();
    const s = new Sender(peer.stream, newStats(), 1 << 20, 100, new ReadFlow(peer.stream));
    s.framing = true;
    expect(() => s.writeEnvelope([FrameKind.TELL, { type: 'big', text: 'x'.repeat(200) }])).toThrow(expect.objectContaining({ code: 'MESSAGE_TOO_LARGE' }));
    s.writeEnvelope([FrameKind.TELL, { type: 'small' }]);
    await settleIo();
    peer.read();
    expect(peer.frames).toEqual([[FrameKind.TELL, { type: 'small' }]]);
  });

  it('control frames only once framing is agreed (a new sender has not): [kind], [kind, id], [kind, id, value]', async () => {
    const peer = slowPeer();
    const s = new Sender(peer.stream, newStats(), 1 << 20, 1 << 20, new ReadFlow(peer.stream));
    s.writeControl(FrameKind.GOODBYE); // before the handshake is done: not written
    s.framing = true;
    s.writeControl(FrameKind.PING);
    s.writeControl(FrameKind.CANCEL, 3);
    s.writeControl(FrameKind.CREDIT, 3, 16);
    await settleIo();
    peer.read();
    expect(peer.frames).toEqual([[FrameKind.PING], [FrameKind.CANCEL, 3], [FrameKind.CREDIT, 3, 16]]);
  });

  it('a reply that cannot be encoded reaches the asker as its REMOTE_ERROR instead', async () => {
    const { s, peer } = budgeted(4);
    s.writeReply(5, 'lookup', { ok: true });
    s.writeReply(6, 'lookup', { when: () => 1 });
    await settleIo();
    peer.read();
    expect(peer.frames[0]).toEqual([FrameKind.REPLY, 5, { ok: true }]);
    const [kind, id, payload] = peer.frames[1]!;
    expect([kind, id]).toEqual([FrameKind.ERROR, 6]);
    expect(payload).toMatchObject({ code: 'REMOTE_ERROR' });
    expect((payload as { message: string }).message).toMatch(/^The peer's handler for "lookup" failed: ConverseError: Cannot encode the message: message\[2\]\.when is a function, which cannot be sent\.$/);
  });

  it('an error whose own text cannot be encoded (or is too large) is sent as a plain one with the same code', async () => {
    const { s, peer } = budgeted(4);
    s.sendLimit = 200;
    s.writeError(7, 'REMOTE_ERROR', 'x'.repeat(500));
    s.writeError(8, 'INVALID_MESSAGE', 'short');
    await settleIo();
    peer.read();
    expect(peer.frames).toEqual([
      [FrameKind.ERROR, 7, { code: 'REMOTE_ERROR', message: 'the error could not be encoded' }],
      [FrameKind.ERROR, 8, { code: 'INVALID_MESSAGE', message: 'short' }],
    ]);
  });

  it('flushed() resolves once the stream has handed everything written so far to the OS; on a destroyed stream it fails CONNECTION_CLOSED', async () => {
    const { s, peer } = budgeted(4);
    s.writeFrame(FRAME);
    let flushed = false;
    const done = s.flushed(undefined).then(() => (flushed = true));
    await settleIo();
    expect(flushed).toBe(false);
    peer.read();
    await done;
    expect(flushed).toBe(true);
    peer.stream.destroy();
    const cause = new Error('reset by peer');
    await expect(s.flushed(cause)).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', cause });
  });
});

describe('the write budget across the engine (two cores over an in-memory pair)', () => {
  afterEach(cleanup);

  it('a broadcast skips a peer that is not reading (counted), and reaches it again once it has read', async () => {
    const news: unknown[] = [];
    const { server, streams } = await corePair(
      { maxWriteBuffer: 4096 },
      { handlers: { news: (e: { n: number }) => void news.push(e.n) } },
      1024,
    );
    streams.client.pause(); // the client stops reading its socket
    const payload = 'n'.repeat(1000);
    let written = 0;
    for (let n = 0; n < 50 && server.core.writeShared(new SharedFrame([FrameKind.TELL, { type: 'news', n, payload }])); n++) written++;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(50); // the budget (4 KiB) ran out: the rest were skipped
    expect(server.core.stats.broadcastsSkipped).toBe(1);
    expect(server.core.writeShared(new SharedFrame([FrameKind.TELL, { type: 'news', n: -1, payload }]))).toBe(false);
    expect(server.core.stats.broadcastsSkipped).toBe(2);
    // What was queued stayed within the budget, plus the one frame that filled it.
    expect(streams.server.writableLength).toBeLessThan(4096 + 1100);
    streams.client.resume();
    await waitUntil(() => news.length === written, 'the queued broadcasts arrived');
    expect(news).toEqual(Array.from({ length: written }, (_, n) => n));
    expect(server.core.writeShared(new SharedFrame([FrameKind.TELL, { type: 'news', n: 99, payload }]))).toBe(true);
    await waitUntil(() => news.length === written + 1, 'the next broadcast arrived');
    expect(news.at(-1)).toBe(99);
  });
});

// Survivors of mutation testing judged equivalent (no input tells them apart), nearest tests above:
// - the 'drain' listener (removed, or its handler emptied; `onDrain`'s body emptied): every frame
//   that brings the buffer to the budget asks for its write callback, and any frame written while
//   the buffer is full does too, so the callback of the last of them comes no later than 'drain'.
// - the end-of-tick flush scheduled again when re-corking within a tick (`!this.tickScheduled` as
//   `true`, `tickScheduled = true` as `false`): the extra callbacks run after the burst, find
//   nothing corked, and only reset the batch limit the first one already reset.
// - the write callback asked for on every frame (`queued >= maxWriteBuffer` as `true`): checkRoom
//   then also runs with room to spare, where no writer or send waits (they wait only when full).
// - `uncorkNow()` without its `!this.corked` check: uncorking a stream that is not corked does
//   nothing, and the batch counters are already 0 then.
// - writeEnvelope's `envelope[0] === FrameKind.TELL` (for the recorder) as `true`: every other
//   envelope written through it has its numeric id second, whose `.type` is undefined too.
// - checkRoom's first `if (this.full) return` (the loop and the check after it stop the same
//   way), and `roomWaiters.length > 0` as `true` / `>= 0` (releasing none of none).
// - the timed-out or aborted send's `index >= 0` as `true`: the send is always still queued when
//   its timer or abort fires (both are cleared once it goes ahead or is released).
