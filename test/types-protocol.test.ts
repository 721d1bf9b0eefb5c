/**
 * Type-level tests for declared protocols, sessions and streaming. They are checked by `tsc`
 * (`npm test` builds first; `npx tsc --noEmit -p .`), so a wrong inference is a build failure;
 * the runtime part only makes vitest count the file and checks a few values.
 */
import * as v from 'valibot';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { AnyMachineSnapshot } from 'xstate';
import {
  answer,
  connect,
  defineProtocol,
  listen,
  type ApiOf,
  type Connection,
  type DeclaredProtocol,
  type Server,
  type StreamItemOf,
  type ValidationIssue,
} from '../src/index.js';
import { protocolDescription, type ProtocolDescription } from '../src/index.js';

const Calculator = defineProtocol(
  {
    add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
    status: { output: z.object({ uptime: z.number(), name: z.string().optional() }) },
    log: { input: z.object({ line: z.string() }) },
    ping: {},
  },
  { name: 'calculator', version: 1 },
);

const Shapes = defineProtocol({
  area: { input: v.object({ w: v.number(), h: v.number() }), output: v.number() },
  label: { input: v.object({ text: v.string(), tags: v.optional(v.array(v.string())) }), output: v.string() },
});

const addInput = z.object({ a: z.number(), b: z.number() });
/** ApiOf turns a definition into the protocol type (what `defineProtocol` returns carries it). */
type AddApi = ApiOf<{ add: { input: typeof addInput; output: z.ZodNumber }; ping: {} }>;

// Compile-only: never called at run time.
async function typeChecks(): Promise<void> {
  // ── The declaration gives the API type ────────────────────────────────────────────────
  type Api = typeof Calculator extends DeclaredProtocol<infer A> ? A : never;
  expectTypeOf<Parameters<Api['add']>[0]>().toEqualTypeOf<{ a: number; b: number }>();
  expectTypeOf<ReturnType<Api['add']>>().toEqualTypeOf<number>();
  expectTypeOf<ReturnType<Api['log']>>().toEqualTypeOf<void>();
  expectTypeOf<ReturnType<Api['status']>>().toEqualTypeOf<{ uptime: number; name?: string | undefined }>();
  expectTypeOf<AddApi>().toEqualTypeOf<{ add: (event: { a: number; b: number }) => number; ping: (event: {}) => void }>();

  // ── listen(name, { protocol, handlers }): handlers typed from the declaration ──────────
  const server = await listen('x', {
    protocol: Calculator,
    handlers: {
      add: (event, ctx) => {
        expectTypeOf(event.a).toEqualTypeOf<number>();
        expectTypeOf(event.type).toEqualTypeOf<'add'>();
        expectTypeOf(ctx.session).toEqualTypeOf<AnyMachineSnapshot | undefined>();
        expectTypeOf(ctx.streaming).toEqualTypeOf<boolean>();
        expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
        return event.a + event.b;
      },
      status: async () => ({ uptime: 1 }),
      log: ({ line }) => {
        expectTypeOf(line).toEqualTypeOf<string>();
      },
      ping: () => {},
    },
  });
  expectTypeOf(server).toEqualTypeOf<Server<Api, any>>();

  await listen('x', {
    protocol: Calculator,
    handlers: {
      // @ts-expect-error the reply must match `output` (a number)
      add: ({ a, b }) => `${a + b}`,
    },
  });
  await listen('x', {
    protocol: Calculator,
    handlers: {
      // @ts-expect-error a field the declaration does not have
      add: ({ a, c }) => a + c,
    },
  });
  await listen('x', {
    protocol: Calculator,
    handlers: {
      // @ts-expect-error a message type the declaration does not have
      divide: () => 1,
    },
  });
  await listen('x', {
    protocol: Calculator,
    handlers: {
      // @ts-expect-error the reply's object must have the declared fields
      status: () => ({ up: 1 }),
    },
  });

  // ── connect(name, { protocol }): ask typed from the declaration ──────────────────────
  const client = await connect('x', { protocol: Calculator });
  expectTypeOf(client).toEqualTypeOf<Connection<any, Api>>();
  expectTypeOf(client.ask({ type: 'add', a: 1, b: 2 })).toEqualTypeOf<Promise<number>>();
  expectTypeOf(client.ask({ type: 'status' })).toEqualTypeOf<Promise<{ uptime: number; name?: string | undefined }>>();
  expectTypeOf(client.tell({ type: 'log', line: 'hi' })).toEqualTypeOf<Promise<void>>();
  // @ts-expect-error wrong field type
  void client.ask({ type: 'add', a: 1, b: 'two' });
  // @ts-expect-error missing field
  void client.ask({ type: 'add', a: 1 });
  // @ts-expect-error excess field
  void client.ask({ type: 'add', a: 1, b: 2, c: 3 });
  // @ts-expect-error a type the declaration does not have
  void client.ask({ type: 'divide', a: 1, b: 2 });
  // @ts-expect-error wrong field in a tell
  void client.tell({ type: 'log', line: 1 });

  // valibot declarations infer the same way.
  const shapes = await connect('x', { protocol: Shapes });
  expectTypeOf(shapes.ask({ type: 'area', w: 2, h: 3 })).toEqualTypeOf<Promise<number>>();
  void shapes.ask({ type: 'label', text: 'a' });
  void shapes.ask({ type: 'label', text: 'a', tags: ['x'] });
  // @ts-expect-error tags must be strings
  void shapes.ask({ type: 'label', text: 'a', tags: [1] });
  await listen('x', {
    protocol: Shapes,
    handlers: {
      area: ({ w, h }) => w * h,
      label: ({ text, tags }) => {
        expectTypeOf(tags).toEqualTypeOf<string[] | undefined>();
        return text;
      },
    },
  });

  // ── Streaming ────────────────────────────────────────────────────────────────────────
  type StreamApi = {
    numbers(e: { count: number }): AsyncIterable<number>;
    one(): string;
  };
  const streamServer = await listen<StreamApi>('x', {
    handlers: {
      numbers: async function* ({ count }) {
        for (let i = 0; i < count; i++) yield i;
      },
      one: () => 'only',
    },
  });
  void streamServer;
  await listen<StreamApi>('x', {
    handlers: {
      // @ts-expect-error the items must be numbers
      numbers: async function* () {
        yield 'x';
      },
    },
  });
  const streamClient = await connect<StreamApi>('x');
  for await (const item of streamClient.stream({ type: 'numbers', count: 3 }, { window: 4, timeout: 100 })) {
    expectTypeOf(item).toEqualTypeOf<number>();
  }
  for await (const item of streamClient.stream({ type: 'one' })) expectTypeOf(item).toEqualTypeOf<string>();
  // @ts-expect-error wrong field in a stream request
  void streamClient.stream({ type: 'numbers', count: 'three' });
  expectTypeOf<StreamItemOf<StreamApi, 'numbers'>>().toEqualTypeOf<number>();
  expectTypeOf<StreamItemOf<StreamApi, 'one'>>().toEqualTypeOf<string>();

  // A declared stream: handlers are async generators of `output`, stream() yields it.
  const Feed = defineProtocol({
    ticks: { input: z.object({ count: z.number() }), output: z.object({ n: z.number() }), stream: true },
    raw: { stream: true },
  });
  await listen('x', {
    protocol: Feed,
    handlers: {
      ticks: async function* ({ count }) {
        for (let n = 0; n < count; n++) yield { n };
      },
      raw: async function* () {
        yield 'anything';
      },
    },
  });
  await listen('x', {
    protocol: Feed,
    handlers: {
      // @ts-expect-error the items must match `output`
      ticks: async function* () {
        yield { m: 1 };
      },
    },
  });
  const feed = await connect('x', { protocol: Feed });
  for await (const tick of feed.stream({ type: 'ticks', count: 2 })) expectTypeOf(tick).toEqualTypeOf<{ n: number }>();
  for await (const item of feed.stream({ type: 'raw' })) expectTypeOf(item).toEqualTypeOf<unknown>();

  // ── Sessions ─────────────────────────────────────────────────────────────────────────
  expectTypeOf(answer).toEqualTypeOf<(event: unknown, value: unknown) => boolean>();
}

describe('types of declared protocols, sessions and streams', () => {
  it('are checked at build time (tsc)', () => {
    expectTypeOf(typeChecks).toBeFunction();
    expectTypeOf(protocolDescription(Calculator)).toEqualTypeOf<ProtocolDescription>();
    expectTypeOf<ValidationIssue>().toEqualTypeOf<{ message: string; path: Array<string | number> }>();
    expect(Calculator.name).toBe('calculator');
    expect(Calculator.version).toBe(1);
    expect(Object.keys(Calculator.definition)).toEqual(['add', 'status', 'log', 'ping']);
  });
});
