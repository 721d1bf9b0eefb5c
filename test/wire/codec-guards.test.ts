/**
 * The encoder's guards one by one: the integer format at each boundary, byte for byte; the path
 * an ENCODE_FAILED names; how errors are wrapped; nesting counted as the receiver counts it.
 */
import { describe, expect, it } from 'vitest';
import { ConverseError } from '../../src/errors.js';
import { decodeBody, encodeFrame, encodeValue } from '../../src/wire/codec.js';
import { MAX_NESTING_DEPTH } from '../../src/wire/constants.js';

const LIMIT = 1024 * 1024;
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function encodeFailure(value: unknown): ConverseError {
  let thrown: unknown;
  try {
    encodeFrame(value, false, LIMIT);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ConverseError);
  expect((thrown as ConverseError).code).toBe('ENCODE_FAILED');
  return thrown as ConverseError;
}

describe('codec: integers at every format boundary (PROTOCOL.md §5.4)', () => {
  const cases: Array<[number | bigint, string]> = [
    [-0x80000000, 'd2 80000000'],
    [-0x80000001, 'd3 ffffffff7fffffff'],
    [0xffffffff, 'ce ffffffff'],
    [0x100000000, 'cf 0000000100000000'],
    [-(2 ** 40), 'd3 ffffff0000000000'],
    [Number.MAX_SAFE_INTEGER, 'cf 001fffffffffffff'],
    [Number.MIN_SAFE_INTEGER, 'd3 ffe0000000000001'],
    [-0x80000000n, 'd2 80000000'],
    [-0x80000001n, 'd3 ffffffff7fffffff'],
    [0xffffffffn, 'ce ffffffff'],
    [0x100000000n, 'cf 0000000100000000'],
    [-(2n ** 40n), 'd3 ffffff0000000000'],
    [-(2n ** 63n), 'd3 8000000000000000'],
    [2n ** 64n - 1n, 'cf ffffffffffffffff'],
  ];
  it.each(cases)('%s is written as %s', (value, bytes) => {
    expect(hex(encodeValue(value))).toBe(bytes.replace(/\s+/g, ''));
  });

  it('refuses bigints one past the 64-bit range at either end, naming the path', () => {
    for (const value of [-(2n ** 63n) - 1n, 2n ** 64n]) {
      const error = encodeFailure({ n: [value] });
      expect(error.message).toContain('message.n[0] is a bigint outside the 64-bit range');
    }
  });
});

describe('codec: standard MessagePack only (msgpackr\'s own formats stay off)', () => {
  it('an object used twice is written twice, not as a structured-clone pointer', () => {
    const shared = { a: 1 };
    expect(hex(encodeValue([shared, shared]))).toBe('92' + 'de0001a16101' + 'de0001a16101');
    expect(decodeBody(encodeValue({ x: shared, y: shared }))).toEqual({ x: { a: 1 }, y: { a: 1 } });
  });

  it('objects of the same shape are maps, not record definitions', () => {
    expect(hex(encodeValue([{ a: 1 }, { a: 2 }]))).toBe('92' + 'de0001a16101' + 'de0001a16102');
  });

  it('a typed array other than Uint8Array is written as bin (its bytes), not as msgpackr\'s typed-array extension', () => {
    expect(hex(encodeValue(new Uint16Array([1, 2])))).toBe('c404' + '01000200');
  });
});

describe('codec: objects and arrays that are not plain', () => {
  // prepare() tells plain objects and arrays apart by their prototype first (a fast path); these
  // have other prototypes and take the slower checks after it.
  class Point {
    constructor(
      public x: number,
      public y: number,
    ) {}
    get length(): number {
      return Math.hypot(this.x, this.y);
    }
  }
  class List<T> extends Array<T> {}

  it('an instance of a class is sent as its own fields (data, like a plain object), not refused like an Error', () => {
    expect(decodeBody(encodeValue({ at: new Point(3, 4) }))).toEqual({ at: { x: 3, y: 4 } });
    // Its fields are prepared like any object's: a Map inside arrives as a Map, a function is named.
    const withMap = Object.assign(new Point(1, 2), { tags: new Map([['k', 1]]) });
    expect(decodeBody(encodeValue(withMap))).toEqual({ x: 1, y: 2, tags: new Map([['k', 1]]) });
    expect(encodeFailure({ at: Object.assign(new Point(1, 2), { f: () => 1 }) }).message).toContain('message.at.f is a function');
  });

  it('an instance of an Array subclass is an array: items in order, a Map inside still a Map, paths with [index]', () => {
    // Taken for an object, it would arrive as { "0": …, "1": … } once a Map inside made a copy necessary.
    const list = List.from<unknown>([new Map([['a', 1]]), 2]);
    expect(Object.getPrototypeOf(list)).not.toBe(Array.prototype);
    const decoded = decodeBody(encodeValue({ list })) as { list: unknown };
    expect(Array.isArray(decoded.list)).toBe(true);
    expect(decoded.list).toEqual([new Map([['a', 1]]), 2]);
    expect(encodeFailure({ list: List.from<unknown>([1, () => 1]) }).message).toContain('message.list[1] is a function');
  });
});

describe('codec: the path an ENCODE_FAILED names', () => {
  const fn = (): void => {};
  it.each<[string, unknown, string]>([
    ['an object field', { a: { b: fn } }, 'message.a.b is a function'],
    ['an array item', { list: [1, [2, Symbol('s')]] }, 'message.list[1][1] is a symbol'],
    ['an array item inside an array', [[fn]], 'message[0][0] is a function'],
    ['a Map key', { m: new Map([[fn, 1]]) }, 'message.m<key> is a function'],
    ['a Map value', { m: new Map([[1, fn]]) }, 'message.m<value> is a function'],
    ['a Set member', { s: new Set([fn]) }, 'message.s<member> is a function'],
    ['an invalid Date', { when: new Date(Number.NaN) }, 'message.when is an invalid Date'],
    ['an own "__proto__" key', { x: JSON.parse('{"__proto__": 1}') }, 'message.x has a "__proto__" key, which cannot be sent'],
    ['an Error', { e: new Error('x') }, 'message.e is an Error, which cannot be sent'],
    ['a TypeError', { e: new TypeError('x') }, 'message.e is a TypeError, which cannot be sent'],
    ['a RegExp', { r: /a/ }, 'message.r is a RegExp, which cannot be sent'],
    ['a Promise', { p: Promise.resolve() }, 'message.p is a Promise, which cannot be sent'],
  ])('%s', (_name, value, text) => {
    const error = encodeFailure(value);
    expect(error.message).toContain(text);
    // The encoder's own refusal is thrown as it is, not wrapped in a second ENCODE_FAILED.
    expect(error.message.match(/Cannot encode the message/g)).toHaveLength(1);
    expect(error.cause).toBeUndefined();
  });

  it('wraps any other failure while encoding as ENCODE_FAILED with the cause, without walking the value again', () => {
    const boom = new Error('getter failed');
    let reads = 0;
    const value = {
      get field(): unknown {
        reads++;
        throw boom;
      },
    };
    const error = encodeFailure(value);
    expect(error.cause).toBe(boom);
    expect(error.message).toContain('getter failed');
    expect(reads).toBe(1);
  });

  it('says so when a value that could not be sent can be on the second walk (a getter that changed)', () => {
    let reads = 0;
    const value = {
      get field(): unknown {
        reads++;
        return reads === 1 ? (): void => {} : 1;
      },
    };
    expect(encodeFailure(value).message).toContain('message changed while it was being encoded');
    expect(reads).toBe(2);
  });
});

describe('codec: nesting counted as the receiver counts it', () => {
  /** `levels` arrays around `leaf`. */
  const nest = (levels: number, leaf: unknown): unknown => {
    let v = leaf;
    for (let i = 0; i < levels; i++) v = [v];
    return v;
  };

  it('scalars in Maps and Sets at the deepest level add no level (null, numbers, strings)', () => {
    // 98 arrays and a Set (two levels) = 100: its members, null included, are leaves.
    for (const member of [null, 1, 'x', undefined]) {
      const value = nest(MAX_NESTING_DEPTH - 2, new Set([member]));
      const frame = encodeFrame(value, false, LIMIT);
      let decoded = decodeBody(frame.subarray(1)) as unknown;
      for (let i = 0; i < MAX_NESTING_DEPTH - 2; i++) decoded = (decoded as unknown[])[0];
      expect(decoded).toEqual(new Set([member]));
    }
    const map = nest(MAX_NESTING_DEPTH - 2, new Map([[null, null]]));
    expect(() => encodeFrame(map, false, LIMIT)).not.toThrow();
    // One more level is too deep.
    expect(encodeFailure(nest(MAX_NESTING_DEPTH - 1, new Set([1]))).message).toContain(`nested deeper than ${MAX_NESTING_DEPTH} levels`);
  });
});

// Not tested, because no input tells them apart (mutation testing reports them as survivors):
// - the first walk building paths anyway (`path === undefined ? undefined : …` made to build the
//   string): the paths are then built and not used; only the second walk's error shows them;
// - prepare()'s prototype checks for plain objects and arrays (made `false`, or `&&` for `||`):
//   the same values then take the slower checks after them (Array.isArray, the object fallback)
//   and come out the same; `prepared !== item` made `true` copies a container that did not change;
// - prepare()'s fast paths: choosing prepare() or prepareLeaf() for an item (`typeof item ===
//   'object' && item !== null`), prepareLeaf()'s early return for strings, booleans, undefined and
//   null, the loop bound `i < value.length` made `<=` (one undefined item more, left as it is), and
//   `new Array(value.size * 2)` made `new Array()`: each gives the same prepared value, and an
//   ENCODE_FAILED the same path; they only save work;
// - the Packr's `useBigIntExtension: false` (prepare() turns every bigint into a number or a
//   64-bit int before msgpackr sees it) and the Unpackr's `useRecords`, `structuredClone` and
//   `moreTypes` (the pre-scan refuses the extensions they would read): flipping them changes
//   nothing a peer can send or this side can encode;
// - encodeFrame returning `packed` itself when the header starts at 0 (not a subarray of it): the
//   same bytes either way;
// - the u64 length prefix in encodeFrame (`bodyLength <= 0xffffffff` and writeLengthPrefix's
//   default case): it needs a body of 4 GiB, which a test cannot allocate here; the decoder's u64
//   path is tested in framing.test.ts;
// - crc32Fallback building its table on every call (`!crcTable` made `true`: the same table) and
//   the table loop's `n <= 256` (the write one past a 256-entry Int32Array is ignored).
