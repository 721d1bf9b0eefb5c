import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { differs, toJs, type TypedValue } from '../../src/conformance/typed-value.js';
import { envelopeVectors, valueVectors, vectorsDirectory } from '../../src/conformance/vectors.js';
import { ConverseError } from '../../src/errors.js';
import { decodeBody, encodeFrame } from '../../src/wire/codec.js';
import { FrameDecoder } from '../../src/wire/framing.js';
import { HandshakeReader, encodeHandshake } from '../../src/wire/handshake.js';

/*
 * test-vectors/*.json against the reference implementation: every canonical vector is what the
 * encoder writes, every valid vector decodes to its meaning, every invalid one is refused with its
 * code. An implementer in another language loads the same files in its own unit tests.
 */

const bodyOf = (value: unknown): string => {
  const frame = encodeFrame(value, false, 2 ** 32 - 1);
  return frame.subarray(frame[0]! < 0xfc ? 1 : frame[0] === 0xfc ? 3 : 5).toString('hex');
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof ConverseError ? error.code : `not a ConverseError: ${String(error)}`;
  }
  return undefined;
}

const load = (file: string): { vectors: Array<Record<string, any>> } => JSON.parse(fs.readFileSync(`${vectorsDirectory()}/${file}`, 'utf8'));

describe('test-vectors/values.json (PROTOCOL.md §5)', () => {
  const vectors = valueVectors();

  it('covers every documented value type, valid and invalid', () => {
    const names = vectors.map((v) => v.name).join('\n');
    for (const kind of ['nil', 'true', 'uint 64', 'int 64', 'float 64', 'str 16', 'bin 8', 'array 16', 'map', 'undefined', 'Set', 'Map', 'timestamp 32', 'timestamp 64', 'timestamp 96']) {
      expect(names).toContain(kind);
    }
    expect(vectors.filter((v) => v.error).length).toBeGreaterThan(15);
    expect(vectors.filter((v) => v.canonical).length).toBeGreaterThan(50);
  });

  it.each(vectors.filter((v) => v.error === undefined).map((v) => [v.name, v] as const))('decodes: %s', (_name, vector) => {
    expect(differs(decodeBody(Buffer.from(vector.hex, 'hex')), vector.value!)).toBeUndefined();
  });

  it.each(vectors.filter((v) => v.canonical).map((v) => [v.name, v] as const))('encodes exactly: %s', (_name, vector) => {
    expect(bodyOf(toJs(vector.value!))).toBe(vector.hex);
  });

  it.each(vectors.filter((v) => v.error !== undefined).map((v) => [v.name, v] as const))('refuses: %s', (_name, vector) => {
    expect(codeOf(() => decodeBody(Buffer.from(vector.hex, 'hex')))).toBe(vector.error);
  });

  it('differs() notices a wrong type, value or shape (the comparison can fail)', () => {
    expect(differs(1n, { int: '1' })).toMatch(/expected/); // a small integer must be a number
    expect(differs(2 ** 53 + 2, { int: String(2n ** 53n + 2n) })).toMatch(/expected/); // beyond 2^53 a bigint
    expect(differs(new Set([1, 2]), { Set: [{ int: '2' }, { int: '1' }] })).toMatch(/member/);
    expect(differs({ a: 1 }, { map: [['a', { int: '1' }], ['b', null]] })).toMatch(/expected/);
    expect(differs(new Map([[1, 2]]), { map: [['1', { int: '2' }]] })).toMatch(/expected/);
    expect(differs(-0, { float: 0 })).toMatch(/expected/);
    expect(differs(Number.NaN, { float: 'NaN' })).toBeUndefined();
    expect(differs(null, { undefined: true })).toMatch(/expected/);
  });
});

describe('test-vectors/envelopes.json (PROTOCOL.md §6)', () => {
  const kinds: Record<string, number> = { TELL: 0, ASK: 1, REPLY: 2, ERROR: 3, CANCEL: 4, GOODBYE: 5, PING: 6, PONG: 7, STREAM_ITEM: 8, STREAM_END: 9, CREDIT: 10 };
  const vectors = envelopeVectors();

  it.each(vectors.filter((v) => v.meaning).map((v) => [v.name, v] as const))('valid: %s decodes to its meaning and is what the encoder writes', (_name, vector) => {
    const decoded = decodeBody(Buffer.from(vector.hex, 'hex')) as unknown[];
    const m = vector.meaning!;
    const expected: TypedValue = { array: [{ int: String(kinds[m.kind]) }, ...(m.id === undefined ? [] : [{ int: String(m.id) }]), ...(m.elements ?? [])] };
    expect(differs(decoded, expected)).toBeUndefined();
    expect(bodyOf(toJs(expected))).toBe(vector.hex);
  });

  it('every kind has a valid vector, and every invalid one is still acceptable MessagePack (the envelope is what is wrong)', () => {
    expect(new Set(vectors.filter((v) => v.meaning).map((v) => v.meaning!.kind))).toEqual(new Set(Object.keys(kinds)));
    for (const vector of vectors.filter((v) => v.error)) {
      expect(vector.error, vector.name).toBe('PROTOCOL_ERROR');
      expect(() => decodeBody(Buffer.from(vector.hex, 'hex')), vector.name).not.toThrow();
    }
  });
});

describe('test-vectors/handshake.json (PROTOCOL.md §3)', () => {
  const kinds: Record<string, number> = { HELLO: 1, WELCOME: 2, REJECT: 3 };
  it.each(load('handshake.json').vectors.map((v) => [v.name as string, v] as const))('%s', (_name, vector) => {
    const bytes = Buffer.from(vector.hex as string, 'hex');
    if (vector.error) {
      expect(codeOf(() => new HandshakeReader().push(bytes))).toBe(vector.error);
      return;
    }
    const read = new HandshakeReader().push(bytes);
    expect(read).toBeDefined();
    expect(read!.rest.length).toBe(0);
    const m = vector.meaning;
    expect({ kind: read!.message.kind, version: read!.message.version, checksum: read!.message.checksum, maxMessageSize: read!.message.maxMessageSize }).toEqual({ kind: kinds[m.kind], version: m.version, checksum: m.checksum, maxMessageSize: m.maxMessageSize });
    if (m.extension === null) expect(read!.message.extension).toEqual({});
    else expect(differs(read!.message.extension, m.extension)).toBeUndefined();
    if (m.version === 1 && m.kind !== 'REJECT') {
      expect(encodeHandshake(kinds[m.kind]!, { checksum: m.checksum, maxMessageSize: m.maxMessageSize, extension: m.extension === null ? undefined : (toJs(m.extension) as Record<string, unknown>) }).toString('hex')).toBe(vector.hex);
    }
  });
});

describe('test-vectors/framing.json (PROTOCOL.md §4)', () => {
  it.each(load('framing.json').vectors.map((v) => [v.name as string, v] as const))('%s', (_name, vector) => {
    const bodies: Buffer[] = [];
    const errors: ConverseError[] = [];
    const decoder = new FrameDecoder(1024 * 1024, vector.checksum as boolean, (body) => bodies.push(Buffer.from(body)), (error) => errors.push(error));
    decoder.push(Buffer.from(vector.hex as string, 'hex'));
    if (vector.error) {
      expect(errors.map((e) => e.code)).toEqual([vector.error]);
      return;
    }
    expect(errors).toEqual([]);
    expect(bodies.map((b) => b.toString('hex'))).toEqual([vector.body]);
    // The shortest-prefix vectors are exactly what the encoder writes.
    if ((vector.section as string) === '10.4' || (vector.name as string).includes('takes the')) {
      expect(encodeFrame(decodeBody(bodies[0]!), vector.checksum as boolean, 2 ** 32 - 1).toString('hex')).toBe(vector.hex);
    }
  });
});
