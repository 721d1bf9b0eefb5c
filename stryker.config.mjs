/**
 * Mutation testing (npm run test:mutation): do the tests notice when a guard of the wire layer,
 * the pending-reply table or one of the engine's bounds is removed, inverted or shifted by one?
 * The JSON report goes to reports/mutation/mutation.json; docs/TESTING.md says how to read it.
 */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: true },
  plugins: ['@stryker-mutator/vitest-runner', './stryker/ignore-error-messages.mjs'],
  ignorers: ['error-messages'],
  mutate: [
    'src/wire/codec.ts',
    'src/wire/constants.ts',
    'src/wire/framing.ts',
    'src/wire/handshake.ts',
    'src/wire/msgpack-scan.ts',
    'src/pending.ts',
    // The engine's bounds that have fast in-process tests (test/connection/): when reading pauses
    // (the write budget and the reader's queue pause it here), the write budget itself (sender),
    // the in-flight limit (maxInFlight), stream credit on the producing side, and the session gate.
    'src/connection/flow.ts',
    'src/connection/sender.ts',
    'src/connection/in-flight.ts',
    'src/connection/stream-writer.ts',
    'src/connection/session-gate.ts',
  ],
  coverageAnalysis: 'perTest',
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  // The sandbox needs only the sources and the tests (not the build, which \`npm run build\` may be
  // replacing at that moment, nor benchmarks, docs and reports).
  ignorePatterns: ['dist', 'reports', 'bench', 'docs', '.rel-dist', '.runtimes', 'native/build', 'prebuilds', 'examples'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  concurrency: 2,
  timeoutMS: 5_000,
  thresholds: { high: 95, low: 90, break: 90 },
};
