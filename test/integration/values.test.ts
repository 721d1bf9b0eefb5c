/**
 * Every value kind the contract lists crosses a process boundary and comes back intact: the
 * client here asks a server process to echo it (so it is encoded and decoded twice, once in each
 * process).
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateSocketName } from '../../src/index.js';
import { cleanup } from '../helpers/cleanup.js';
import { startFixture, type Fixture } from '../helpers/fixture.js';
import { connectClient } from '../helpers/scenario.js';

afterEach(cleanup);

// One echo server process for the whole file (each test connects its own client to it).
let name: string;
let server: Fixture;
beforeAll(async () => {
  name = generateSocketName();
  server = await startFixture('server', [name], { manualCleanup: true });
});
afterAll(async () => {
  await server?.kill();
  fs.rmSync(path.dirname(name), { recursive: true, force: true });
});

/** Deep structural equality that also checks the kinds (Map is a Map, bigint is a bigint, bytes are bytes). */
function expectSame(actual: unknown, expected: unknown, path = 'value'): void {
  if (expected instanceof Uint8Array) {
    expect(actual, path).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(actual as Uint8Array).equals(Buffer.from(expected)), `${path} bytes`).toBe(true);
    return;
  }
  if (expected instanceof Date) {
    expect(actual, path).toBeInstanceOf(Date);
    expect((actual as Date).getTime(), path).toBe(expected.getTime());
    return;
  }
  if (expected instanceof Map) {
    expect(actual, path).toBeInstanceOf(Map);
    const got = actual as Map<unknown, unknown>;
    expect(got.size, `${path}.size`).toBe(expected.size);
    const gotEntries = [...got.entries()];
    [...expected.entries()].forEach(([key, value], i) => {
      expectSame(gotEntries[i]![0], key, `${path}<key ${i}>`);
      expectSame(gotEntries[i]![1], value, `${path}<value ${i}>`);
    });
    return;
  }
  if (expected instanceof Set) {
    expect(actual, path).toBeInstanceOf(Set);
    const got = [...(actual as Set<unknown>)];
    const want = [...expected];
    expect(got.length, `${path}.size`).toBe(want.length);
    want.forEach((member, i) => expectSame(got[i], member, `${path}<member ${i}>`));
    return;
  }
  if (Array.isArray(expected)) {
    expect(Array.isArray(actual), `${path} is an array`).toBe(true);
    expect((actual as unknown[]).length, `${path}.length`).toBe(expected.length);
    expected.forEach((item, i) => expectSame((actual as unknown[])[i], item, `${path}[${i}]`));
    return;
  }
  if (typeof expected === 'object' && expected !== null) {
    expect(typeof actual, path).toBe('object');
    expect(actual, path).not.toBeNull();
    expect(Object.keys(actual as object).sort(), `${path} keys`).toEqual(Object.keys(expected).sort());
    for (const [key, value] of Object.entries(expected)) expectSame((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
    return;
  }
  expect(typeof actual, `${path} type`).toBe(typeof expected);
  if (typeof expected === 'number' && Number.isNaN(expected)) expect(Number.isNaN(actual), path).toBe(true);
  else expect(actual, path).toBe(expected);
}

const cases: Array<[string, unknown]> = [
  ['an object', { a: 1, b: 'two', c: { d: [3] } }],
  ['an array', [1, 'two', [3, [4]], { five: 5 }]],
  ['a string', 'hello, wörld ✓ 🦀'],
  ['a long string', 'x'.repeat(70_000)],
  ['an integer', 42],
  ['a negative integer', -123_456_789],
  ['a large safe integer', Number.MAX_SAFE_INTEGER],
  ['a float', 3.141592653589793],
  ['negative zero and special floats', [-0.5, 1e300, Infinity, -Infinity]],
  ['NaN', Number.NaN],
  ['true', true],
  ['false', false],
  ['null', null],
  ['undefined in an object', { present: undefined, other: 1 }],
  ['an integer beyond 32 bits', 2 ** 40],
  ['a negative integer beyond 32 bits', -(2 ** 40) - 3],
  ['a bigint just beyond 2^53', 2n ** 53n + 1n],
  ['a large bigint', 2n ** 62n + 1n],
  ['a negative bigint', -(2n ** 60n)],
  ['a Date', new Date(Date.UTC(2024, 1, 29, 12, 34, 56, 789))],
  ['a Date before 1970', new Date(Date.UTC(1901, 0, 1))],
  ['a Map with mixed keys', new Map<unknown, unknown>([['a', 1], [2, 'b'], [true, null]])],
  ['a Set', new Set([1, 'two', null, 3.5])],
  ['a Uint8Array', new Uint8Array([0, 1, 2, 253, 254, 255])],
  ['a Buffer', Buffer.from('binary data')],
  ['a large Uint8Array', new Uint8Array(100_000).map((_, i) => i & 0xff)],
  ['empty things', { s: '', a: [], o: {}, b: new Uint8Array(0), m: new Map(), set: new Set() }],
  [
    'a nested combination',
    {
      users: new Map<string, unknown>([
        ['ada', { born: new Date(Date.UTC(1815, 11, 10)), tags: new Set(['math', 'engines']), id: 2n ** 60n, avatar: Buffer.from([1, 2, 3]) }],
        ['bob', { born: null, tags: new Set<string>(), id: 2n ** 55n, avatar: new Uint8Array(0), missing: undefined }],
      ]),
      matrix: [[1, 2], [3, 4], []],
      nested: { deeper: { deepest: [new Map([[1, new Set([new Date(0)])]])] } },
    },
  ],
];

describe('values round-trip across processes', () => {
  it.each(cases)('%s', async (_label, value) => {
    const connection = await connectClient(name);
    const back = await connection.ask({ type: 'echo', value });
    expectSame(back, value);
  });

  it('all kinds at once, in one message, and as fields of the event itself', async () => {
    const connection = await connectClient(name);
    const all = Object.fromEntries(cases.map(([label, value]) => [label, value]));
    expectSame(await connection.ask({ type: 'echo', value: all }), all);
    expectSame(await connection.ask({ type: 'echo', value: cases.map(([, value]) => value) }), cases.map(([, value]) => value));
  });

  it('a bigint within ±2^53 arrives as a number (MessagePack has one integer type, PROTOCOL.md §5.4)', async () => {
    const connection = await connectClient(name);
    expect(await connection.ask({ type: 'echo', value: [7n, -(2n ** 53n), 2n ** 53n, 2n ** 53n + 1n] })).toStrictEqual([7, -(2 ** 53), 2 ** 53, 2n ** 53n + 1n]);
  });

  it('undefined as a field of an object keeps its key; a reply of undefined (void handler) resolves undefined', async () => {
    const connection = await connectClient(name);
    const back = (await connection.ask({ type: 'echo', value: { k: undefined } })) as Record<string, unknown>;
    expect('k' in back).toBe(true);
    expect(back.k).toBeUndefined();
    expect(await connection.ask({ type: 'ping' })).toBeUndefined();
    expect(await connection.ask({ type: 'echo', value: undefined })).toBeUndefined();
  });
});
