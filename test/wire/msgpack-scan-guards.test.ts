/**
 * The pre-scan on its own, guard by guard: each test gives input that only that guard refuses
 * and asserts the reason it returns, so a guard removed or shifted by one is noticed even where
 * msgpackr (behind it in decodeBody) would refuse the input for another reason.
 */
import { describe, expect, it } from 'vitest';
import { ExtType } from '../../src/wire/constants.js';
import { scanMessagePack } from '../../src/wire/msgpack-scan.js';

const h = (hex: string): Buffer => Buffer.from(hex.replace(/\s+/g, ''), 'hex');
const scan = (bytes: Uint8Array, maxDepth = 100): string | undefined => scanMessagePack(bytes, 0, bytes.length, maxDepth);
const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const TRUNCATED = 'the value is truncated';
const PROTO_KEY = 'a map key is "__proto__"';
const PROTO = Buffer.from('__proto__');

/** `n` fixints 0, 1, 2 … (one byte each). */
const ints = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => i & 0x7f));

/** A str header for `length` bytes in the given format. */
function strHeader(length: number, form: 'fix' | 'str8' | 'str16' | 'str32'): Buffer {
  switch (form) {
    case 'fix':
      return Buffer.of(0xa0 | length);
    case 'str8':
      return Buffer.of(0xd9, length);
    case 'str16':
      return Buffer.of(0xda, length >> 8, length & 0xff);
    case 'str32':
      return Buffer.of(0xdb, 0, 0, length >> 8, length & 0xff);
  }
}

/** A map header for `entries` in the given format. */
function mapHeader(entries: number, form: 'fix' | 'map16' | 'map32'): Buffer {
  if (form === 'fix') return Buffer.of(0x80 | entries);
  if (form === 'map16') return Buffer.of(0xde, entries >> 8, entries & 0xff);
  return Buffer.of(0xdf, 0, 0, entries >> 8, entries & 0xff);
}

/** An array header for `items` in the given format. */
function arrayHeader(items: number, form: 'fix' | 'array16' | 'array32'): Buffer {
  if (form === 'fix') return Buffer.of(0x90 | items);
  if (form === 'array16') return Buffer.of(0xdc, items >> 8, items & 0xff);
  return Buffer.of(0xdd, 0, 0, items >> 8, items & 0xff);
}

describe('scan: the single-byte ranges', () => {
  it('takes 0x00-0x7f and 0xe0-0xff as whole fixints, and the bytes around them as headers', () => {
    for (const b of [0x00, 0x7f, 0xe0, 0xff]) expect(scan(Buffer.of(b))).toBeUndefined();
    // 0x80, 0x90, 0xa0: empty map, empty array, empty string; 0xdf-0xe0 and 0x7f-0x80 edges.
    for (const b of [0x80, 0x90, 0xa0]) expect(scan(Buffer.of(b))).toBeUndefined();
    expect(scan(Buffer.of(0x92, 0x7f, 0xe0))).toBeUndefined();
    expect(scan(Buffer.of(0x7f, 0x00))).toBe('1 bytes follow the value');
    expect(scan(Buffer.of(0xe0, 0x00, 0x00))).toBe('2 bytes follow the value');
  });

  it('reads 0x8f as a map of 15 entries and 0x9f as an array of 15 items, not as a string', () => {
    const fifteen = Buffer.concat([Buffer.of(0x9f), Buffer.alloc(15, 0xc1)]);
    // 15 items, each the reserved byte: refused for the byte, not skipped as string bytes.
    expect(scan(fifteen)).toBe('reserved byte 0xc1');
    expect(scan(Buffer.concat([Buffer.of(0x9f), ints(15)]))).toBeUndefined();
    expect(scan(Buffer.concat([Buffer.of(0x9f), ints(14)]))).toBe('a container declares 15 items but only 14 bytes remain');
    const entries = Buffer.concat(Array.from({ length: 14 }, (_, i) => Buffer.of(i, 0xc0)));
    expect(scan(Buffer.concat([Buffer.of(0x8f), entries, Buffer.of(0x0e, 0xc0)]))).toBeUndefined();
    // The 15th key is "__proto__": read as a map, it is a key.
    expect(scan(Buffer.concat([Buffer.of(0x8f), entries, Buffer.of(0xa9), PROTO, Buffer.of(0xc0)]))).toBe(PROTO_KEY);
    // … and as its value it is fine.
    expect(scan(Buffer.concat([Buffer.of(0x8f), entries, Buffer.of(0x0e, 0xa9), PROTO]))).toBeUndefined();
  });

  it('reads 0xbf as a string of 31 bytes, whatever those bytes are', () => {
    expect(scan(Buffer.concat([Buffer.of(0xbf), Buffer.alloc(31, 0xc1)]))).toBeUndefined();
    expect(scan(Buffer.concat([Buffer.of(0xbf), Buffer.alloc(30, 0x61)]))).toBe(TRUNCATED);
    expect(scan(Buffer.concat([Buffer.of(0xbf), Buffer.alloc(32, 0x61)]))).toBe('1 bytes follow the value');
    // 32 bytes need str 8.
    expect(scan(Buffer.concat([Buffer.of(0xd9, 32), Buffer.alloc(32, 0xc1)]))).toBeUndefined();
    expect(scan(Buffer.concat([Buffer.of(0xd9, 32), Buffer.alloc(31, 0xc1)]))).toBe(TRUNCATED);
  });

  it('refuses the reserved byte 0xc1 wherever a value starts, even with bytes after it', () => {
    expect(scan(h('c1'))).toBe('reserved byte 0xc1');
    expect(scan(h('c1 01 02'))).toBe('reserved byte 0xc1');
    expect(scan(h('93 01 c1 02'))).toBe('reserved byte 0xc1');
    expect(scan(h('82 c1 01 02 03'))).toBe('reserved byte 0xc1'); // a key
    expect(scan(h('81 a1 61 c1'))).toBe('reserved byte 0xc1'); // a value
    expect(scan(h('c7 03 53 92 c1 01'))).toBe('reserved byte 0xc1'); // a Set member
  });

  it('accepts nil, false and true as one byte each', () => {
    expect(scan(h('93 c0 c2 c3'))).toBeUndefined();
    for (const b of ['c0', 'c2', 'c3']) expect(scan(h(`${b} 00`))).toBe('1 bytes follow the value');
  });
});

describe('scan: sized scalars', () => {
  // [header byte, payload bytes]
  const fixed: Array<[number, number]> = [
    [0xca, 4],
    [0xcb, 8],
    [0xcc, 1],
    [0xcd, 2],
    [0xce, 4],
    [0xcf, 8],
    [0xd0, 1],
    [0xd1, 2],
    [0xd2, 4],
    [0xd3, 8],
  ];

  it.each(fixed)('0x%s takes exactly its payload: whole, one short, one over', (b, size) => {
    const whole = Buffer.concat([Buffer.of(b), Buffer.alloc(size, 0xc1)]);
    expect(scan(whole)).toBeUndefined();
    expect(scan(whole.subarray(0, whole.length - 1))).toBe(TRUNCATED);
    expect(scan(Buffer.concat([whole, Buffer.of(0)]))).toBe('1 bytes follow the value');
    // Inside an array, followed by a value: the payload is skipped, not read as values.
    expect(scan(Buffer.concat([Buffer.of(0x92), whole, Buffer.of(0x05)]))).toBeUndefined();
  });

  for (const [name, header, kind] of [
    ['bin 8', 0xc4, 'bin'],
    ['str 8', 0xd9, 'str'],
    ['bin 16', 0xc5, 'bin'],
    ['str 16', 0xda, 'str'],
    ['bin 32', 0xc6, 'bin'],
    ['str 32', 0xdb, 'str'],
  ] as const) {
    it(`${name}: its length field is read whole, its data skipped, truncation refused at every byte`, () => {
      const lengthBytes = header === 0xc4 || header === 0xd9 ? 1 : header === 0xc5 || header === 0xda ? 2 : 4;
      for (const length of [0, 1, 9, 255]) {
        const field = Buffer.alloc(lengthBytes);
        field.writeUIntBE(length, 0, lengthBytes);
        const value = Buffer.concat([Buffer.of(header), field, Buffer.alloc(length, 0xc1)]);
        expect(scan(value), `${kind} ${length}`).toBeUndefined();
        expect(scan(Buffer.concat([Buffer.of(0x92), value, Buffer.of(0x01)]))).toBeUndefined();
        for (let cut = 1; cut < value.length; cut++) expect(scan(value.subarray(0, cut)), `cut at ${cut}`).toBe(TRUNCATED);
      }
      if (lengthBytes > 1) {
        // The high byte counts: 0x0100 bytes declared, 0x00ff present.
        const field = Buffer.alloc(lengthBytes);
        field.writeUIntBE(0x100, 0, lengthBytes);
        expect(scan(Buffer.concat([Buffer.of(header), field, Buffer.alloc(0xff)]))).toBe(TRUNCATED);
        expect(scan(Buffer.concat([Buffer.of(header), field, Buffer.alloc(0x100)]))).toBeUndefined();
      }
    });
  }

  it('reads every byte of a 32-bit length', () => {
    // 0x01000000 declared: the top byte alone makes it too long for this buffer.
    expect(scan(Buffer.concat([h('db 01 00 00 03'), Buffer.from('abc')]))).toBe(TRUNCATED);
    expect(scan(Buffer.concat([h('db 00 01 00 03'), Buffer.from('abc')]))).toBe(TRUNCATED);
    expect(scan(Buffer.concat([h('db 00 00 01 03'), Buffer.from('abc')]))).toBe(TRUNCATED);
    expect(scan(Buffer.concat([h('db 00 00 00 03'), Buffer.from('abc')]))).toBeUndefined();
    expect(scan(h('dd 01 00 00 00 01'))).toBe('a container declares 16777216 items but only 1 bytes remain');
    expect(scan(h('dd 00 01 00 00 01'))).toBe('a container declares 65536 items but only 1 bytes remain');
    expect(scan(h('dd 00 00 01 00 01'))).toBe('a container declares 256 items but only 1 bytes remain');
    expect(scan(h('df 80 00 00 00 01'))).toBe('a container declares 2147483648 items but only 1 bytes remain');
  });
});

describe('scan: "__proto__" keys', () => {
  for (const form of ['fix', 'str8', 'str16', 'str32'] as const) {
    it(`refuses "__proto__" as a key in every map format and position (${form} string)`, () => {
      const key = Buffer.concat([strHeader(9, form), PROTO]);
      for (const mapForm of ['fix', 'map16', 'map32'] as const) {
        for (const entries of [1, 2, 15]) {
          for (const at of new Set([0, 1, entries - 1])) {
            if (at >= entries) continue;
            const parts = [mapHeader(entries, mapForm)];
            for (let i = 0; i < entries; i++) parts.push(i === at ? key : Buffer.of(0xa1, 0x61 + i), Buffer.of(0xc0));
            const map = Buffer.concat(parts);
            expect(scan(map), `${mapForm} of ${entries}, key ${at}`).toBe(PROTO_KEY);
            // The same string as a value, or as an array item, is data.
            const asValue = Buffer.concat([mapHeader(1, mapForm), Buffer.of(0xa1, 0x61), key]);
            expect(scan(asValue)).toBeUndefined();
            expect(scan(Buffer.concat([arrayHeader(2, 'fix'), key, key]))).toBeUndefined();
          }
        }
      }
      // A nested map's key, after the outer map's first value.
      expect(scan(Buffer.concat([h('82 a1 61 01 a1 62 81'), key, h('c0')]))).toBe(PROTO_KEY);
      // Near misses and other lengths are ordinary keys.
      const nearMiss = Buffer.from(PROTO);
      nearMiss[8] = 0x60;
      expect(scan(Buffer.concat([h('81'), strHeader(9, form), nearMiss, h('c0')]))).toBeUndefined();
      expect(scan(Buffer.concat([h('81'), strHeader(10, form), PROTO, h('5f c0')]))).toBeUndefined();
      expect(scan(Buffer.concat([h('81'), strHeader(8, form), PROTO.subarray(0, 8), h('c0')]))).toBeUndefined();
    });
  }

  it('refuses a "__proto__" key only as a string: bin bytes spelling it are data', () => {
    for (const bin of [h('c4 09'), h('c5 00 09'), h('c6 00 00 00 09')]) {
      expect(scan(Buffer.concat([h('81'), bin, PROTO, h('c0')]))).toBeUndefined();
    }
  });

  it('checks every byte of the key', () => {
    for (let i = 0; i < 9; i++) {
      const key = Buffer.from(PROTO);
      key[i] ^= 0x01;
      expect(scan(Buffer.concat([h('81 a9'), key, h('c0')])), `byte ${i} changed`).toBeUndefined();
    }
  });

  it('a key "__proto__" cut short by the end of the value is truncated, not read past the end', () => {
    const map = Buffer.concat([h('81 a9'), PROTO, h('c0')]);
    expect(scanMessagePack(map, 0, 10, 100)).toBe(TRUNCATED);
    // The key complete up to `end`, its value missing: the key alone is reason enough.
    expect(scanMessagePack(map, 0, 11, 100)).toBe(PROTO_KEY);
    expect(scanMessagePack(Buffer.concat([h('81 a9'), PROTO.subarray(0, 8)]), 0, 10, 100)).toBe(TRUNCATED);
  });
});

describe('scan: extensions', () => {
  const signed = (type: number): number => (type > 127 ? type - 256 : type);
  const wrongTypes = [0x00, 0x01, 0x42, 0x72, 0x73, 0x6d, 0x7f, 0x80, 0xfe, 0xff];

  it('fixext 1/2/4/8/16: only undefined (fixext 1), timestamps (fixext 4, 8), Set and Map; the reason names the type and size', () => {
    const sizes: Array<[number, number]> = [
      [0xd4, 1],
      [0xd5, 2],
      [0xd6, 4],
      [0xd7, 8],
      [0xd8, 16],
    ];
    for (const [b, size] of sizes) {
      for (const type of wrongTypes) {
        const value = Buffer.concat([Buffer.of(b, type), Buffer.alloc(size, 0x90)]);
        const allowed = (type === ExtType.UNDEFINED && b === 0xd4) || (type === ExtType.TIMESTAMP && (b === 0xd6 || b === 0xd7));
        if (allowed) {
          expect(scan(value), `${b.toString(16)} type ${type}`).toBeUndefined();
          // Its data is skipped: the bytes after it in an array are the next value.
          expect(scan(Buffer.concat([h('92'), value, h('c1')]))).toBe('reserved byte 0xc1');
          expect(scan(value.subarray(0, value.length - 1))).toBe(TRUNCATED);
        } else {
          expect(scan(value), `${b.toString(16)} type ${type}`).toBe(`extension type ${signed(type)} (fixext ${size}) is not allowed`);
        }
      }
      expect(scan(Buffer.of(b))).toBe(TRUNCATED);
      // The type is checked as soon as its byte is read: a forbidden extension whose data is cut
      // short (here: missing) is refused for its type, the fact a peer's author needs, not as
      // truncated. (Kills `pos + 1 > limit` read as `>=`, which would stop one byte early.)
      for (const type of wrongTypes) {
        const allowed = (type === ExtType.UNDEFINED && b === 0xd4) || (type === ExtType.TIMESTAMP && (b === 0xd6 || b === 0xd7));
        if (!allowed) expect(scan(Buffer.of(b, type)), `${b.toString(16)} type ${type}, no data`).toBe(`extension type ${signed(type)} (fixext ${size}) is not allowed`);
      }
    }
  });

  it('ext 8: only the 12-byte timestamp, Set and Map; every other type refused at every length', () => {
    for (let length = 0; length <= 20; length++) {
      for (const type of wrongTypes) {
        if (type === ExtType.TIMESTAMP && length === 12) continue;
        const value = Buffer.concat([Buffer.of(0xc7, length, type), Buffer.alloc(length, 0x90)]);
        expect(scan(value), `length ${length} type ${type}`).toBe(`extension type ${signed(type)} (length ${length}) is not allowed`);
      }
    }
    const timestamp = h('c7 0c ff 3b8b87c0 ffffffffffffffff');
    expect(scan(timestamp)).toBeUndefined();
    expect(scan(Buffer.concat([h('92'), timestamp, h('c1')]))).toBe('reserved byte 0xc1');
    for (let cut = 1; cut < timestamp.length; cut++) expect(scan(timestamp.subarray(0, cut))).toBe(TRUNCATED);
  });

  it('ext 16 and ext 32: only Set and Map; the reason names the type', () => {
    for (const type of wrongTypes) {
      expect(scan(Buffer.of(0xc8, 0, 1, type, 0x90))).toBe(`extension type ${signed(type)} (ext 16) is not allowed`);
      expect(scan(Buffer.of(0xc9, 0, 0, 0, 1, type, 0x90))).toBe(`extension type ${signed(type)} (ext 32) is not allowed`);
    }
    for (const cut of [1, 2, 3]) expect(scan(Buffer.of(0xc8, 0, 1, 0x53).subarray(0, cut))).toBe(TRUNCATED);
    for (const cut of [1, 2, 3, 4, 5]) expect(scan(Buffer.of(0xc9, 0, 0, 0, 1, 0x53).subarray(0, cut))).toBe(TRUNCATED);
  });

  for (const [name, type] of [
    ['Set', ExtType.SET],
    ['Map', ExtType.MAP],
  ] as const) {
    const headers: Array<[string, (length: number) => Buffer]> = [
      ['ext 8', (n) => Buffer.of(0xc7, n, type)],
      ['ext 16', (n) => Buffer.of(0xc8, n >> 8, n & 0xff, type)],
      ['ext 32', (n) => Buffer.of(0xc9, 0, 0, n >> 8, n & 0xff, type)],
    ];
    it(`a ${name}'s data is exactly one array, in every ext header`, () => {
      for (const [form, header] of headers) {
        const ok = (data: Buffer): Buffer => Buffer.concat([header(data.length), data]);
        expect(scan(ok(h('92 01 02'))), form).toBeUndefined();
        expect(scan(ok(h('90'))), form).toBeUndefined();
        expect(scan(ok(Buffer.concat([h('dc 00 02'), h('01 02')]))), form).toBeUndefined();
        expect(scan(ok(Buffer.concat([h('dd 00 00 00 02'), h('01 02')]))), form).toBeUndefined();
        // Not an array: a map, a string, an int, nothing, an array header cut short.
        for (const data of [h('80'), h('a0'), h('01'), h('dc 00'), h('dd 00 00 00')]) {
          expect(scan(ok(data)), `${form} ${hexOf(data)}`).toBe(`a ${name} extension's data is not an array`);
        }
        expect(scan(Buffer.concat([header(0)]))).toBe(`a ${name} extension's data is not an array`);
        // Empty data followed by an array byte outside it: the data ends where the extension
        // says, so the array after it is not its data (an off-by-one would take it as the data
        // and then report a truncation instead).
        expect(scan(Buffer.concat([h('92'), header(0), h('90')])), form).toBe(`a ${name} extension's data is not an array`);
        // An array 16 or array 32 header that exactly fills the data is a whole header: an empty array.
        expect(scan(ok(h('dc 00 00'))), `${form} dc 0000`).toBeUndefined();
        expect(scan(ok(h('dd 00 00 00 00'))), `${form} dd 00000000`).toBeUndefined();
        // Data that starts like no array is refused at its first byte, however long it is (a map,
        // then four bytes that would read as a 32-bit count if the first byte were not checked).
        expect(scan(ok(h('80 c0 c0 c0 c0'))), `${form} 80 + 4`).toBe(`a ${name} extension's data is not an array`);
        expect(scan(ok(h('a0 01 02 03 04 05'))), `${form} a0 + 5`).toBe(`a ${name} extension's data is not an array`);
        // Bytes after the array, inside the data.
        expect(scan(ok(h('92 01 02 03')))).toBe("a Set or Map extension's data has 1 bytes after its array");
        expect(scan(ok(h('90 01 02')))).toBe("a Set or Map extension's data has 2 bytes after its array");
        // The array runs past the data: the data's end is where the array must end.
        expect(scan(Buffer.concat([header(2), h('92 01 02')]))).toBe('a container declares 2 items but only 1 bytes remain');
        expect(scan(Buffer.concat([header(3), h('92 01 a1 61')]))).toBe(TRUNCATED);
        // Data declared longer than the buffer.
        expect(scan(Buffer.concat([header(4), h('92 01 02')]))).toBe(TRUNCATED);
        // After the extension, the enclosing array goes on.
        expect(scan(Buffer.concat([h('92'), ok(h('92 01 02')), h('05')]))).toBeUndefined();
        expect(scan(Buffer.concat([h('92'), ok(h('92 01 02')), h('c1')]))).toBe('reserved byte 0xc1');
      }
    });
  }

  it('a Map\'s array has an even number of items; a Set\'s may be odd', () => {
    // The count is read from the array 32 header's own four bytes: 0x00010002 is even (and more
    // than the data holds), while the four bytes one before it (the type, 0xdd, 00, 01) would be odd.
    expect(scan(h('c7 07 4d dd 00 01 00 02 c0 c0'))).toBe('a container declares 65538 items but only 2 bytes remain');
    expect(scan(h('c7 07 4d dd 00 00 00 03 c0 c0'))).toBe("a Map extension's array has an odd number of items");
    expect(scan(h('c7 04 4d 93 01 02 03'))).toBe("a Map extension's array has an odd number of items");
    expect(scan(h('c7 02 4d 91 01'))).toBe("a Map extension's array has an odd number of items");
    expect(scan(h('c7 03 4d 92 01 02'))).toBeUndefined();
    expect(scan(h('c7 04 53 93 01 02 03'))).toBeUndefined();
    // A fixext carries fixed-size data: fixext 4 with a 4-byte array.
    expect(scan(h('d6 4d 93 01 02 03'))).toBe("a Map extension's array has an odd number of items");
    expect(scan(h('d6 53 93 01 02 03'))).toBeUndefined();
    expect(scan(h('d4 53 90'))).toBeUndefined();
    expect(scan(h('d5 53 91 01'))).toBeUndefined();
  });

  it('a Map\'s keys are not object keys: "__proto__" inside a Map is data', () => {
    const data = Buffer.concat([h('92 a9'), PROTO, h('01')]);
    expect(scan(Buffer.concat([Buffer.of(0xc7, data.length, ExtType.MAP), data]))).toBeUndefined();
    // A plain map inside a Map's array is a map again.
    const inner = Buffer.concat([h('92 01 81 a9'), PROTO, h('01')]);
    expect(scan(Buffer.concat([Buffer.of(0xc7, inner.length, ExtType.MAP), inner]))).toBe(PROTO_KEY);
    // A map key that is a Set: the map's next item is its value again.
    expect(scan(Buffer.concat([h('82 c7 03 53 92 01 02 a9'), PROTO, h('a1 61 01')]))).toBeUndefined();
  });
});

describe('scan: containers', () => {
  for (const form of ['fix', 'array16', 'array32'] as const) {
    it(`an array (${form}) may declare as many items as bytes remain, not one more`, () => {
      for (const n of [1, 2, 15]) {
        expect(scan(Buffer.concat([arrayHeader(n, form), ints(n)]))).toBeUndefined();
        expect(scan(Buffer.concat([arrayHeader(n, form), ints(n - 1)]))).toBe(`a container declares ${n} items but only ${n - 1} bytes remain`);
      }
    });
  }

  for (const form of ['fix', 'map16', 'map32'] as const) {
    it(`a map (${form}) needs two bytes an entry; the reason counts entries`, () => {
      for (const n of [1, 2, 15]) {
        expect(scan(Buffer.concat([mapHeader(n, form), ints(2 * n)]))).toBeUndefined();
        expect(scan(Buffer.concat([mapHeader(n, form), ints(2 * n - 1)]))).toBe(`a container declares ${n} items but only ${2 * n - 1} bytes remain`);
      }
    });
  }

  it('reads 16-bit counts whole', () => {
    expect(scan(Buffer.concat([h('dc 01 00'), ints(0xff)]))).toBe('a container declares 256 items but only 255 bytes remain');
    expect(scan(Buffer.concat([h('dc 01 00'), ints(0x100)]))).toBeUndefined();
    expect(scan(Buffer.concat([h('de 01 00'), ints(0x1ff)]))).toBe('a container declares 256 items but only 511 bytes remain');
    expect(scan(Buffer.concat([h('de 01 00'), ints(0x200)]))).toBeUndefined();
  });

  it('refuses container headers cut short', () => {
    for (const header of [h('dc 00 01'), h('dd 00 00 00 01'), h('de 00 01'), h('df 00 00 00 01')]) {
      for (let cut = 1; cut < header.length; cut++) expect(scan(header.subarray(0, cut)), hexOf(header.subarray(0, cut))).toBe(TRUNCATED);
      // Header complete, items missing.
      expect(scan(header)).toMatch(/^a container declares 1 items but only 0 bytes remain$/);
    }
  });

  it('pops back to the enclosing container with its count and kind', () => {
    // {a: [1, 2], b: {c: [3]}, "__proto__" …}: the key after two nested containers is still a key.
    expect(scan(Buffer.concat([h('83 a1 61 92 01 02 a1 62 81 a1 63 91 03 a9'), PROTO, h('c0')]))).toBe(PROTO_KEY);
    // [[1, 2], {"__proto__": 1}]: after the inner array, the map's key is a key.
    expect(scan(Buffer.concat([h('92 92 01 02 81 a9'), PROTO, h('01')]))).toBe(PROTO_KEY);
    // [{x: [1]}, "__proto__"]: back in an array, a string is an item, not a key.
    expect(scan(Buffer.concat([h('92 81 a1 78 91 01 a9'), PROTO]))).toBeUndefined();
    // The enclosing count is restored: [[1], 2, 3] has nothing after it, [[1], 2] 3 has 1 byte.
    expect(scan(h('93 91 01 02 03'))).toBeUndefined();
    expect(scan(h('92 91 01 02 03'))).toBe('1 bytes follow the value');
  });
});

describe('scan: nesting depth', () => {
  it('counts arrays, maps, empty containers and Set/Map extensions against maxDepth', () => {
    for (const maxDepth of [1, 2, 5]) {
      const arrays = (n: number): Buffer => Buffer.concat([Buffer.alloc(n, 0x91), h('01')]);
      expect(scan(arrays(maxDepth), maxDepth)).toBeUndefined();
      expect(scan(arrays(maxDepth + 1), maxDepth)).toBe(`nesting is deeper than ${maxDepth} levels`);
      const empty = (n: number): Buffer => Buffer.concat([Buffer.alloc(n - 1, 0x91), h('90')]);
      expect(scan(empty(maxDepth), maxDepth)).toBeUndefined();
      expect(scan(empty(maxDepth + 1), maxDepth)).toBe(`nesting is deeper than ${maxDepth} levels`);
      const emptyMap = Buffer.concat([Buffer.alloc(maxDepth, 0x91), h('80')]);
      expect(scan(emptyMap, maxDepth)).toBe(`nesting is deeper than ${maxDepth} levels`);
    }
    // A Set is two levels: its extension and its array.
    expect(scan(h('c7 02 53 91 01'), 2)).toBeUndefined();
    expect(scan(h('c7 02 53 91 01'), 1)).toBe('nesting is deeper than 1 levels');
    expect(scan(h('91 c7 02 53 91 01'), 2)).toBe('nesting is deeper than 2 levels');
    expect(scan(h('c7 01 53 90'), 1)).toBe('nesting is deeper than 1 levels');
  });

  it('works with limits beyond its preallocated stacks (128 levels), and afterwards with small ones again', () => {
    for (const maxDepth of [127, 128, 129, 300, 1000]) {
      const deep = (n: number): Buffer => Buffer.concat([Buffer.alloc(n, 0x91), h('01')]);
      expect(scan(deep(maxDepth), maxDepth), `${maxDepth}`).toBeUndefined();
      expect(scan(deep(maxDepth + 1), maxDepth)).toBe(`nesting is deeper than ${maxDepth} levels`);
      // Each level remembers where its enclosing one was: a deep map inside arrays, then siblings.
      const mixed = Buffer.concat([Buffer.alloc(maxDepth - 2, 0x92), h('81 a1 61 91 01'), Buffer.alloc(maxDepth - 2, 0x02)]);
      expect(scan(mixed, maxDepth)).toBeUndefined();
      const protoDeep = Buffer.concat([Buffer.alloc(maxDepth - 2, 0x92), h('82 a1 61 91 01 a9'), PROTO, h('01'), Buffer.alloc(maxDepth - 2, 0x02)]);
      expect(scan(protoDeep, maxDepth)).toBe(PROTO_KEY);
      // Sets deep down keep their limits.
      const sets = (n: number): Buffer => {
        let inner = h('01');
        for (let i = 0; i < n; i++) inner = Buffer.concat([Buffer.of(0xc8, (inner.length + 1) >> 8, (inner.length + 1) & 0xff, 0x53, 0x91), inner]);
        return inner;
      };
      expect(scan(sets(maxDepth >> 1), maxDepth)).toBeUndefined();
      expect(scan(Buffer.concat([h('91'), sets(maxDepth >> 1)]), maxDepth)).toBe(maxDepth % 2 === 0 ? `nesting is deeper than ${maxDepth} levels` : undefined);
    }
    expect(scan(Buffer.concat([Buffer.alloc(100, 0x91), h('01')]), 100)).toBeUndefined();
    expect(scan(Buffer.concat([Buffer.alloc(101, 0x91), h('01')]), 100)).toBe('nesting is deeper than 100 levels');
  });
});

describe('scan: bounds', () => {
  it('scans only between start and end of a larger buffer', () => {
    const buf = h('c1 92 01 02 c1');
    expect(scanMessagePack(buf, 1, 4, 100)).toBeUndefined();
    expect(scanMessagePack(buf, 1, 3, 100)).toBe('a container declares 2 items but only 1 bytes remain');
    expect(scanMessagePack(buf, 1, 5, 100)).toBe('1 bytes follow the value');
    expect(scanMessagePack(buf, 0, 4, 100)).toBe('reserved byte 0xc1');
    expect(scanMessagePack(buf, 2, 2, 100)).toBe(TRUNCATED);
  });

  it('refuses truncation at every position of every kind of value with a reason about the truncation', () => {
    const values = [
      '93 01 00 de 0003 a4 74797065 a3 616464 a1 61 01 a1 62 02',
      '82 a1 61 92 01 cb 3ff8000000000000 a1 62 81 a1 63 c3',
      'cf ffffffffffffffff',
      'd3 8000000000000000',
      'ca 3fc00000',
      'cc ff', 'cd ffff', 'ce ffffffff', 'd0 80', 'd1 8000', 'd2 80000000',
      'c4 02 0102', 'c5 0002 0102', 'c6 00000002 0102',
      'd9 03 616263', 'da 0003 616263', 'db 00000003 616263',
      'c7 07 4d 94 a1 61 01 02 a1 62',
      'c8 0003 53 92 01 02',
      'c9 00000003 53 92 01 02',
      'd4 53 90', 'd5 53 91 01', 'd6 53 93 01 02 03', 'd7 53 97 01 02 03 04 05 06 07', 'd8 53 9f 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f',
      'd6 ff 6553f100',
      'd7 ff 1d535300 6553f100',
      'c7 0c ff 3b8b87c0 ffffffffffffffff',
      '92 d4 00 00 01',
      'dc 0002 01 02',
      'dd 00000002 01 02',
      'de 0001 a1 61 01',
      'df 00000001 a1 61 01',
    ];
    for (const hex of values) {
      const bytes = h(hex);
      expect(scan(bytes), hex).toBeUndefined();
      // Inside a larger buffer whose later bytes would complete the value: they must not be read.
      for (let cut = 0; cut < bytes.length; cut++) {
        const reason = scanMessagePack(bytes, 0, cut, 100);
        if (reason === TRUNCATED || /^a container declares \d+ items but only \d+ bytes remain$/.test(reason ?? '') || /extension's data is not an array$/.test(reason ?? '')) continue;
        throw new Error(`${hex} cut at ${cut}: ${String(reason)}`);
      }
    }
  });
});

// Not tested, because no input tells them apart (mutation testing reports them as survivors):
// - the stack growth check `stack.length < maxDepth + 1` made always true (or `<=`) reallocates the
//   stacks on every scan; the scan gives the same answers, only slower;
// - `b >= 0xe0` (negative fixints) made `false` or `>`: bytes 0xe0-0xff match no case of the switch
//   after it and are skipped the same way;
// - the header truncation checks of str 16, bin 16, array 16/32 and map 16/32 (`pos + n > limit`
//   made `false` or `pos - n > limit`): the position then moves past the limit and the check after
//   the switch returns the same 'the value is truncated' (tested at every cut above);
// - the depth check before a Set's or Map's level (`depth >= maxDepth` made `false` or `>`): its
//   data is always an array, whose own level check returns the same 'nesting is deeper than …'
//   (the stacks hold maxDepth + 1 levels, so the extra push fits);
// - `open > 0` made `>= 0`: an empty container pushed and popped at once is the same as one not
//   pushed, and its depth check is the same;
// - arrayLength reading an array 16's high count byte one early (`buf[at - 1]`): only the count's
//   sign and parity are used, and both come from the low byte.
