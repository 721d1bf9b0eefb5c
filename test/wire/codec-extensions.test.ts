/**
 * The Set and Map extensions as registered with msgpackr (its extension table is process-wide):
 * what another Unpackr in this process gets for their bytes, where our pre-scan does not run.
 * Malformed data is refused with an error, never turned into a wrong Set or Map.
 */
import { Unpackr, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeBody } from '../../src/wire/codec.js';

const h = (hex: string): Buffer => Buffer.from(hex.replace(/\s+/g, ''), 'hex');

describe('Set and Map extensions read by another msgpackr in the process', () => {
  const readers: Array<[string, (bytes: Buffer) => unknown]> = [
    ['msgpackr unpack', (bytes) => unpack(bytes)],
    ['a default Unpackr', (bytes) => new Unpackr().unpack(bytes)],
  ];

  for (const [name, read] of readers) {
    it(`${name}: a Map's array becomes its entries; a Set's array its members`, () => {
      expect(read(h('c7 06 4d 94 01 02 a1 61 c3'))).toEqual(new Map<unknown, unknown>([[1, 2], ['a', true]]));
      expect(read(h('d4 4d 90'))).toEqual(new Map());
      expect(read(h('c7 04 53 93 01 02 01'))).toEqual(new Set([1, 2]));
      expect(read(h('d4 53 90'))).toEqual(new Set());
    });

    it(`${name}: a Map whose data is not an even-length array, or a Set whose data is not an array, is an error`, () => {
      for (const bad of ['c7 04 4d 93 01 02 03', 'c7 02 4d 91 01', 'd4 4d 01', 'd4 4d c0', 'c7 03 4d 81 01 02']) {
        expect(() => read(h(bad)), bad).toThrow(/a Map extension must carry an even-length array/);
      }
      for (const bad of ['d4 53 01', 'd4 53 c0', 'c7 03 53 81 01 02', 'c7 02 53 a1 61']) {
        expect(() => read(h(bad)), bad).toThrow(/a Set extension must carry an array/);
      }
    });
  }

  it('decodeBody refuses the same bytes before msgpackr sees them (the pre-scan)', () => {
    expect(() => decodeBody(h('c7 04 4d 93 01 02 03'))).toThrow(/odd number of items/);
    expect(() => decodeBody(h('d4 53 01'))).toThrow(/not an array/);
  });
});
