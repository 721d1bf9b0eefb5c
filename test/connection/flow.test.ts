/**
 * ReadFlow, the one place that decides whether we read from the peer: each pause reason is a
 * bit, reading resumes only when the last reason is gone, the frame decoder is paused with the
 * stream (one chunk can hold thousands of frames), frames held back are delivered before the
 * stream resumes, and a released connection never reads again. An in-memory Duplex stands for
 * the socket; a recording decoder for the FrameDecoder.
 */
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PauseReason, ReadFlow } from '../../src/connection/flow.js';
import type { FrameDecoder } from '../../src/wire/framing.js';

function setUp(onResume?: (flow: ReadFlow) => void) {
  const stream = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
  stream.resume(); // flowing, as a socket with a 'data' listener is
  const calls: string[] = [];
  const flow = new ReadFlow(stream);
  const decoder = {
    pause: () => calls.push('decoder.pause'),
    resume: () => {
      calls.push('decoder.resume');
      onResume?.(flow);
    },
  } as unknown as FrameDecoder;
  const streamPause = stream.pause.bind(stream);
  const streamResume = stream.resume.bind(stream);
  stream.pause = () => (calls.push('stream.pause'), streamPause());
  stream.resume = () => (calls.push('stream.resume'), streamResume());
  return { stream, flow, decoder, calls };
}

describe('ReadFlow', () => {
  it('the first reason pauses the stream and the decoder; more reasons add bits, nothing else', () => {
    const { stream, flow, decoder, calls } = setUp();
    flow.useDecoder(decoder);
    expect(flow.pausedFor).toBe(0);
    flow.pause(PauseReason.WRITES);
    expect(calls).toEqual(['stream.pause', 'decoder.pause']);
    expect(stream.isPaused()).toBe(true);
    flow.pause(PauseReason.READER);
    flow.pause(PauseReason.WRITES); // the same reason again
    expect(calls).toEqual(['stream.pause', 'decoder.pause']);
    expect(flow.pausedFor).toBe(PauseReason.WRITES | PauseReason.READER);
    expect(flow.isPausedFor(PauseReason.WRITES)).toBe(true);
    expect(flow.isPausedFor(PauseReason.READER)).toBe(true);
    expect(flow.isPausedFor(PauseReason.FACADE)).toBe(false);
  });

  it('reading resumes only when the last reason is gone: held-back frames first, then the stream', () => {
    const { stream, flow, decoder, calls } = setUp();
    flow.useDecoder(decoder);
    flow.pause(PauseReason.WRITES);
    flow.pause(PauseReason.READER);
    calls.length = 0;
    flow.resume(PauseReason.WRITES);
    expect(calls).toEqual([]); // the reader still holds it
    expect(stream.isPaused()).toBe(true);
    expect(flow.pausedFor).toBe(PauseReason.READER);
    flow.resume(PauseReason.READER);
    expect(calls).toEqual(['decoder.resume', 'stream.resume']);
    expect(stream.isPaused()).toBe(false);
    expect(flow.pausedFor).toBe(0);
  });

  it('resuming a reason that is not held changes nothing (it does not resume another reason’s pause)', () => {
    const { stream, flow, decoder, calls } = setUp();
    flow.useDecoder(decoder);
    flow.pause(PauseReason.READER);
    calls.length = 0;
    flow.resume(PauseReason.WRITES);
    flow.resume(PauseReason.FACADE);
    expect(calls).toEqual([]);
    expect(flow.pausedFor).toBe(PauseReason.READER);
    expect(stream.isPaused()).toBe(true);
    // Nor does a reason that was never paused resume a running stream's decoder.
    flow.resume(PauseReason.READER);
    calls.length = 0;
    flow.resume(PauseReason.READER);
    expect(calls).toEqual([]);
  });

  it('when delivering held-back frames pauses reading again, the stream stays paused', () => {
    // A frame held back makes the application's queue full: it pauses for READER while the decoder resumes.
    const { stream, flow, decoder, calls } = setUp((f) => f.pause(PauseReason.READER));
    flow.useDecoder(decoder);
    flow.pause(PauseReason.WRITES);
    calls.length = 0;
    flow.resume(PauseReason.WRITES);
    // The new reason pauses again (from inside the decoder's resume); the stream is not resumed.
    expect(calls).toEqual(['decoder.resume', 'stream.pause', 'decoder.pause']);
    expect(stream.isPaused()).toBe(true);
    expect(flow.pausedFor).toBe(PauseReason.READER);
  });

  it('before the handshake (no decoder yet) only the stream is paused and resumed', () => {
    const { stream, flow, calls } = setUp();
    flow.pause(PauseReason.FACADE);
    flow.resume(PauseReason.FACADE);
    expect(calls).toEqual(['stream.pause', 'stream.resume']);
    expect(stream.isPaused()).toBe(false);
  });

  it('once stopped, nothing resumes reading any more', () => {
    const { stream, flow, decoder, calls } = setUp();
    flow.useDecoder(decoder);
    flow.pause(PauseReason.WRITES);
    flow.stop();
    calls.length = 0;
    flow.resume(PauseReason.WRITES);
    expect(calls).toEqual([]);
    expect(stream.isPaused()).toBe(true);
    expect(flow.pausedFor).toBe(0); // the reason is gone, reading is not back
  });
});
