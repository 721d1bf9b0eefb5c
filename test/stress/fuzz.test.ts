/**
 * The fuzz property of test/reliability/fuzz.test.ts, 20,000 runs. Reproduce a failure with
 * FUZZ_SEED=<seed printed by fast-check>.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '../helpers/cleanup.js';
import { fuzzServer } from '../reliability/fuzz-property.js';

afterEach(cleanup);

describe('fuzzing a live server, at length', () => {
  it('20,000 random and mutated connections never take the server down or disturb a well-behaved client', async () => {
    const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
    const started = performance.now();
    const { errors } = await fuzzServer(20_000, seed);
    console.log(`20,000 fuzz runs in ${Math.round(performance.now() - started)} ms; connection errors ${JSON.stringify(errors)}`);
    expect(Object.values(errors).reduce((a, b) => a + b, 0)).toBeGreaterThan(10_000);
  });
});
