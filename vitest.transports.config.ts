import { defineConfig } from 'vitest/config';

/**
 * The transport-neutral integration tests again over tls:// (mutual TLS, throwaway certificates)
 * and nats:// (a nats-server per file): `npm run test:transports`, run by .ci/run after `npm test`.
 * The scenario helpers pick the transport from CONVERSE_TEST_TRANSPORT (test/helpers/transport.ts).
 */
const files = [
  'test/integration/on-transport.test.ts',
  'test/integration/dialogue.test.ts',
  'test/integration/values.test.ts',
  'test/integration/iteration.test.ts',
  'test/integration/faults.test.ts',
  'test/streaming.test.ts',
  'test/reliability/shutdown.test.ts',
  'test/reliability/reconnect.test.ts',
];

const shared = {
  include: files,
  testTimeout: 30_000,
  hookTimeout: 30_000,
  pool: 'forks' as const,
  setupFiles: ['test/helpers/transport-setup.ts'],
};

export default defineConfig({
  test: {
    maxWorkers: 2,
    projects: [
      { test: { ...shared, name: 'tls', env: { CONVERSE_TEST_TRANSPORT: 'tls' } } },
      { test: { ...shared, name: 'nats', env: { CONVERSE_TEST_TRANSPORT: 'nats' } } },
    ],
  },
});
