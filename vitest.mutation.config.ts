import { defineConfig } from 'vitest/config';

/**
 * The tests Stryker runs against each mutant (npm run test:mutation): the fast, in-process
 * tests of the files it mutates. No sockets to other processes, no dist/ build: a mutant is
 * judged in milliseconds, and thousands of them fit in minutes.
 */
export default defineConfig({
  test: {
    include: ['test/wire/**/*.test.ts', 'test/pending*.test.ts'],
    testTimeout: 30_000,
    pool: 'forks',
    typecheck: { enabled: false },
  },
});
