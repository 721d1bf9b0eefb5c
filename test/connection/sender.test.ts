/**
 * The sender's batching: a burst of frames written in one tick leaves in batches that grow
 * (8, 16, 32, 64, then 128 frames), so the peer can start on the first ones while the rest are
 * still being encoded; what is left leaves at the end of the tick; a lone frame waits for the
 * end of its tick (coalescing stays); bytes arrive in order. An in-memory Duplex records each
 * write the stream hands down (no timing is measured).
 */
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ReadFlow } from '../../src/connection/flow.js';
import { Sender } from '../../src/connection/sender.js';
import { newStats } from '../../src/connection/stats.js';
import { FrameKind } from '../../src/wire/constants.js';

/** A Duplex that records how many chunks each write down to the "socket" carried. */
function recordingStream(): { stream: Duplex; writes: number[]; bytes: Buffer[] } {
  const writes: number[] = [];
  const bytes: Buffer[] = [];
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      writes.push(1);
      bytes.push(chunk);
      callback();
    },
    writev(chunks, callback) {
      writes.push(chunks.length);
      for (const c of chunks) bytes.push(c.chunk as Buffer);
      callback();
    },
  });
  return { stream, writes, bytes };
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
    expect(writes).toEqual([8, 16, 32, 64, 128]);
    await nextTick();
    expect(writes).toEqual([8, 16, 32, 64, 128, 52]);
    expect(Buffer.concat(bytes).equals(Buffer.concat(frames))).toBe(true);
  });

  it('the next tick starts with a small batch again', async () => {
    const { stream, writes } = recordingStream();
    const s = sender(stream);
    for (let i = 0; i < 20; i++) s.writeFrame(s.encode([FrameKind.REPLY, i, i]));
    await nextTick();
    for (let i = 0; i < 20; i++) s.writeFrame(s.encode([FrameKind.REPLY, i, i]));
    await nextTick();
    expect(writes).toEqual([8, 12, 8, 12]);
  });

  it('a few frames in one tick still leave together at its end (a lone ask is not split)', async () => {
    const { stream, writes } = recordingStream();
    const s = sender(stream);
    s.writeFrame(s.encode([FrameKind.ASK, 1, { type: 'a' }]));
    s.writeFrame(s.encode([FrameKind.ASK, 2, { type: 'b' }]));
    s.writeFrame(s.encode([FrameKind.ASK, 3, { type: 'c' }]));
    expect(writes).toEqual([]);
    await nextTick();
    expect(writes).toEqual([3]);
  });

  it('64 KiB of frames leave at once, whatever their count (large frames do not wait for the tick)', async () => {
    const { stream, writes } = recordingStream();
    const s = sender(stream);
    const big = s.encode([FrameKind.REPLY, 1, new Uint8Array(70 * 1024)]);
    s.writeFrame(s.encode([FrameKind.REPLY, 0, 0]));
    s.writeFrame(big);
    expect(writes).toEqual([2]);
    await nextTick();
    expect(writes).toEqual([2]);
  });
});
