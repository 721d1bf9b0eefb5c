/** The frame checksum: zlib's CRC-32 where Node has it, and the table fallback for Node < 20.15. */
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { checksumOf, crc32Fallback, selectCrc32 } from '../../src/wire/codec.js';
import { prng } from '../helpers/prng.js';

/** CRC-32/ISO-HDLC bit by bit, written from the definition (reflected, polynomial 0xEDB88320). */
function bitwiseCrc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** zlib's where this Node has it (20.15+), else the definition. */
const zlibCrc32: (data: Uint8Array) => number = (zlib as unknown as { crc32?: (data: Uint8Array) => number }).crc32 ?? bitwiseCrc32;


describe('CRC-32', () => {
  it('the reference (zlib, or the definition on Node < 20.15) agrees with the definition', () => {
    const data = Buffer.from('The quick brown fox jumps over the lazy dog');
    expect(bitwiseCrc32(data)).toBe(0x414fa339);
    expect(zlibCrc32(data)).toBe(0x414fa339);
  });

  it('the fallback gives the CRC-32/ISO-HDLC check values', () => {
    expect(crc32Fallback(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32Fallback(new Uint8Array(0))).toBe(0);
    expect(crc32Fallback(Buffer.of(0))).toBe(0xd202ef8d);
    expect(crc32Fallback(Buffer.alloc(4, 0xff))).toBe(0xffffffff);
  });

  it('the fallback equals zlib.crc32 on random data of every length to 300 bytes, and on views', () => {
    const random = prng(2024);
    for (let length = 0; length <= 300; length++) {
      const data = Buffer.alloc(length);
      for (let i = 0; i < length; i++) data[i] = (random() * 256) | 0;
      expect(crc32Fallback(data), `length ${length}`).toBe(zlibCrc32(data));
      // A view into the middle of a larger buffer: only its own bytes count.
      const padded = Buffer.concat([Buffer.of(1, 2, 3), data, Buffer.of(4)]);
      expect(crc32Fallback(padded.subarray(3, 3 + length))).toBe(zlibCrc32(data));
    }
    const big = Buffer.alloc(100_000);
    for (let i = 0; i < big.length; i++) big[i] = (random() * 256) | 0;
    expect(crc32Fallback(big)).toBe(zlibCrc32(big));
  });

  it('the fallback gives the same answer on every call (its table is built once)', () => {
    const data = Buffer.from('interprocess-converse');
    const first = crc32Fallback(data);
    expect(crc32Fallback(data)).toBe(first);
    expect(crc32Fallback(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('selectCrc32 takes zlib\'s function where the module has one, else the fallback', () => {
    expect(selectCrc32({})).toBe(crc32Fallback);
    expect(selectCrc32({ crc32: undefined })).toBe(crc32Fallback);
    expect(selectCrc32({ crc32: 'not a function' })).toBe(crc32Fallback);
    const seen: Uint8Array[] = [];
    const native = (data: Uint8Array): number => {
      seen.push(data);
      return 0x12345678;
    };
    const data = Buffer.of(1, 2, 3);
    expect(selectCrc32({ crc32: native })(data)).toBe(0x12345678);
    expect(seen).toEqual([data]);
    expect(selectCrc32(zlib)(Buffer.from('123456789'))).toBe(0xcbf43926); // on any Node
  });

  it('checksumOf (what frames carry) is zlib\'s CRC-32', () => {
    const random = prng(7);
    for (const length of [0, 1, 15, 16, 1000]) {
      const data = Buffer.alloc(length);
      for (let i = 0; i < length; i++) data[i] = (random() * 256) | 0;
      expect(checksumOf(data)).toBe(zlibCrc32(data));
    }
  });
});
