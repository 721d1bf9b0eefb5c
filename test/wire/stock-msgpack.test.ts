import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { decodeBody, encodeFrame } from '../../src/wire/codec.js';

/*
 * docs/PROTOCOL.md §4.3/§5: every body is exactly one MessagePack value for a stock decoder, and
 * what a stock encoder writes for the documented types is accepted. msgpackr runs in a child
 * process so that this library's extension registrations (msgpackr's table is process-wide) cannot
 * help it: it sees the bytes the way another program using msgpackr with default options would.
 */

const LIMIT = 1024 * 1024;
const bodyOf = (value: unknown): Buffer => {
  const frame = encodeFrame(value, false, LIMIT);
  return frame.subarray(frame[0]! < 0xfc ? 1 : frame[0] === 0xfc ? 3 : 5);
};

/** Runs `script` (an ES module body with `bodies`, an array of Buffers) in a fresh Node process. */
function inFreshNode(script: string, bodies: Buffer[]): unknown {
  const source = `import { Unpackr, Packr, addExtension, unpack } from 'msgpackr';
const bodies = ${JSON.stringify(bodies.map((b) => b.toString('hex')))}.map((x) => Buffer.from(x, 'hex'));
const out = await (async () => { ${script} })();
process.stdout.write(JSON.stringify(out, (_k, v) => (v === undefined ? '<undefined>' : typeof v === 'bigint' ? v.toString() + 'n' : v instanceof Set ? { set: [...v] } : v instanceof Map ? { map: [...v] } : v)));`;
  const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', source], { cwd: process.cwd(), encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(stdout);
}

const everyType = {
  type: 'everything',
  nil: null,
  yes: true,
  small: 7,
  negative: -300,
  wide: 2 ** 40,
  wideNegative: -(2 ** 40),
  huge: 2n ** 64n - 1n,
  float: 1.5,
  text: 'héllo',
  bytes: Uint8Array.of(1, 2, 3),
  list: [1, 'two'],
  when: new Date(1_700_000_000_123),
  set: new Set([1, 'a']),
  map: new Map<unknown, unknown>([[1, 'one'], ['k', new Set([2])]]),
  nothing: undefined,
};

describe('stock msgpackr (default options, another process) reads every frame as one value', () => {
  it('without hooks: every frame without a Set or Map decodes, and the Set/Map extensions fail cleanly, not misaligned', () => {
    const plain = [bodyOf([1, 0, { type: 'add', a: 1, b: 2 }]), bodyOf([2, 0, 2 ** 32]), bodyOf([8, 3, { when: new Date(0), n: undefined, big: -(2n ** 63n) }])];
    const result = inFreshNode(
      `const u = new Unpackr({ useRecords: false, int64AsType: 'auto' });
       const decoded = bodies.map((b) => u.unpackMultiple(b).length);
       let setError = '';
       try { unpack(Buffer.from('c70353920102', 'hex')); } catch (e) { setError = String(e.message); }
       return { decoded, values: bodies.map((b) => u.unpack(b)), setError };`,
      plain,
    ) as { decoded: number[]; values: unknown[]; setError: string };
    expect(result.decoded).toEqual([1, 1, 1]); // one value per body, nothing trailing
    expect(result.values[0]).toEqual([1, 0, { type: 'add', a: 1, b: 2 }]);
    expect(result.values[1]).toEqual([2, 0, 2 ** 32]);
    expect(result.values[2]).toEqual([8, 3, { when: new Date(0).toISOString(), n: '<undefined>', big: `${-(2n ** 63n)}n` }]);
    expect(result.setError).toMatch(/extension/i);
  });

  it('with the two documented hooks (addExtension for 0x53 and 0x4d), a frame of every type decodes to the same values', () => {
    const body = bodyOf([1, 5, everyType]);
    const result = inFreshNode(
      `addExtension({ type: 0x53, unpack: (data) => new Set(unpack(data)) });
       addExtension({ type: 0x4d, unpack: (data) => { const f = unpack(data); const m = new Map(); for (let i = 0; i < f.length; i += 2) m.set(f[i], f[i + 1]); return m; } });
       const u = new Unpackr({ useRecords: false, int64AsType: 'auto' });
       return { count: u.unpackMultiple(bodies[0]).length, value: u.unpack(bodies[0]) };`,
      [body],
    ) as { count: number; value: [number, number, Record<string, unknown>] };
    expect(result.count).toBe(1);
    const event = result.value[2];
    expect(event.wide).toBe(2 ** 40);
    expect(event.wideNegative).toBe(-(2 ** 40));
    expect(event.huge).toBe(`${2n ** 64n - 1n}n`);
    expect(event.set).toEqual({ set: [1, 'a'] });
    expect(event.map).toEqual({ map: [[1, 'one'], ['k', { set: [2] }]] });
    expect(event.when).toBe(new Date(1_700_000_000_123).toISOString());
    expect(event.nothing).toBe('<undefined>');
  });
});

describe('what a stock encoder writes is accepted', () => {
  it('msgpackr with default options, for every documented type except Set and Map', () => {
    const hex = inFreshNode(
      `const p = new Packr({ useRecords: false });
       return [p.pack([1, 0, { type: 't', n: 2 ** 32, neg: -(2 ** 40), big: 2n ** 63n, f: 0.5, s: 'x', b: Buffer.from('ab'), d: new Date(1_700_000_000_000), u: undefined, a: [null, true] }])].map((b) => b.toString('hex'));`,
      [],
    ) as string[];
    const decoded = decodeBody(Buffer.from(hex[0]!, 'hex')) as [number, number, Record<string, unknown>];
    expect(decoded[0]).toBe(1);
    expect(decoded[2].n).toBe(2 ** 32);
    expect(decoded[2].neg).toBe(-(2 ** 40));
    expect(decoded[2].big).toBe(2n ** 63n);
    expect((decoded[2].d as Date).getTime()).toBe(1_700_000_000_000);
    expect('u' in decoded[2]).toBe(true);
  });
});
