import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConverseError } from '../../src/errors.js';
import { checksumOf } from '../../src/wire/codec.js';
import { FrameDecoder } from '../../src/wire/framing.js';
import { prng } from '../helpers/prng.js';

/*
 * FrameDecoder against docs/PROTOCOL.md §4 (frames). Frames are built here by hand, byte by byte,
 * from the spec (not with encodeFrame), so these tests check the decoder against the wire format
 * rather than against the encoder.
 */

const MiB = 1024 * 1024;

type Prefix = 'minimal' | 'u16' | 'u32' | 'u64';

/** The length prefix for `length`, in the requested (possibly non-minimal) form. */
function lengthPrefix(length: number, form: Prefix = 'minimal'): Buffer {
  if (form === 'minimal') form = length <= 0xfb ? 'minimal' : length <= 0xffff ? 'u16' : length <= 0xffffffff ? 'u32' : 'u64';
  switch (form) {
    case 'minimal':
      return Buffer.of(length);
    case 'u16': {
      const b = Buffer.alloc(3);
      b[0] = 0xfc;
      b.writeUInt16BE(length, 1);
      return b;
    }
    case 'u32': {
      const b = Buffer.alloc(5);
      b[0] = 0xfd;
      b.writeUInt32BE(length, 1);
      return b;
    }
    case 'u64': {
      const b = Buffer.alloc(9);
      b[0] = 0xfe;
      b.writeBigUInt64BE(BigInt(length), 1);
      return b;
    }
  }
}

/** CRC-32/ISO-HDLC written out independently of the library (reflected, poly 0xEDB88320, byte table). */
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  return c;
});

function referenceCrc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = CRC_TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function frame(body: Uint8Array, options: { checksum?: boolean; prefix?: Prefix } = {}): Buffer {
  const parts = [lengthPrefix(body.length, options.prefix)];
  if (options.checksum) {
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(referenceCrc32(body));
    parts.push(crc);
  }
  parts.push(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  return Buffer.concat(parts);
}


function randomBytes(random: () => number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (random() * 256) | 0;
  return b;
}

/**
 * A decoder that records what it delivers (copies: bodies may be views into the pushed chunk).
 * It takes frames as ranges, as a connection does (the default form, one Buffer per body, is
 * what the other decoders in these tests take).
 */
function decoder(maxMessageSize = MiB, checksum = false) {
  const frames: Buffer[] = [];
  const errors: ConverseError[] = [];
  const d = new FrameDecoder(
    maxMessageSize,
    checksum,
    (buf, start, end) => frames.push(Buffer.from(buf.subarray(start, end))),
    (error) => errors.push(error),
    true,
  );
  return { d, frames, errors };
}

describe('frames as ranges', () => {
  it('a frame inside one chunk is a range of that chunk (no Buffer is made for it); one that straddles chunks is its own body', () => {
    const seen: Array<[Buffer, number, number]> = [];
    const d = new FrameDecoder(MiB, true, (buf, start, end) => seen.push([buf, start, end]), () => {}, true);
    const a = Buffer.from('a1', 'hex');
    const b = Buffer.from('92c0c0', 'hex');
    const chunk = Buffer.concat([frame(a, { checksum: true }), frame(b, { checksum: true }), frame(a, { checksum: true }).subarray(0, 3)]);
    d.push(chunk);
    expect(seen).toEqual([
      [chunk, 5, 6],
      [chunk, 11, 14],
    ]);
    expect(seen[0]![0]).toBe(chunk);
    d.push(frame(a, { checksum: true }).subarray(3));
    expect(seen).toHaveLength(3);
    expect(seen[2]![0]).not.toBe(chunk);
    expect([seen[2]![1], seen[2]![2]]).toEqual([0, 1]);
    expect(seen[2]![0].equals(a)).toBe(true);
  });
});

/** Compare delivered bodies byte for byte (Buffer.equals: deep toEqual is slow on big buffers). */
function expectBodies(frames: Buffer[], bodies: Uint8Array[]): void {
  expect(frames.length).toBe(bodies.length);
  for (let i = 0; i < bodies.length; i++) {
    if (!frames[i]!.equals(bodies[i]!)) throw new Error(`frame ${i} differs: ${frames[i]!.length} bytes, expected ${bodies[i]!.length}`);
  }
}

function feedBytewise(d: FrameDecoder, data: Buffer): void {
  for (let i = 0; i < data.length; i++) d.push(data.subarray(i, i + 1));
}

/** The error's code, asserting it is a ConverseError. */
function codeOf(error: unknown): string {
  expect(error).toBeInstanceOf(ConverseError);
  return (error as ConverseError).code;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('FrameDecoder: length prefix', () => {
  it('delivers a zero-length body (whole, and byte by byte)', () => {
    const whole = decoder();
    whole.d.push(Buffer.of(0x00));
    expect(whole.frames).toEqual([Buffer.alloc(0)]);
    expect(whole.errors).toEqual([]);

    // Zero-length frames in every prefix form, fed byte by byte (the slow header path).
    const split = decoder();
    feedBytewise(split.d, Buffer.concat([frame(Buffer.alloc(0), { prefix: 'u16' }), frame(Buffer.alloc(0), { prefix: 'u32' }), frame(Buffer.alloc(0), { prefix: 'u64' })]));
    expect(split.frames).toEqual([Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)]);
    expect(split.errors).toEqual([]);
  });

  it('delivers a zero-length body with a checksum (CRC-32 of nothing is 0)', () => {
    const { d, frames, errors } = decoder(MiB, true);
    d.push(Buffer.of(0x00, 0, 0, 0, 0));
    expect(frames).toEqual([Buffer.alloc(0)]);
    expect(errors).toEqual([]);
  });

  const boundaries = [0, 1, 2, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x100, 0xfffe, 0xffff, 0x10000, 0x10001, MiB - 1, MiB];
  it.each(boundaries)('decodes a %i-byte body with the minimal prefix, whole, in two halves and in three pieces', (length) => {
    const body = randomBytes(prng(length + 1), length);
    const data = frame(body);
    // The minimal prefix is the documented one: 1, 3, 5 bytes.
    const expectedPrefix = length <= 0xfb ? 1 : length <= 0xffff ? 3 : 5;
    expect(data.length).toBe(length + expectedPrefix);

    const whole = decoder();
    whole.d.push(data);
    expect(whole.errors).toEqual([]);
    expect(whole.frames).toHaveLength(1);
    expect(whole.frames[0]!.equals(body)).toBe(true);

    const halves = decoder();
    const mid = data.length >> 1;
    halves.d.push(data.subarray(0, mid));
    halves.d.push(data.subarray(mid));
    expect(halves.errors).toEqual([]);
    expect(halves.frames).toHaveLength(1);
    expect(halves.frames[0]!.equals(body)).toBe(true);

    const pieces = decoder();
    pieces.d.push(data.subarray(0, 1)); // the header straddles chunks
    pieces.d.push(data.subarray(1, 2));
    pieces.d.push(data.subarray(2));
    expect(pieces.errors).toEqual([]);
    expect(pieces.frames).toHaveLength(1);
    expect(pieces.frames[0]!.equals(body)).toBe(true);
  });

  it('uses the byte as the length up to 0xFB and 0xFC/0xFD/0xFE as markers', () => {
    const { d, frames, errors } = decoder();
    // 0xFB is a length; a body of 251 bytes follows.
    d.push(Buffer.concat([Buffer.of(0xfb), Buffer.alloc(0xfb, 7)]));
    // 0xFC 00 02: a u16 length of 2, not a 252-byte body.
    d.push(Buffer.of(0xfc, 0x00, 0x02, 0xaa, 0xbb));
    // 0xFD 00 00 00 01 and 0xFE 00.. 01: u32 and u64 lengths of 1.
    d.push(Buffer.of(0xfd, 0, 0, 0, 1, 0xcc));
    d.push(Buffer.of(0xfe, 0, 0, 0, 0, 0, 0, 0, 1, 0xdd));
    expect(errors).toEqual([]);
    expect(frames.map((f) => f.length)).toEqual([251, 2, 1, 1]);
    expect(frames[1]).toEqual(Buffer.of(0xaa, 0xbb));
    expect(frames[2]).toEqual(Buffer.of(0xcc));
    expect(frames[3]).toEqual(Buffer.of(0xdd));
  });

  it('accepts non-minimal length encodings', () => {
    const bodies = [Buffer.alloc(0), Buffer.of(1), Buffer.alloc(0xfb, 2), Buffer.alloc(0x1234, 3)];
    for (const form of ['u16', 'u32', 'u64'] as const) {
      const { d, frames, errors } = decoder();
      d.push(Buffer.concat(bodies.map((b) => frame(b, { prefix: form }))));
      expect(errors).toEqual([]);
      expectBodies(frames, bodies);
    }
  });

  it('decodes big lengths in the u32 and u64 forms up to the limit', () => {
    // Above 2^24, so every byte of the length counts (0x01000003), and exactly the limit.
    const length = 16 * MiB + 3;
    const body = Buffer.allocUnsafe(length);
    body[0] = 0xa5;
    body[length - 1] = 0x5a;
    for (const form of ['u32', 'u64'] as const) {
      const header = lengthPrefix(length, form);
      const seen: Array<[number, number, number]> = [];
      const errors: ConverseError[] = [];
      // Records what matters without copying 16 MiB per frame.
      const d = new FrameDecoder(length, false, (b) => seen.push([b.length, b[0]!, b[b.length - 1]!]), (e) => errors.push(e));
      d.push(header.subarray(0, 3));
      d.push(Buffer.concat([header.subarray(3), body.subarray(0, 2)]));
      d.push(body.subarray(2));
      expect(errors).toEqual([]);
      expect(seen).toEqual([[length, 0xa5, 0x5a]]);
    }
  });

  it('rejects the reserved marker 0xFF with PROTOCOL_ERROR', () => {
    const { d, frames, errors } = decoder();
    d.push(Buffer.of(0xff, 0x00, 0x00));
    expect(frames).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(codeOf(errors[0])).toBe('PROTOCOL_ERROR');
  });

  it('rejects 0xFF after good frames in the same chunk and delivers only the frames before it', () => {
    const { d, frames, errors } = decoder();
    d.push(Buffer.concat([frame(Buffer.of(1)), Buffer.of(0xff), frame(Buffer.of(2))]));
    expect(frames).toEqual([Buffer.of(1)]);
    expect(errors.map(codeOf)).toEqual(['PROTOCOL_ERROR']);
  });
});

describe('FrameDecoder: maxMessageSize', () => {
  it('accepts a body of exactly maxMessageSize and refuses maxMessageSize + 1', () => {
    for (const max of [1, 0xfb, 0xfc, 1000, 0xffff, 0x10000, MiB]) {
      const ok = decoder(max);
      ok.d.push(frame(Buffer.alloc(max, 1)));
      expect(ok.errors).toEqual([]);
      expect(ok.frames).toHaveLength(1);
      expect(ok.frames[0]!.length).toBe(max);

      const tooBig = decoder(max);
      tooBig.d.push(frame(Buffer.alloc(max + 1, 1)));
      expect(tooBig.frames).toEqual([]);
      expect(tooBig.errors.map(codeOf)).toEqual(['RECEIVED_MESSAGE_TOO_LARGE']);
    }
  });

  it('refuses a 2^40-byte declaration (0xFE) as soon as the 9-byte header is in, allocating nothing for its body', () => {
    const { d, frames, errors } = decoder(MiB);
    const header = lengthPrefix(2 ** 40, 'u64');
    expect(header.length).toBe(9);
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    const alloc = vi.spyOn(Buffer, 'alloc');
    feedBytewise(d, header.subarray(0, 8));
    expect(errors).toEqual([]); // not yet: the length is not known
    d.push(header.subarray(8));
    expect(errors.map(codeOf)).toEqual(['RECEIVED_MESSAGE_TOO_LARGE']);
    expect(frames).toEqual([]);
    // Nothing for the body: the only allocation is the decoder's 13-byte header buffer, made the
    // first time a header straddles chunks.
    expect(allocUnsafe.mock.calls).toEqual([[13]]);
    expect(alloc).not.toHaveBeenCalled();
    // More body bytes change nothing: no second error, no frame.
    d.push(Buffer.alloc(1024));
    expect(errors).toHaveLength(1);
    expect(frames).toEqual([]);
  });

  it('refuses 1 MiB + 1 declared with 0xFD right after the 5-byte header, allocating nothing', () => {
    const { d, frames, errors } = decoder(MiB);
    const header = lengthPrefix(MiB + 1, 'u32');
    expect(header.length).toBe(5);
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    d.push(header); // the header alone, in one chunk (the fast path)
    expect(errors.map(codeOf)).toEqual(['RECEIVED_MESSAGE_TOO_LARGE']);
    expect(frames).toEqual([]);
    expect(allocUnsafe).not.toHaveBeenCalled();
  });

  it('refuses an oversized declaration before the checksum bytes when checksums are on', () => {
    const { d, errors } = decoder(1000, true);
    d.push(lengthPrefix(1001, 'u16')); // no CRC yet
    expect(errors.map(codeOf)).toEqual(['RECEIVED_MESSAGE_TOO_LARGE']);
  });

  it('refuses an oversized declaration arriving in the same chunk as earlier good frames', () => {
    const { d, frames, errors } = decoder(100);
    d.push(Buffer.concat([frame(Buffer.of(1, 2, 3)), lengthPrefix(101), Buffer.alloc(101)]));
    expect(frames).toEqual([Buffer.of(1, 2, 3)]);
    expect(errors.map(codeOf)).toEqual(['RECEIVED_MESSAGE_TOO_LARGE']);
  });
});

describe('FrameDecoder: chunking', () => {
  /** A varied stream: every prefix form, zero-length bodies, and the 0xFB/0xFC boundary. */
  function mixedStream(checksum: boolean): { data: Buffer; bodies: Buffer[] } {
    const random = prng(42);
    const specs: Array<[number, Prefix]> = [
      [0, 'minimal'],
      [1, 'minimal'],
      [5, 'u16'],
      [0xfb, 'minimal'],
      [0, 'u64'],
      [0xfc, 'minimal'],
      [3, 'u32'],
      [300, 'minimal'],
      [7, 'u64'],
      [0, 'u16'],
      [2, 'minimal'],
    ];
    const bodies = specs.map(([length]) => randomBytes(random, length));
    const data = Buffer.concat(specs.map(([, form], i) => frame(bodies[i]!, { checksum, prefix: form })));
    return { data, bodies };
  }

  for (const checksum of [false, true]) {
    it(`gives identical output for every two-chunk split of a stream of frames (checksum ${checksum ? 'on' : 'off'})`, () => {
      const { data, bodies } = mixedStream(checksum);
      for (let cut = 0; cut <= data.length; cut++) {
        const { d, frames, errors } = decoder(MiB, checksum);
        d.push(data.subarray(0, cut));
        d.push(data.subarray(cut));
        if (errors.length > 0 || frames.length !== bodies.length) {
          throw new Error(`split at byte ${cut}: ${errors.length} errors (${errors[0]?.message}), ${frames.length} frames`);
        }
        expectBodies(frames, bodies);
      }
    });

    it(`gives identical output fed one byte at a time (checksum ${checksum ? 'on' : 'off'})`, () => {
      const { data, bodies } = mixedStream(checksum);
      const { d, frames, errors } = decoder(MiB, checksum);
      feedBytewise(d, data);
      expect(errors).toEqual([]);
      expectBodies(frames, bodies);
    });
  }

  it('decodes many frames of random lengths, in random chunkings (seeded)', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = prng(seed);
      const checksum = seed % 2 === 0;
      const bodies: Buffer[] = [];
      for (let i = 0; i < 300; i++) {
        // Mostly small, some around the u16 boundary, a few large.
        const pick = random();
        const length = pick < 0.6 ? (random() * 300) | 0 : pick < 0.98 ? (random() * 70_000) | 0 : (random() * 100_000) | 0;
        // Random head and tail, a fill byte between (cheap, and still tells frames apart).
        const body = Buffer.alloc(length, i & 0xff);
        randomBytes(random, Math.min(length, 32)).copy(body, 0);
        randomBytes(random, Math.min(length, 32)).copy(body, Math.max(0, length - 32));
        bodies.push(body);
      }
      const data = Buffer.concat(bodies.map((b) => frame(b, { checksum })));
      const { d, frames, errors } = decoder(MiB, checksum);
      let pos = 0;
      while (pos < data.length) {
        const size = random() < 0.3 ? 1 + ((random() * 16) | 0) : 1 + ((random() * 100_000) | 0);
        d.push(data.subarray(pos, pos + size));
        pos += size;
      }
      expect(errors).toEqual([]);
      expectBodies(frames, bodies);
    }
  });

  it('completes a 64 KiB frame fed one byte at a time (allocated once, filled in place)', () => {
    const body = randomBytes(prng(7), 64 * 1024 + 1);
    const data = frame(body);
    const { d, frames, errors } = decoder();
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    feedBytewise(d, data);
    expect(errors).toEqual([]);
    expect(frames).toHaveLength(1);
    expect(frames[0]!.equals(body)).toBe(true);
    // One allocation of the body's size, not one per chunk.
    expect(allocUnsafe.mock.calls.filter(([size]) => size === body.length)).toHaveLength(1);
    // … and the decoder's 13-byte header buffer, made the first time a header straddles chunks.
    expect(allocUnsafe.mock.calls).toEqual([[13], [body.length]]);
  });

  it('hands out a body lying wholly in one chunk as a view of that chunk (no copy)', () => {
    const bodies: Uint8Array[] = [];
    const d = new FrameDecoder(MiB, false, (b) => bodies.push(b), () => {});
    const chunk = Buffer.concat([frame(Buffer.of(1, 2, 3)), frame(Buffer.of(4))]);
    d.push(chunk);
    expect(bodies).toHaveLength(2);
    expect(bodies[0]!.buffer).toBe(chunk.buffer);
    expect(bodies[0]!.byteOffset).toBe(chunk.byteOffset + 1);
  });
});

describe('FrameDecoder: checksum', () => {
  it('checksumOf is CRC-32/ISO-HDLC (the zlib crc32): check value of "123456789" is 0xCBF43926', () => {
    expect(checksumOf(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(checksumOf(Buffer.alloc(0))).toBe(0);
    const random = randomBytes(prng(9), 5000);
    expect(checksumOf(random)).toBe(referenceCrc32(random));
  });

  it('passes frames whose CRC-32 (u32 big-endian, after the prefix) matches the body', () => {
    const bodies = [Buffer.of(0x93, 0x01, 0x00, 0x03), Buffer.alloc(0), Buffer.alloc(70_000, 0xab)];
    const { d, frames, errors } = decoder(MiB, true);
    d.push(Buffer.concat(bodies.map((b) => frame(b, { checksum: true }))));
    expect(errors).toEqual([]);
    expectBodies(frames, bodies);
  });

  it('gives CHECKSUM_MISMATCH for a flipped body bit, whole or split', () => {
    const body = randomBytes(prng(11), 600);
    for (const bit of [0, 7, 8 * 300 + 3, 8 * 599 + 7]) {
      const data = frame(body, { checksum: true });
      data[3 + 4 + (bit >> 3)]! ^= 1 << (bit & 7);
      const whole = decoder(MiB, true);
      whole.d.push(data);
      expect(whole.frames).toEqual([]);
      expect(whole.errors.map(codeOf)).toEqual(['CHECKSUM_MISMATCH']);

      const split = decoder(MiB, true);
      feedBytewise(split.d, data);
      expect(split.frames).toEqual([]);
      expect(split.errors.map(codeOf)).toEqual(['CHECKSUM_MISMATCH']);
    }
  });

  it('gives CHECKSUM_MISMATCH for a flipped checksum bit, and for a frame sent without a checksum', () => {
    const body = Buffer.from('hello');
    const data = frame(body, { checksum: true });
    data[1]! ^= 0x80;
    const flipped = decoder(MiB, true);
    flipped.d.push(data);
    expect(flipped.errors.map(codeOf)).toEqual(['CHECKSUM_MISMATCH']);

    // A sender that forgot the checksum: the first 4 body bytes are taken as the CRC.
    const missing = decoder(MiB, true);
    missing.d.push(Buffer.concat([frame(Buffer.from('abcd')), frame(Buffer.from('efgh'))]));
    expect(missing.frames).toEqual([]);
    expect(missing.errors.map(codeOf)).toEqual(['CHECKSUM_MISMATCH']);
  });

  it('ignores checksums when they were not negotiated (the 4 bytes would be body)', () => {
    const { d, frames, errors } = decoder(MiB, false);
    const withCrc = frame(Buffer.from('abc'), { checksum: true });
    // Read without checksums, 0x03 is the length and the first 3 CRC bytes are the body.
    d.push(withCrc.subarray(0, 4));
    expect(errors).toEqual([]);
    expect(frames).toEqual([withCrc.subarray(1, 4)]);
  });
});

describe('FrameDecoder: after an error', () => {
  it('delivers nothing more and reports no second error', () => {
    const { d, frames, errors } = decoder(MiB, true);
    const good = frame(Buffer.of(1), { checksum: true });
    const bad = frame(Buffer.of(2), { checksum: true });
    bad[bad.length - 1] = 3;
    d.push(Buffer.concat([good, bad, good, good]));
    expect(frames).toEqual([Buffer.of(1)]);
    expect(errors.map(codeOf)).toEqual(['CHECKSUM_MISMATCH']);
    d.push(good);
    feedBytewise(d, Buffer.concat([good, Buffer.of(0xff)]));
    expect(frames).toEqual([Buffer.of(1)]);
    expect(errors).toHaveLength(1);
  });

  it('delivers nothing after a too-large frame, even valid frames in later chunks', () => {
    const { d, frames, errors } = decoder(10);
    feedBytewise(d, lengthPrefix(11));
    d.push(frame(Buffer.of(1)));
    expect(frames).toEqual([]);
    expect(errors.map(codeOf)).toEqual(['RECEIVED_MESSAGE_TOO_LARGE']);
  });

  it('stops delivering the rest of a chunk when onFrame calls stop()', () => {
    const delivered: number[] = [];
    const d: FrameDecoder = new FrameDecoder(
      MiB,
      false,
      (body) => {
        delivered.push(body[0]!);
        if (body[0] === 2) d.stop(); // as the connection does on a frame it cannot decode
      },
      () => {
        throw new Error('no error expected');
      },
    );
    d.push(Buffer.concat([frame(Buffer.of(1)), frame(Buffer.of(2)), frame(Buffer.of(3))]));
    d.push(frame(Buffer.of(4)));
    expect(delivered).toEqual([1, 2]);
  });

  it('stops delivering after stop() when the frame straddled chunks', () => {
    const delivered: number[] = [];
    const d: FrameDecoder = new FrameDecoder(
      MiB,
      false,
      (body) => {
        delivered.push(body[0]!);
        d.stop();
      },
      () => {},
    );
    const data = Buffer.concat([frame(Buffer.alloc(300, 1)), frame(Buffer.of(2))]);
    d.push(data.subarray(0, 100));
    d.push(data.subarray(100));
    expect(delivered).toEqual([1]);
  });
});

describe('FrameDecoder: inFrame', () => {
  it('is true exactly while a frame is partly received', () => {
    const { d, frames } = decoder();
    expect(d.inFrame).toBe(false);
    const data = frame(Buffer.alloc(1000, 1)); // 3-byte prefix
    d.push(data.subarray(0, 1)); // part of the header
    expect(d.inFrame).toBe(true);
    d.push(data.subarray(1, 3)); // header complete, no body yet
    expect(d.inFrame).toBe(true);
    d.push(data.subarray(3, 500)); // half the body
    expect(d.inFrame).toBe(true);
    d.push(data.subarray(500)); // the rest
    expect(frames).toHaveLength(1);
    expect(d.inFrame).toBe(false);
    d.push(Buffer.concat([frame(Buffer.of(1)), frame(Buffer.of(2))])); // whole frames only
    expect(d.inFrame).toBe(false);
    d.push(Buffer.of(0x00)); // a whole zero-length frame
    expect(d.inFrame).toBe(false);
    expect(frames).toHaveLength(4);
  });

  it('is true while only the checksum part of the header is missing', () => {
    const { d } = decoder(MiB, true);
    d.push(Buffer.of(0x01, 0xaa)); // length, then half a checksum
    expect(d.inFrame).toBe(true);
  });

  it('is false after an error or stop(), whatever was partly received', () => {
    const afterError = decoder(MiB, true);
    feedBytewise(afterError.d, Buffer.of(0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0)); // too large, header gathered byte by byte
    expect(afterError.errors.map(codeOf)).toEqual(['RECEIVED_MESSAGE_TOO_LARGE']);
    expect(afterError.d.inFrame).toBe(false);

    const afterChecksum = decoder(MiB, true);
    afterChecksum.d.push(Buffer.of(0x01, 0, 0, 0, 0, 0x01)); // CRC 0 does not match
    expect(afterChecksum.errors.map(codeOf)).toEqual(['CHECKSUM_MISMATCH']);
    expect(afterChecksum.d.inFrame).toBe(false);

    const stoppedInBody = decoder();
    stoppedInBody.d.push(Buffer.of(0x05, 1, 2));
    expect(stoppedInBody.d.inFrame).toBe(true);
    stoppedInBody.d.stop();
    expect(stoppedInBody.d.inFrame).toBe(false);

    const stoppedInHeader = decoder();
    stoppedInHeader.d.push(Buffer.of(0xfd, 0));
    expect(stoppedInHeader.d.inFrame).toBe(true);
    stoppedInHeader.d.stop();
    expect(stoppedInHeader.d.inFrame).toBe(false);
  });
});

describe('FrameDecoder: every split point', () => {
  /** Short frames in every prefix form (empty ones too), so every byte position can be tried. */
  function smallStream(checksum: boolean): { data: Buffer; bodies: Buffer[]; ends: number[] } {
    const random = prng(9);
    const specs: Array<[number, Prefix]> = [
      [2, 'minimal'],
      [0, 'u16'],
      [3, 'u32'],
      [0, 'minimal'],
      [1, 'u64'],
      [2, 'u16'],
      [0, 'u64'],
    ];
    const bodies = specs.map(([length]) => randomBytes(random, length));
    const parts = specs.map(([, form], i) => frame(bodies[i]!, { checksum, prefix: form }));
    const ends: number[] = [];
    let at = 0;
    for (const part of parts) ends.push((at += part.length));
    return { data: Buffer.concat(parts), bodies, ends };
  }

  for (const checksum of [false, true]) {
    it(`delivers each frame exactly when its last byte arrives, for every three-chunk split (checksum ${checksum ? 'on' : 'off'})`, () => {
      const { data, bodies, ends } = smallStream(checksum);
      const completeBy = (bytes: number): number => ends.filter((end) => end <= bytes).length;
      for (let a = 0; a <= data.length; a++) {
        for (let b = a; b <= data.length; b++) {
          const { d, frames, errors } = decoder(MiB, checksum);
          for (const [from, to] of [[0, a], [a, b], [b, data.length]] as const) {
            d.push(data.subarray(from, to));
            // Never early (a body completed with bytes that have not arrived), never late.
            if (frames.length !== completeBy(to) || errors.length > 0) {
              throw new Error(`cuts ${a}/${b}: after ${to} bytes ${frames.length} frames (expected ${completeBy(to)}), ${errors.length} errors`);
            }
            // Partly received exactly when the bytes so far end inside a frame.
            expect(d.inFrame).toBe(to !== 0 && !ends.includes(to));
          }
          expectBodies(frames, bodies);
        }
      }
    });
  }

  it('reports a body truncated at every position as still in a frame, and delivers nothing of it', () => {
    const body = randomBytes(prng(3), 40);
    for (const form of ['minimal', 'u16', 'u32', 'u64'] as const) {
      for (const checksum of [false, true]) {
        const data = frame(body, { checksum, prefix: form });
        for (let cut = 1; cut < data.length; cut++) {
          const { d, frames, errors } = decoder(MiB, checksum);
          d.push(data.subarray(0, cut));
          expect(frames).toEqual([]);
          expect(errors).toEqual([]);
          expect(d.inFrame).toBe(true);
        }
      }
    }
  });

  it('hands out a frame lying wholly in its chunk as a view, in every prefix form and at the chunk\'s very end', () => {
    for (const form of ['minimal', 'u16', 'u32', 'u64'] as const) {
      for (const checksum of [false, true]) {
        for (const length of [0, 1, 7]) {
          const bodies: Buffer[] = [];
          const d = new FrameDecoder(MiB, checksum, (b) => bodies.push(b), (e) => {
            throw e;
          });
          const first = frame(Buffer.alloc(length, 1), { checksum, prefix: form });
          const second = frame(Buffer.alloc(length, 2), { checksum, prefix: form });
          // The chunk ends exactly where the second frame does.
          const chunk = Buffer.concat([first, second]);
          d.push(chunk);
          expect(bodies).toHaveLength(2);
          expect(bodies[0]!.buffer).toBe(chunk.buffer);
          expect(bodies[1]!.buffer).toBe(chunk.buffer);
          expect(bodies[0]!.byteOffset).toBe(chunk.byteOffset + first.length - length);
          expect(bodies[1]!.byteOffset).toBe(chunk.byteOffset + chunk.length - length);
          expect(bodies[1]!.length).toBe(length);
        }
      }
    }
  });

  it('refuses a declared length one over the limit in every prefix form, naming both sizes', () => {
    for (const form of ['minimal', 'u16', 'u32', 'u64'] as const) {
      for (const max of [0, 1, 0xfa]) {
        const ok = decoder(max);
        ok.d.push(lengthPrefix(max, form));
        ok.d.push(Buffer.alloc(max, 9));
        expect(ok.errors).toEqual([]);
        expect(ok.frames).toEqual([Buffer.alloc(max, 9)]);

        const tooBig = decoder(max);
        tooBig.d.push(lengthPrefix(max + 1, form));
        expect(tooBig.errors.map(codeOf)).toEqual(['RECEIVED_MESSAGE_TOO_LARGE']);
        expect(tooBig.errors[0]!.message).toContain(`a frame of ${max + 1} bytes`);
        expect(tooBig.errors[0]!.message).toContain(`maxMessageSize of ${max} bytes`);
      }
    }
  });

  it('reads every byte of the u16, u32 and u64 lengths (big-endian)', () => {
    const cases: Array<[Buffer, number]> = [
      [Buffer.of(0xfc, 0x12, 0x34), 0x1234],
      [Buffer.of(0xfd, 0x12, 0x34, 0x56, 0x78), 0x12345678],
      [Buffer.of(0xfd, 0xff, 0xff, 0xff, 0xff), 0xffffffff],
      [Buffer.of(0xfe, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06), 0x010203040506],
      [Buffer.of(0xfe, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), Number.MAX_SAFE_INTEGER],
    ];
    for (const [header, length] of cases) {
      for (const bytewise of [false, true]) {
        const { d, errors } = decoder(1);
        if (bytewise) feedBytewise(d, header);
        else d.push(header);
        expect(errors.map(codeOf)).toEqual(['RECEIVED_MESSAGE_TOO_LARGE']);
        expect(errors[0]!.message).toContain(`a frame of ${length} bytes`);
      }
    }
  });

  it('names the reserved marker in its refusal', () => {
    const { d, errors } = decoder();
    d.push(Buffer.of(0xff));
    expect(errors.map(codeOf)).toEqual(['PROTOCOL_ERROR']);
    expect(errors[0]!.message).toContain('reserved length marker 0xff');
  });

  it('names the actual and the declared CRC-32 in a mismatch', () => {
    const { d, errors } = decoder(MiB, true);
    const good = frame(Buffer.from('abc'), { checksum: true });
    const declared = good.readUInt32BE(1);
    good.writeUInt32BE(0x1234abcd, 1);
    d.push(good);
    expect(errors.map(codeOf)).toEqual(['CHECKSUM_MISMATCH']);
    expect(errors[0]!.message).toContain(`was 0x${declared.toString(16)} but the peer declared 0x1234abcd`);
  });

  it('counts delivered frames (framesDelivered), and not a frame refused for its checksum', () => {
    const { d } = decoder(MiB, true);
    expect(d.framesDelivered).toBe(0);
    const good = frame(Buffer.of(1), { checksum: true });
    d.push(Buffer.concat([good, good]));
    expect(d.framesDelivered).toBe(2);
    feedBytewise(d, good);
    expect(d.framesDelivered).toBe(3);
    const bad = Buffer.from(good);
    bad[bad.length - 1] = 2;
    d.push(bad);
    expect(d.framesDelivered).toBe(3);
  });

  it('delivers a zero-length body gathered through the header path as a fresh empty buffer', () => {
    for (const checksum of [false, true]) {
      const { d, frames, errors } = decoder(MiB, checksum);
      const data = frame(Buffer.alloc(0), { checksum, prefix: 'u64' });
      d.push(data.subarray(0, 4));
      expect(frames).toEqual([]);
      d.push(data.subarray(4));
      expect(errors).toEqual([]);
      expect(frames).toEqual([Buffer.alloc(0)]);
      expect(d.inFrame).toBe(false);
    }
  });
});
