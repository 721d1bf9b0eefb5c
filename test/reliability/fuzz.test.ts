/**
 * Property-based fuzzing (fast-check): 400 connections, each sending random bytes, random and
 * mutated frames (and now and then a mutated or missing handshake), split at random points, to a
 * live server process. After every one, a well-behaved client must still get right answers; at
 * the end the server holds nothing of the attackers and reported only peer-error codes.
 * test/stress/fuzz.test.ts runs the same property 3,000 times. Reproduce a failure with
 * FUZZ_SEED=<seed printed by fast-check>.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '../helpers/cleanup.js';
import { fuzzServer } from './fuzz-property.js';

afterEach(cleanup);

describe('fuzzing a live server', () => {
  it('random and mutated frames never take the server down or disturb a well-behaved client', async () => {
    const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
    const { errors } = await fuzzServer(400, seed);
    // The attacks did reach the decoder and the handshake, not just the socket.
    expect(Object.values(errors).reduce((a, b) => a + b, 0)).toBeGreaterThan(200);
  }, 60_000);
});
