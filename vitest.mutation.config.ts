import { defineConfig } from 'vitest/config';

/**
 * The tests Stryker runs against each mutant (npm run test:mutation): the fast, in-process
 * tests of the files it mutates. No other processes, no dist/ build: a mutant is
 * judged in milliseconds, and thousands of them fit in minutes.
 */
export default defineConfig({
  test: {
    include: ['test/wire/**/*.test.ts', 'test/pending*.test.ts', 'test/connection/**/*.test.ts'],
    // Runs msgpackr in child processes: slow per mutant, and it checks the format, not our guards.
    exclude: ['test/wire/stock-msgpack.test.ts'],
    testTimeout: 30_000,
    pool: 'forks',
    typecheck: { enabled: false },
  },
});
