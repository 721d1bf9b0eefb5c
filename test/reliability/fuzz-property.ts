/**
 * The fuzz property shared by test/reliability/fuzz.test.ts (a bounded count, in `npm test`) and
 * test/stress/fuzz.test.ts (many more runs): random and mutated frames — and handshakes — thrown
 * at a live server process, one connection per run, while a well-behaved client keeps checking
 * that the server is up and answers correctly.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { encodeFrame } from '../../src/wire/codec.js';
import { handshakeBytes, rawConnect } from '../helpers/raw.js';
import { relConnect, relServer, statsOf, statsUntil } from './support.js';

/** Every code a server may report for a bad peer. */
export const PEER_ERROR_CODES = new Set([
  'HANDSHAKE_FAILED',
  'VERSION_MISMATCH',
  'PROTOCOL_ERROR',
  'DECODE_FAILED',
  'RECEIVED_MESSAGE_TOO_LARGE',
  'CHECKSUM_MISMATCH',
  'FRAME_TIMEOUT',
  'PEER_NOT_READING',
  'INVALID_MESSAGE',
]);

const HELLO = handshakeBytes();

const value: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.uint8Array({ maxLength: 64 }),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  fc.date({ noInvalidDate: true }),
);

const event = fc.record({
  type: fc.constantFrom('add', 'echo', 'hang', 'slow', 'seq', 'note', 'nope', '$converse.info', ''),
  a: fc.oneof(fc.integer(), fc.string()),
  b: fc.integer(),
  ms: fc.integer({ min: 0, max: 50 }),
  value,
});

const id = fc.oneof(fc.nat({ max: 10 }), fc.constant(0xffffffff), fc.integer({ min: -5, max: -1 }), fc.double());

/** An envelope as a peer could send it: right or wrong kinds, ids and payloads. */
const envelope: fc.Arbitrary<unknown[]> = fc.oneof(
  fc.tuple(fc.constant(0), event),
  fc.tuple(fc.constant(1), id, event),
  fc.tuple(fc.constant(1), id, event, fc.record({ stream: fc.integer({ min: -1, max: 20 }) })),
  fc.tuple(fc.constantFrom(2, 3, 8), id, value),
  fc.tuple(fc.constantFrom(4, 9), id),
  fc.tuple(fc.constant(10), id, fc.integer({ min: -3, max: 50 })),
  fc.tuple(fc.constantFrom(5, 6, 7)),
  fc.tuple(fc.integer({ min: 11, max: 300 }), value),
  fc.array(value, { maxLength: 4 }),
);

function encode(parts: unknown[]): Uint8Array {
  try {
    return encodeFrame(parts, false, 0xffffffff);
  } catch {
    return Uint8Array.of(0x91, 0xc0); // unencodable on our side: send something small instead
  }
}

type Mutation = { at: number; kind: 'flip' | 'set' | 'truncate' | 'insert' | 'duplicate'; byte: number; bytes: Uint8Array };
const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('flip', 'set', 'truncate', 'insert', 'duplicate'),
  byte: fc.integer({ min: 0, max: 255 }),
  bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
});

function mutate(input: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes = Buffer.from(input);
  for (const m of mutations) {
    if (bytes.length === 0) break;
    const at = m.at % bytes.length;
    switch (m.kind) {
      case 'flip':
        bytes[at] = bytes[at]! ^ (1 << (m.byte % 8));
        break;
      case 'set':
        bytes[at] = m.byte;
        break;
      case 'truncate':
        bytes = bytes.subarray(0, at);
        break;
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
        break;
      case 'duplicate':
        bytes = Buffer.concat([bytes, bytes.subarray(at)]);
        break;
    }
  }
  return bytes;
}

/** What one hostile connection sends. */
const attack = fc.record({
  handshake: fc.oneof(
    { weight: 8, arbitrary: fc.constant<'valid'>('valid') },
    { weight: 1, arbitrary: fc.constant<'none'>('none') },
    { weight: 1, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) },
  ),
  frames: fc.array(
    fc.oneof(
      { weight: 3, arbitrary: envelope.map(encode) },
      { weight: 4, arbitrary: fc.tuple(envelope, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([e, m]) => mutate(encode(e), m)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    ),
    { minLength: 1, maxLength: 6 },
  ),
  cuts: fc.array(fc.nat(), { maxLength: 6 }),
});

/** Split `bytes` at `cuts` (each taken modulo the length): the server sees these as separate reads. */
function chunks(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const point of points) {
    if (point > from) out.push(bytes.subarray(from, point));
    from = Math.max(from, point);
  }
  out.push(bytes.subarray(from));
  return out.filter((c) => c.length > 0);
}

/**
 * Run `numRuns` attacks against a rel-server process; after each, a well-behaved client must get
 * a right answer. Ends by checking the server is still up, holds nothing of the attackers, and
 * reported only peer-error codes.
 */
export async function fuzzServer(numRuns: number, seed?: number): Promise<{ errors: Record<string, number> }> {
  const { name, server } = await relServer({ frameTimeout: 1000, handshakeTimeout: 1000 });
  const good = await relConnect(name);
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(attack, fc.uint8Array({ maxLength: 256 }), async (plan, check) => {
      runs++;
      const raw = await rawConnect(name);
      const first = plan.handshake === 'valid' ? HELLO : plan.handshake === 'none' ? Buffer.alloc(0) : mutate(HELLO, plan.handshake);
      const bytes = Buffer.concat([first, ...plan.frames]);
      for (const piece of chunks(bytes, plan.cuts)) {
        if (raw.isClosed) break;
        raw.write(piece);
        await new Promise((resolve) => setImmediate(resolve));
      }
      raw.socket.end();
      const closed = await Promise.race([raw.closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000))]);
      if (!closed) raw.socket.destroy();
      expect(closed, 'the server closes (or finishes) every hostile connection').toBe(true);
      // The server is up and correct for a well-behaved client.
      expect(server.child.exitCode, server.stderr()).toBeNull();
      const answer = await good.ask({ type: 'echo', value: check }, { timeout: 2000 });
      expect(Buffer.from(answer as Uint8Array).equals(Buffer.from(check))).toBe(true);
      expect(good.state).toBe('active');
    }),
    { numRuns, seed, endOnFailure: true },
  );
  expect(runs).toBe(numRuns);
  const stats = await statsUntil(server, (s) => s.cores === 1 && s.children === 1, 'only the well-behaved client is left');
  expect(stats.connections).toBe(1);
  expect(stats.hangAborted).toBe(stats.hangStarted);
  for (const code of Object.keys(stats.errors)) expect(PEER_ERROR_CODES, `unexpected connection error code ${code}`).toContain(code);
  expect((await statsOf(server)).fds).toBeGreaterThan(0);
  return { errors: stats.errors };
}
