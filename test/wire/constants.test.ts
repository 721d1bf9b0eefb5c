/** The wire constants against docs/PROTOCOL.md and the documented option defaults (README.md). */
import { describe, expect, it } from 'vitest';
import * as wire from '../../src/wire/constants.js';

const MiB = 1024 * 1024;

describe('wire constants', () => {
  it('the length-prefix markers, the checksum size and the longest prefix are the documented ones', () => {
    expect(wire.LENGTH_INLINE_MAX).toBe(0xfb);
    expect(wire.LENGTH_U16).toBe(0xfc);
    expect(wire.LENGTH_U32).toBe(0xfd);
    expect(wire.LENGTH_U64).toBe(0xfe);
    expect(wire.LENGTH_RESERVED).toBe(0xff);
    expect(wire.MAX_LENGTH_PREFIX).toBe(9);
    expect(wire.CHECKSUM_SIZE).toBe(4);
  });

  it('the handshake and envelope numbers are the documented ones', () => {
    expect(Buffer.from(wire.MAGIC).toString('hex')).toBe('89494356');
    expect(wire.PROTOCOL_VERSION).toBe(1);
    expect(wire.HANDSHAKE_HEADER_SIZE).toBe(14);
    expect(wire.MAX_HANDSHAKE_EXTENSION).toBe(4096);
    expect(wire.HandshakeKind).toEqual({ HELLO: 1, WELCOME: 2, REJECT: 3 });
    expect(wire.HandshakeFlags).toEqual({ CHECKSUM: 1 });
    expect(wire.FrameKind).toEqual({ TELL: 0, ASK: 1, REPLY: 2, ERROR: 3, CANCEL: 4, GOODBYE: 5, PING: 6, PONG: 7, STREAM_ITEM: 8, STREAM_END: 9, CREDIT: 10 });
    expect(wire.ExtType).toEqual({ UNDEFINED: 0, SET: 0x53, MAP: 0x4d, TIMESTAMP: 0xff });
    expect(wire.MAX_NESTING_DEPTH).toBe(100);
  });

  it('the option defaults are the documented ones', () => {
    expect(wire.DEFAULT_MAX_MESSAGE_SIZE).toBe(MiB);
    expect(wire.DEFAULT_MAX_WRITE_BUFFER).toBe(8 * MiB);
    expect(wire.DEFAULT_REPLY_TIMEOUT).toBe(5000);
    expect(wire.DEFAULT_HANDSHAKE_TIMEOUT).toBe(5000);
    expect(wire.DEFAULT_CONNECT_TIMEOUT).toBe(5000);
    expect(wire.DEFAULT_CLOSE_TIMEOUT).toBe(5000);
    expect(wire.DEFAULT_FRAME_TIMEOUT).toBe(30_000);
  });
});
