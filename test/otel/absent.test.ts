/**
 * Without `@opentelemetry/api` (an optional peer dependency) the library works as before: the
 * dynamic import's failure is the "off" branch, in a real process where the package cannot be
 * resolved, and through an importer that fails.
 */
import { afterEach, expect, it } from 'vitest';
import { connect, listen } from '../../src/index.js';
import { activeTracing, loadOpenTelemetry, openTelemetryLoaded, resetOpenTelemetry } from '../../src/otel.js';
import { cleanup, onCleanup, socketName } from '../helpers/cleanup.js';
import { startFixture } from '../helpers/fixture.js';
import { registerTestTracing } from '../helpers/otel.js';

afterEach(async () => {
  await cleanup();
  resetOpenTelemetry();
});

/** A module hook that makes every `@opentelemetry/*` import fail as a missing package does. */
const HIDE_OPENTELEMETRY = `data:text/javascript,${encodeURIComponent(
  `import { register } from 'node:module';
   register('data:text/javascript,' + encodeURIComponent(
     'export async function resolve(specifier, context, next) {' +
     '  if (specifier.startsWith("@opentelemetry/")) throw Object.assign(new Error("Cannot find package " + specifier), { code: "ERR_MODULE_NOT_FOUND" });' +
     '  return next(specifier, context);' +
     '}'));`,
)}`;

it('a process where @opentelemetry/api cannot be imported asks, streams and tells as usual', async () => {
  const fixture = await startFixture('otel-absent', [socketName()], { expectReady: false, env: { NODE_OPTIONS: `--import=${HIDE_OPENTELEMETRY}` } });
  expect(fixture.first).toEqual({ importable: false, loaded: false, add: 5, items: [0, 1, 2], told: 'hello' });
});

it('an importer that fails leaves tracing off; loading never rejects', async () => {
  resetOpenTelemetry();
  await expect(loadOpenTelemetry(() => Promise.reject(Object.assign(new Error('Cannot find package'), { code: 'ERR_MODULE_NOT_FOUND' })))).resolves.toBeUndefined();
  expect(openTelemetryLoaded()).toBe(false);
  expect(activeTracing()).toBeUndefined();
});

it('a module that is not the API it knows (a stub, another major version) leaves tracing off', async () => {
  resetOpenTelemetry();
  await loadOpenTelemetry(() => Promise.resolve({ trace: {} }));
  expect(openTelemetryLoaded()).toBe(false);
  expect(activeTracing()).toBeUndefined();
});

it('a module whose API throws when used leaves tracing off; loading never rejects', async () => {
  resetOpenTelemetry();
  const broken = {
    trace: { getTracerProvider: () => ({}) },
    context: { with: () => {} },
    ProxyTracerProvider: class {
      constructor() {
        throw new Error('broken');
      }
    },
  };
  await expect(loadOpenTelemetry(() => Promise.resolve(broken))).resolves.toBeUndefined();
  expect(openTelemetryLoaded()).toBe(false);
});

it('with the API importable but no tracer provider registered, no connection traces', async () => {
  resetOpenTelemetry();
  await loadOpenTelemetry();
  expect(openTelemetryLoaded()).toBe(true);
  expect(activeTracing()).toBeUndefined();
});

/** The API behind a proxy that counts every property read on it and on its objects (trace, context, …). */
function countingApi(real: Record<string, unknown>): { api: unknown; reads: () => number; reset: () => void } {
  let reads = 0;
  const wrap = (target: object): object =>
    new Proxy(target, {
      get(object, key, receiver) {
        reads++;
        const value = Reflect.get(object, key, receiver) as unknown;
        // Methods are called on the real object (private fields); classes still construct.
        if (typeof value === 'function') return new Proxy(value, { apply: (fn, _this, args) => Reflect.apply(fn, object, args) });
        return typeof value === 'object' && value !== null ? wrap(value) : value;
      },
    });
  return { api: wrap({ ...real }), reads: () => reads, reset: () => (reads = 0) };
}

async function converse(name: string): Promise<void> {
  const client = await connect(name);
  onCleanup(() => client.destroy());
  for (let i = 0; i < 50; i++) await client.ask({ type: 'add', a: i, b: 1 });
  await Promise.all(Array.from({ length: 50 }, (_, i) => client.ask({ type: 'add', a: i, b: 2 })));
  for (let i = 0; i < 20; i++) await client.tell({ type: 'note' });
  for await (const _item of client.stream({ type: 'count', n: 20 }));
  await client.close();
}

it('with the API importable and no provider, messages make no call into OpenTelemetry (and with one, they do)', async () => {
  resetOpenTelemetry();
  const counting = countingApi((await import('@opentelemetry/api')) as unknown as Record<string, unknown>);
  await loadOpenTelemetry(() => Promise.resolve(counting.api));
  expect(openTelemetryLoaded()).toBe(true);
  const name = socketName();
  const server = await listen(name, {
    handlers: {
      add: ({ a, b }: { a: number; b: number }) => a + b,
      note: () => {},
      count: async function* ({ n }: { n: number }) {
        for (let i = 0; i < n; i++) yield i;
      },
    } as never,
  });
  onCleanup(() => server.close({ timeout: 1000 }));

  // Making a connection looks once whether a provider is registered; the messages do not.
  const connected = connect(name);
  const probe = await connected;
  await probe.close();
  counting.reset();
  const before = counting.reads();
  const client = await connect(name);
  const perConnection = counting.reads() - before;
  expect(perConnection).toBeGreaterThan(0); // the proxy does see reads
  counting.reset();
  for (let i = 0; i < 50; i++) await client.ask({ type: 'add', a: i, b: 1 });
  await client.close();
  await converse(name);
  expect(counting.reads()).toBeLessThanOrEqual(perConnection); // only converse()'s own connect
  counting.reset();
  await converse(name);
  const withoutProvider = counting.reads();

  const tracing = registerTestTracing();
  onCleanup(() => tracing.teardown());
  counting.reset();
  await converse(name);
  expect(counting.reads()).toBeGreaterThan(withoutProvider + 100);
  expect(tracing.spans().filter((span) => span.name === 'add')).toHaveLength(2 * 100);
});
