import { defineConfig } from 'vitest/config';

/**
 * The long reliability tests (`npm run test:stress`, also run by CI): 1,000 SIGKILLed clients,
 * 2,000-client connection bursts, the 200 × 1,000-ask soak, 20,000 fuzz runs. One file at a
 * time: each measures the machine (latency, heap, fds) and needs it to itself.
 */
export default defineConfig({
  test: {
    include: ['test/stress/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    typecheck: { enabled: false },
  },
});
