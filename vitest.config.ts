import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The long reliability runs have their own config (npm run test:stress).
    exclude: ['test/stress/**', 'node_modules/**', 'dist/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Real sockets and child processes: run files in separate forks, a couple at a time (2 cores).
    pool: 'forks',
    maxWorkers: 2,
    typecheck: { enabled: false },
    // Starts a nats-server per file when CONVERSE_TEST_TRANSPORT=nats (a no-op otherwise).
    setupFiles: ['test/helpers/transport-setup.ts'],
  },
});
