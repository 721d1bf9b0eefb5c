import { describe, expect, it } from 'vitest';
import { ConverseError } from '../../src/errors.js';
import { checksumOf, decodeBody, encodeFrame } from '../../src/wire/codec.js';
import { FrameKind, MAX_NESTING_DEPTH } from '../../src/wire/constants.js';
import { FrameDecoder } from '../../src/wire/framing.js';

/*
 * The codec against the contract (every value kind the public API lists must round-trip) and
 * against docs/PROTOCOL.md (frame layout, envelope bytes, limits). Every round trip goes the way
 * a message really travels: encodeFrame → FrameDecoder → decodeBody.
 */

const LIMIT = 1024 * 1024;

function bodiesOf(bytes: Buffer, checksum: boolean, limit = LIMIT): Buffer[] {
  const bodies: Buffer[] = [];
  const d = new FrameDecoder(
    limit,
    checksum,
    (body) => bodies.push(body),
    (error) => {
      throw error;
    },
  );
  d.push(bytes);
  return bodies;
}

function roundTrip(value: unknown, checksum = false): unknown {
  const bodies = bodiesOf(encodeFrame(value, checksum, LIMIT), checksum);
  expect(bodies).toHaveLength(1);
  return decodeBody(bodies[0]!);
}

/** Round trip with checksums off and on; both must agree. */
function both(value: unknown): unknown {
  const plain = roundTrip(value, false);
  const checked = roundTrip(value, true);
  expect(checked).toStrictEqual(plain);
  return plain;
}

function expectCode(fn: () => unknown, code: string): ConverseError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(ConverseError);
  expect((thrown as ConverseError).code).toBe(code);
  return thrown as ConverseError;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** `levels` nested arrays around `leaf`. */
function nestArrays(levels: number, leaf: unknown = 1): unknown {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}

describe('decodeBody on a range of a larger buffer (a read chunk, decoded in place)', () => {
  it('decodes only the range, and binary fields are views of the same memory', () => {
    const frame = encodeFrame([FrameKind.REPLY, 7, { data: new Uint8Array([1, 2, 3]) }], false, 1 << 20);
    const body = frame.subarray(1); // a 1-byte prefix: the body is under 252 bytes
    const chunk = Buffer.concat([Buffer.from([0x93, 0x01]), body, Buffer.from([0xc1])]);
    const value = decodeBody(chunk, 2, 2 + body.length) as [number, number, { data: Uint8Array }];
    expect(value[0]).toBe(FrameKind.REPLY);
    expect(value[1]).toBe(7);
    expect([...value[2].data]).toEqual([1, 2, 3]);
    expect(value[2].data.buffer).toBe(chunk.buffer);
    // The scan is held to the range too: a range that ends early is truncated, whatever follows it.
    expect(() => decodeBody(chunk, 2, 1 + body.length)).toThrow(/DECODE_FAILED|not valid|truncated/);
  });
});

describe('codec round trip: every value kind the contract lists', () => {
  it('plain objects and arrays', () => {
    expect(both({})).toStrictEqual({});
    expect(both([])).toStrictEqual([]);
    const event = { type: 'add', a: 1, b: 2 };
    expect(both(event)).toStrictEqual(event);
    expect(both([1, 'two', [3], { four: 4 }])).toStrictEqual([1, 'two', [3], { four: 4 }]);
    // Keys that look special to JavaScript are ordinary data.
    const tricky = { constructor: { prototype: { polluted: true } }, toString: 'x', hasOwnProperty: 1, __proto_: 2 };
    // (toStrictEqual compares `.constructor`, which is data here; compare keys and values instead.)
    for (const checksum of [false, true]) {
      const decoded = roundTrip(tricky, checksum) as Record<string, unknown>;
      expect(Object.keys(decoded)).toEqual(Object.keys(tricky));
      expect(decoded).toEqual(tricky);
      expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('strings, including unicode and every str length format', () => {
    for (const s of ['', 'a', 'é', 'naïve café', '日本語', '😀 emoji 👍🏽', '\u0000nul', 'x'.repeat(31), 'x'.repeat(32), 'y'.repeat(255), 'z'.repeat(256), 'w'.repeat(65_535), 'v'.repeat(65_536)]) {
      expect(both(s)).toBe(s);
      expect(both({ s })).toStrictEqual({ s });
    }
  });

  it('numbers: integers, negatives, floats, NaN, ±Infinity, the safe-integer edges', () => {
    const numbers = [
      0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1,
      -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53 - 1),
      0.5, -0.25, 0.1, Math.PI, 1e308, -1e-308, 5e-324, Number.MAX_VALUE, Number.EPSILON,
      Infinity, -Infinity,
    ];
    for (const n of numbers) expect(both(n)).toBe(n);
    expect(Number.isNaN(both(NaN))).toBe(true);
    expect(both({ n: NaN, inf: Infinity, ninf: -Infinity })).toStrictEqual({ n: NaN, inf: Infinity, ninf: -Infinity });
    expect(both(2 ** 53 - 1)).toBe(Number.MAX_SAFE_INTEGER);
    // Numbers stay numbers (never bigint), whatever format carried them.
    for (const n of [2 ** 32, 2 ** 53 - 1, -(2 ** 53 - 1)]) expect(typeof both(n)).toBe('number');
  });

  it('booleans, null, and undefined in objects and arrays', () => {
    expect(both(true)).toBe(true);
    expect(both(false)).toBe(false);
    expect(both(null)).toBe(null);
    expect(both(undefined)).toBe(undefined);
    const withUndefined = both({ a: undefined, b: null, c: 1 }) as Record<string, unknown>;
    expect(Object.keys(withUndefined)).toEqual(['a', 'b', 'c']);
    expect('a' in withUndefined).toBe(true);
    expect(withUndefined.a).toBeUndefined();
    expect(withUndefined.b).toBeNull();
    expect(both([undefined, null])).toStrictEqual([undefined, null]);
  });

  it('integers: one documented mapping each way (PROTOCOL.md §5.4)', () => {
    const body = (value: unknown): string => hex(encodeFrame(value, false, LIMIT).subarray(1));
    // Safe integers, number or bigint, take the shortest int format; beyond 32 bits that is uint 64
    // when positive and int 64 when negative (never float 64).
    expect(body(2 ** 32)).toBe('cf0000000100000000');
    expect(body(2 ** 32 - 1)).toBe('ceffffffff');
    expect(body(-(2 ** 31) - 1)).toBe('d3ffffffff7fffffff');
    expect(body(2 ** 53 - 1)).toBe('cf001fffffffffffff');
    expect(body(-(2 ** 53 - 1))).toBe('d3ffe0000000000001');
    expect(body(5n)).toBe('05');
    expect(body(-33n)).toBe('d0df');
    expect(body(2n ** 40n)).toBe('cf0000010000000000');
    expect(body(2n ** 63n)).toBe('cf8000000000000000');
    expect(body(-(2n ** 63n))).toBe('d38000000000000000');
    // A number that is not a safe integer stays a float 64 (2^53 is not safe: 2^53 + 1 rounds to it).
    expect(body(2 ** 53)).toBe('cb4340000000000000');
    expect(body(1e20)).toBe('cb4415af1d78b58c40');
    // Decoding: every int format within ±2^53 is a number, beyond it a bigint.
    for (const n of [2 ** 32, 2 ** 40, 2 ** 53 - 1, -(2 ** 53 - 1), -(2 ** 31) - 1]) {
      expect(both(n)).toBe(n);
    }
    for (const v of [2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, 2n ** 64n - 1n]) {
      const decoded = both(v);
      expect(typeof decoded).toBe('bigint');
      expect(decoded).toBe(v);
    }
    // A bigint within ±2^53 arrives as a number: MessagePack has one integer type.
    for (const v of [0n, 1n, -1n, 127n, 2n ** 31n, 2n ** 53n, -(2n ** 53n)]) expect(both(v)).toBe(Number(v));
    expect(both({ id: 2n ** 64n - 1n, min: -(2n ** 63n), small: 7n })).toStrictEqual({ id: 2n ** 64n - 1n, min: -(2n ** 63n), small: 7 });
    expect(decodeBody(Buffer.from('cf0000000000000001', 'hex'))).toBe(1);
    expect(decodeBody(Buffer.from('cf0020000000000000', 'hex'))).toBe(2 ** 53);
    expect(decodeBody(Buffer.from('cf0020000000000001', 'hex'))).toBe(2n ** 53n + 1n);
    expect(decodeBody(Buffer.from('d3ffe0000000000000', 'hex'))).toBe(-(2 ** 53));
    expect(decodeBody(Buffer.from('d3ffdfffffffffffff', 'hex'))).toBe(-(2n ** 53n) - 1n);
  });

  it('Date in all three timestamp sizes (seconds, milliseconds, pre-1970 and far future)', () => {
    const dates = [
      new Date(0),
      new Date(1_700_000_000_000), // whole seconds: timestamp 32
      new Date(1_700_000_000_123), // milliseconds: timestamp 64
      new Date(-1), // before 1970: timestamp 96
      new Date(-62_135_596_800_000), // 0001-01-01
      new Date(8.64e15), // the largest Date
      new Date(-8.64e15),
    ];
    for (const date of dates) {
      const decoded = both(date);
      expect(decoded).toBeInstanceOf(Date);
      expect((decoded as Date).getTime()).toBe(date.getTime());
    }
    const body = encodeFrame(new Date(1_700_000_000_000), false, LIMIT).subarray(1);
    expect(hex(body)).toBe('d6ff6553f100');
  });

  it('Map with string keys, non-string keys, and nested Maps', () => {
    const stringKeys = new Map([
      ['a', 1],
      ['b', 2],
    ]);
    const decodedString = both(stringKeys);
    expect(decodedString).toBeInstanceOf(Map);
    expect(decodedString).toStrictEqual(stringKeys);

    const objectKey = { k: 1 };
    const mixed = new Map<unknown, unknown>([
      [1, 'one'],
      ['1', 'string one'],
      [true, 'yes'],
      [null, 'nothing'],
      [2n ** 60n, 'big'],
      [objectKey, 'object key'],
      [[1, 2], 'array key'],
    ]);
    const decodedMixed = both(mixed) as Map<unknown, unknown>;
    expect(decodedMixed).toBeInstanceOf(Map);
    expect([...decodedMixed.keys()]).toStrictEqual([1, '1', true, null, 2n ** 60n, { k: 1 }, [1, 2]]);
    expect(decodedMixed.get(1)).toBe('one');
    expect(decodedMixed.get('1')).toBe('string one');
    expect(decodedMixed.get(null)).toBe('nothing');

    const nested = new Map<string, unknown>([['inner', new Map([[new Map([[1, 2]]), new Set(['s'])]])]]);
    expect(both(nested)).toStrictEqual(nested);
    expect(both(new Map())).toStrictEqual(new Map());
    // A Map key "__proto__" is safe (a Map has no prototype chain to pollute) and allowed.
    const protoKey = both(new Map([['__proto__', 1]])) as Map<string, number>;
    expect(protoKey.get('__proto__')).toBe(1);
  });

  it('Set, including mixed members and nested Sets', () => {
    const set = new Set<unknown>([1, 'two', null, 2n ** 60n, { four: 4 }, [5], new Set([6])]);
    const decoded = both(set);
    expect(decoded).toBeInstanceOf(Set);
    expect(decoded).toStrictEqual(set);
    expect(both(new Set())).toStrictEqual(new Set());
  });

  it('Uint8Array and Buffer arrive as bytes (a Uint8Array; a Buffer in Node)', () => {
    for (const bytes of [new Uint8Array(0), Uint8Array.of(1, 2, 3), new Uint8Array(300).fill(9), Buffer.from('buffer bytes'), Buffer.alloc(70_000, 0xee)]) {
      for (const checksum of [false, true]) {
        const decoded = roundTrip(bytes, checksum);
        expect(decoded).toBeInstanceOf(Uint8Array);
        expect(Buffer.from(decoded as Uint8Array).equals(Buffer.from(bytes))).toBe(true);
      }
    }
    // A view sends only its own bytes.
    const backing = Uint8Array.of(0, 1, 2, 3, 4, 5);
    const view = new Uint8Array(backing.buffer, 2, 3);
    expect(hex(both(view) as Uint8Array)).toBe('020304');
    const inObject = both({ data: Uint8Array.of(7, 8) }) as { data: Uint8Array };
    expect(hex(inObject.data)).toBe('0708');
  });

  it('deep nested combinations, e.g. a Map inside an array inside an object', () => {
    const value = {
      type: 'sync',
      list: [new Map<unknown, unknown>([['k', new Set([1, 2])], [3, { deep: [new Date(5000), 2n ** 62n, Uint8Array.of(1)] }]])],
      nested: { a: [{ b: [{ c: new Map([['d', [undefined, null, true]]]) }] }] },
    };
    const decoded = both(value) as typeof value;
    expect(decoded.type).toBe('sync');
    // Arrays that hold a Map stay arrays (they are copied to wrap the Map, not turned into objects).
    expect(Array.isArray(decoded.list)).toBe(true);
    expect(Array.isArray(decoded.nested.a)).toBe(true);
    expect(Array.isArray(decoded.nested.a[0]!.b)).toBe(true);
    const map = decoded.list[0]!;
    expect(map).toBeInstanceOf(Map);
    expect(map.get('k')).toStrictEqual(new Set([1, 2]));
    const deep = (map.get(3) as { deep: unknown[] }).deep;
    expect((deep[0] as Date).getTime()).toBe(5000);
    expect(deep[1]).toBe(2n ** 62n);
    expect(hex(deep[2] as Uint8Array)).toBe('01');
    expect(decoded.nested.a[0]!.b[0]!.c).toStrictEqual(new Map([['d', [undefined, null, true]]]));
  });

  it('envelopes of every kind', () => {
    const envelopes = [
      [FrameKind.TELL, { type: 'log', line: 'hi' }],
      [FrameKind.ASK, 0, { type: 'add', a: 1, b: 2 }],
      [FrameKind.ASK, 0xffffffff, { type: 'x' }],
      [FrameKind.REPLY, 7, { uptime: 1.5, clients: 2 }],
      [FrameKind.ERROR, 7, { code: 'REMOTE_ERROR', message: 'boom', remote: { name: 'TypeError', message: 'boom', code: 'E_X' } }],
      [FrameKind.CANCEL, 7],
      [FrameKind.GOODBYE],
    ];
    for (const envelope of envelopes) expect(both(envelope)).toStrictEqual(envelope);
  });
});

describe('codec: documented behaviour at the edges', () => {
  it('-0 arrives as 0 (MessagePack integers have no negative zero)', () => {
    expect(Object.is(both(-0), 0)).toBe(true);
  });

  it('other typed arrays and ArrayBuffers are sent as their bytes and arrive as bytes', () => {
    const floats = both(new Float64Array([1.5])) as Uint8Array;
    expect(floats).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(floats).equals(Buffer.from(new Float64Array([1.5]).buffer))).toBe(true);
  });

  it('does not change the value it encodes (Maps and Sets are wrapped in copies)', () => {
    const inner = new Map([['x', 1]]);
    const value = { type: 't', list: [inner, new Set([1])], plain: { n: 1 } };
    const list = value.list;
    encodeFrame(value, false, LIMIT);
    expect(value.list).toBe(list);
    expect(value.list[0]).toBe(inner);
    expect(value.list[0]).toBeInstanceOf(Map);
    expect(value.list[1]).toBeInstanceOf(Set);
  });

  it('earlier frames stay intact while later ones are encoded (frames share msgpackr memory)', () => {
    const first = encodeFrame({ type: 'first', data: 'a'.repeat(1000) }, true, LIMIT);
    const copy = Buffer.from(first);
    for (let i = 0; i < 2000; i++) encodeFrame({ type: 'later', i, data: 'b'.repeat(i % 500) }, true, LIMIT);
    expect(first.equals(copy)).toBe(true);
    expect(decodeBody(bodiesOf(first, true)[0]!)).toStrictEqual({ type: 'first', data: 'a'.repeat(1000) });
  });
});

describe('encodeFrame: frame layout (docs/PROTOCOL.md examples)', () => {
  it('the envelope kinds are the documented numbers', () => {
    expect(FrameKind).toMatchObject({ TELL: 0, ASK: 1, REPLY: 2, ERROR: 3, CANCEL: 4, GOODBYE: 5, PING: 6, PONG: 7, STREAM_ITEM: 8, STREAM_END: 9, CREDIT: 10 });
    const numbers = Object.values(FrameKind);
    expect(new Set(numbers).size).toBe(numbers.length);
  });

  it('ASK {type:"add", a:1, b:2} with id 0, and its REPLY 3, byte for byte', () => {
    // msgpackr writes objects as map16 (0xde), even small ones.
    const ask = encodeFrame([FrameKind.ASK, 0, { type: 'add', a: 1, b: 2 }], false, LIMIT);
    expect(hex(ask)).toBe('15' + '930100' + 'de0003' + 'a474797065' + 'a3616464' + 'a16101' + 'a16202');
    const reply = encodeFrame([FrameKind.REPLY, 0, 3], false, LIMIT);
    expect(hex(reply)).toBe('0493020003');
  });

  it('puts the CRC-32 of the body, u32 big-endian, between the prefix and the body', () => {
    const ask = encodeFrame([FrameKind.ASK, 0, { type: 'add', a: 1, b: 2 }], true, LIMIT);
    expect(hex(ask)).toBe('15' + '26218316' + '930100de0003a474797065a3616464a16101a16202');
    const body = ask.subarray(5);
    expect(ask.readUInt32BE(1)).toBe(checksumOf(body));
    const reply = encodeFrame([FrameKind.REPLY, 0, 3], true, LIMIT);
    expect(hex(reply)).toBe('04' + '143c1482' + '93020003');
  });

  it('GOODBYE, PING, PONG, CANCEL and TELL bytes', () => {
    expect(hex(encodeFrame([FrameKind.GOODBYE], false, LIMIT))).toBe('029105');
    expect(hex(encodeFrame([FrameKind.PING], false, LIMIT))).toBe('029106');
    expect(hex(encodeFrame([FrameKind.PONG], false, LIMIT))).toBe('029107');
    expect(hex(encodeFrame([FrameKind.CANCEL, 7], false, LIMIT))).toBe('03920407');
    expect(hex(encodeFrame([FrameKind.TELL, { type: 'log', line: 'hi' }], false, LIMIT))).toBe('1692' + '00' + 'de0002a474797065a36c6f67a46c696e65a26869');
  });

  it('ERROR and the streaming frames', () => {
    expect(hex(encodeFrame([FrameKind.ERROR, 0, { code: 'NO_HANDLER', message: 'no' }], false, LIMIT))).toBe(
      '21' + '930300' + 'de0002' + 'a4636f6465' + 'aa' + Buffer.from('NO_HANDLER').toString('hex') + 'a76d657373616765' + 'a26e6f',
    );
    expect(hex(encodeFrame([FrameKind.ASK, 1, { type: 'count' }, { stream: 16 }], false, LIMIT))).toBe(
      '1c' + '940101' + 'de0001a474797065a5636f756e74' + 'de0001a673747265616d10',
    );
    expect(hex(encodeFrame([FrameKind.STREAM_ITEM, 1, 'a'], false, LIMIT))).toBe('05930801a161');
    // Trace context (§6.9): an options map on the ASK, a third element on the TELL.
    const traceparent = 'de0001ab7472616365706172656e74d937' + Buffer.from('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01').toString('hex');
    const carrier = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    expect(hex(encodeFrame([FrameKind.ASK, 0, { type: 'work' }, carrier], false, LIMIT))).toBe('58' + '940100' + 'de0001a474797065a4776f726b' + traceparent);
    expect(hex(encodeFrame([FrameKind.TELL, { type: 'note' }, carrier], false, LIMIT))).toBe('57' + '9300' + 'de0001a474797065a46e6f7465' + traceparent);
    expect(hex(encodeFrame([FrameKind.CREDIT, 1, 8], false, LIMIT))).toBe('04930a0108');
    expect(hex(encodeFrame([FrameKind.STREAM_END, 1], false, LIMIT))).toBe('03920901');
  });

  it('Map, Set and undefined use the documented extensions, each carrying its value inside', () => {
    // Map: ext type 0x4d ('M') whose data is the flat array [k0, v0, k1, v1, …]; the smallest ext
    // header that fits the data (here ext 8, 7 bytes).
    expect(hex(encodeFrame(new Map<unknown, unknown>([['a', 1], [2, 'b']]), false, LIMIT))).toBe('0a' + 'c7074d' + '94a16101' + '02a162');
    // Set: ext type 0x53 ('S') whose data is the array of members.
    expect(hex(encodeFrame(new Set([1, 2]), false, LIMIT))).toBe('06' + 'c70353' + '920102');
    expect(hex(encodeFrame(new Set([1]), false, LIMIT))).toBe('04' + 'd553' + '9101'); // fixext 2
    expect(hex(encodeFrame(new Set(), false, LIMIT))).toBe('03' + 'd453' + '90'); // fixext 1
    expect(hex(encodeFrame(new Map(), false, LIMIT))).toBe('03' + 'd44d' + '90');
    // Data of 256 bytes or more takes ext 16.
    expect(hex(encodeFrame(new Set(['x'.repeat(300)]), false, LIMIT).subarray(0, 11))).toBe('fc0134' + 'c8013053' + '91da012c');
    expect(hex(encodeFrame([undefined], false, LIMIT))).toBe('04' + '91d40000');
  });

  it('integers beyond 32 bits, byte for byte as in PROTOCOL.md §10.5', () => {
    expect(hex(encodeFrame(2 ** 32, false, LIMIT))).toBe('09' + 'cf0000000100000000');
    expect(hex(encodeFrame(-(2 ** 40), false, LIMIT))).toBe('09' + 'd3ffffff0000000000');
    expect(hex(encodeFrame(2n ** 64n - 1n, false, LIMIT))).toBe('09' + 'cfffffffffffffffff');
  });

  it('chooses the shortest length prefix: 1 byte to 251, 0xFC to 65535, 0xFD beyond', () => {
    // A bin8 of n bytes is n + 2 bytes of body, bin16 n + 3, bin32 n + 5.
    const cases: Array<[number, number, string]> = [
      [249, 251, 'fb'],
      [250, 252, 'fc00fc'],
      [65_532, 65_535, 'fcffff'],
      [65_533, 65_536, 'fd00010000'],
    ];
    for (const [n, bodyLength, prefix] of cases) {
      const f = encodeFrame(new Uint8Array(n), false, LIMIT);
      expect(f.length - prefix.length / 2).toBe(bodyLength);
      expect(hex(f.subarray(0, prefix.length / 2))).toBe(prefix);
      expect(bodiesOf(f, false)[0]!.length).toBe(bodyLength);
    }
  });
});

describe('encodeFrame: MESSAGE_TOO_LARGE', () => {
  it('passes a body of exactly the limit and refuses one byte more', () => {
    const limit = 1000;
    // Uint8Array(997) packs as bin16: 3 + 997 = 1000 bytes of body.
    const atLimit = encodeFrame(new Uint8Array(997), false, limit);
    expect(bodiesOf(atLimit, false, limit)[0]!.length).toBe(limit);
    const error = expectCode(() => encodeFrame(new Uint8Array(998), false, limit), 'MESSAGE_TOO_LARGE');
    expect(error.message).toContain('1001');
    // The limit counts the body only: the prefix and the CRC do not count.
    const withChecksum = encodeFrame(new Uint8Array(997), true, limit);
    expect(withChecksum.length).toBe(3 + 4 + limit);
    expectCode(() => encodeFrame(new Uint8Array(998), true, limit), 'MESSAGE_TOO_LARGE');
  });

  it('applies to small limits and to whole envelopes, and leaves the encoder usable', () => {
    expect(hex(encodeFrame([FrameKind.GOODBYE], false, 2))).toBe('029105');
    expectCode(() => encodeFrame([FrameKind.GOODBYE], false, 1), 'MESSAGE_TOO_LARGE');
    expectCode(() => encodeFrame({ type: 'big', data: 'x'.repeat(LIMIT) }, false, LIMIT), 'MESSAGE_TOO_LARGE');
    // The next encode works as usual.
    expect(roundTrip({ type: 'small' })).toStrictEqual({ type: 'small' });
  });
});

describe('encodeFrame: ENCODE_FAILED', () => {
  it('refuses functions and symbols anywhere', () => {
    const fn = (): void => {};
    for (const value of [fn, Symbol('s'), { f: fn }, [1, fn], { s: Symbol('s') }, [Symbol('t')], new Map([['k', fn]]), new Map([[fn, 1]]), new Set([fn]), { deep: { er: [{ f: fn }] } }]) {
      expectCode(() => encodeFrame(value, false, LIMIT), 'ENCODE_FAILED');
    }
  });

  it('names the path of what cannot be sent (found on a second walk: the first builds no paths)', () => {
    const fn = (): void => {};
    expect(expectCode(() => encodeFrame({ deep: { er: [{ f: fn }] } }, false, LIMIT), 'ENCODE_FAILED').message).toContain('message.deep.er[0].f is a function');
    expect(expectCode(() => encodeFrame([1, 2, { when: new Date(Number.NaN) }], false, LIMIT), 'ENCODE_FAILED').message).toContain('message[2].when is an invalid Date');
    expect(expectCode(() => encodeFrame({ m: new Map([['k', { s: Symbol('x') }]]) }, false, LIMIT), 'ENCODE_FAILED').message).toContain('message.m<value>.s is a symbol');
    expect(expectCode(() => encodeFrame({ n: 2n ** 70n }, false, LIMIT), 'ENCODE_FAILED').message).toContain('message.n is a bigint outside');
  });

  it('refuses Error, RegExp and Promise objects (with a hint to send a plain object)', () => {
    const error = expectCode(() => encodeFrame({ e: new Error('x') }, false, LIMIT), 'ENCODE_FAILED');
    expect(error.message).toMatch(/plain object/);
    expectCode(() => encodeFrame(new TypeError('x'), false, LIMIT), 'ENCODE_FAILED');
    expectCode(() => encodeFrame([/re/g], false, LIMIT), 'ENCODE_FAILED');
    expectCode(() => encodeFrame({ p: Promise.resolve(1) }, false, LIMIT), 'ENCODE_FAILED');
  });

  it('refuses cycles through objects, arrays, Maps and Sets', () => {
    const obj: Record<string, unknown> = { a: 1 };
    obj.self = obj;
    const arr: unknown[] = [1];
    arr.push(arr);
    const map = new Map<string, unknown>();
    map.set('me', map);
    const set = new Set<unknown>();
    set.add(set);
    const indirect: Record<string, unknown> = {};
    indirect.list = [new Map([['back', indirect]])];
    for (const value of [obj, arr, map, set, indirect]) {
      const error = expectCode(() => encodeFrame(value, false, LIMIT), 'ENCODE_FAILED');
      expect(error.message).toMatch(/nested deeper|cycle/);
    }
  });

  it(`refuses nesting deeper than ${MAX_NESTING_DEPTH} levels; exactly ${MAX_NESTING_DEPTH} encodes and decodes`, () => {
    expect(MAX_NESTING_DEPTH).toBe(100);
    // Arrays: one level each.
    expect(JSON.stringify(roundTrip(nestArrays(100)))).toBe(JSON.stringify(nestArrays(100)));
    expectCode(() => encodeFrame(nestArrays(101), false, LIMIT), 'ENCODE_FAILED');
    // An empty innermost container is a level too.
    expect(JSON.stringify(roundTrip(nestArrays(99, [])))).toBe(JSON.stringify(nestArrays(99, [])));
    expectCode(() => encodeFrame(nestArrays(100, []), false, LIMIT), 'ENCODE_FAILED');
    // Objects: one level each.
    let obj: unknown = 1;
    for (let i = 0; i < 100; i++) obj = { o: obj };
    expect(JSON.stringify(roundTrip(obj))).toBe(JSON.stringify(obj));
    expectCode(() => encodeFrame({ o: obj }, false, LIMIT), 'ENCODE_FAILED');
    // Leaves (Date, bytes) inside 100 levels are fine: they are not containers on the wire.
    expect(roundTrip(nestArrays(100, new Date(1000)))).toBeTruthy();
    expect(roundTrip(nestArrays(100, Uint8Array.of(1)))).toBeTruthy();
  });

  it('counts a Map or Set as two levels (its tag and its array), as the receiver does', () => {
    let maps: unknown = 1;
    for (let i = 0; i < 50; i++) maps = new Map([['m', maps]]);
    const decoded = roundTrip(maps);
    expect(decoded).toStrictEqual(maps);
    expectCode(() => encodeFrame(new Map([['m', maps]]), false, LIMIT), 'ENCODE_FAILED');
    expectCode(() => encodeFrame([maps], false, LIMIT), 'ENCODE_FAILED');

    let sets: unknown = 1;
    for (let i = 0; i < 50; i++) sets = new Set([sets]);
    expect(roundTrip(sets)).toStrictEqual(sets);
    expectCode(() => encodeFrame({ s: sets }, false, LIMIT), 'ENCODE_FAILED');
  });

  it('never produces a frame the receiver refuses for depth (property over mixed nestings)', () => {
    // Wrap a leaf in every combination of container kinds up to the limit and past it:
    // whatever encodeFrame accepts, decodeBody must accept too.
    const wrappers: Array<(v: unknown) => unknown> = [(v) => [v], (v) => ({ k: v }), (v) => new Map([['k', v]]), (v) => new Set([v]), (v) => new Map([[v, 1]])];
    let seed = 12345;
    const next = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) % wrappers.length;
    for (let trial = 0; trial < 300; trial++) {
      let v: unknown = trial % 2 === 0 ? 1 : [];
      const count = 40 + (trial % 70);
      for (let i = 0; i < count; i++) v = wrappers[next()]!(v);
      let frame: Buffer | undefined;
      try {
        frame = encodeFrame(v, false, LIMIT);
      } catch (error) {
        expect((error as ConverseError).code).toBe('ENCODE_FAILED');
        continue;
      }
      expect(() => decodeBody(bodiesOf(frame!, false)[0]!)).not.toThrow();
    }
  });

  it('refuses an invalid Date (MessagePack has no timestamp for it)', () => {
    expectCode(() => encodeFrame({ when: new Date(Number.NaN) }, false, LIMIT), 'ENCODE_FAILED');
    expectCode(() => encodeFrame(new Date('not a date'), false, LIMIT), 'ENCODE_FAILED');
  });

  it('refuses an own "__proto__" key (the receiver would refuse the frame)', () => {
    const parsed = JSON.parse('{"type":"x","__proto__":{"polluted":true}}') as unknown;
    expectCode(() => encodeFrame(parsed, false, LIMIT), 'ENCODE_FAILED');
    expectCode(() => encodeFrame({ nested: [parsed] }, false, LIMIT), 'ENCODE_FAILED');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses bigints outside the 64-bit range', () => {
    expectCode(() => encodeFrame(2n ** 64n, false, LIMIT), 'ENCODE_FAILED');
    expectCode(() => encodeFrame({ n: -(2n ** 63n) - 1n }, false, LIMIT), 'ENCODE_FAILED');
  });
});
