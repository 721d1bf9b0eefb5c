/**
 * Declared protocols (defineProtocol): run-time validation with two real Standard Schema
 * libraries (zod 4 and valibot 1), output validation, tells that fail validation, protocol names
 * and versions in the handshake, and protocolDescription for introspection.
 */
import * as v from 'valibot';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { setup } from 'xstate';
import { answer, ConverseError, connect, defineProtocol, listen, type Connection, type Server } from '../src/index.js';
import { protocolDescription, type StandardSchemaV1 } from '../src/index.js';
import { cleanup, onCleanup, rejectionOf, sleep, socketName, waitUntil } from './helpers/cleanup.js';

afterEach(cleanup);

const ZodCalculator = defineProtocol(
  {
    add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
    order: {
      input: z.object({ customer: z.string().min(1), items: z.array(z.object({ name: z.string(), qty: z.number().int().positive() })) }),
      output: z.object({ total: z.number() }),
    },
    /** A handler that breaks its own contract (returns a string for a number). */
    broken: { input: z.object({}), output: z.number() },
    log: { input: z.object({ line: z.string() }) },
    ping: {},
  },
  { name: 'calculator', version: 2 },
);

const ValibotCalculator = defineProtocol(
  {
    add: { input: v.object({ a: v.number(), b: v.number() }), output: v.number() },
    order: {
      input: v.object({ customer: v.pipe(v.string(), v.minLength(1)), items: v.array(v.object({ name: v.string(), qty: v.pipe(v.number(), v.integer(), v.minValue(1)) })) }),
      output: v.object({ total: v.number() }),
    },
    broken: { input: v.object({}), output: v.number() },
    log: { input: v.object({ line: v.string() }) },
    ping: {},
  },
  { name: 'calculator', version: 2 },
);

async function serve<P extends typeof ZodCalculator | typeof ValibotCalculator>(protocol: P, calls: string[]): Promise<{ name: string; server: Server; client: Connection }> {
  const name = socketName();
  const server: Server = await listen(name, {
    protocol: protocol as typeof ZodCalculator,
    handlers: {
      add: ({ a, b }) => {
        calls.push('add');
        return a + b;
      },
      order: ({ items }) => {
        calls.push('order');
        return { total: items.reduce((sum, item) => sum + item.qty, 0) };
      },
      broken: () => {
        calls.push('broken');
        return 'not a number' as unknown as number;
      },
      log: ({ line }) => {
        calls.push(`log:${line}`);
      },
      ping: () => {
        calls.push('ping');
      },
    },
  });
  onCleanup(() => server.close({ timeout: 1000 }));
  const client: Connection = await connect(name, { protocol: protocol as typeof ZodCalculator });
  onCleanup(() => client.close({ timeout: 1000 }));
  return { name, server, client };
}

for (const [library, protocol] of [
  ['zod', ZodCalculator],
  ['valibot', ValibotCalculator],
] as const) {
  describe(`validation with ${library}`, () => {
    it('valid messages reach their handlers and replies pass their output schema', async () => {
      const calls: string[] = [];
      const { client } = await serve(protocol, calls);
      expect(await client.ask({ type: 'add', a: 2, b: 3 })).toBe(5);
      expect(await client.ask({ type: 'order', customer: 'ada', items: [{ name: 'tea', qty: 2 }, { name: 'cake', qty: 1 }] })).toEqual({ total: 3 });
      expect(await client.ask({ type: 'ping' })).toBeUndefined();
      expect(calls).toEqual(['add', 'order', 'ping']);
    });

    it('an invalid ask is answered INVALID_MESSAGE with the issues and their paths; the handler is never called', async () => {
      const calls: string[] = [];
      const { client } = await serve(protocol, calls);

      const flat = await rejectionOf(client.ask({ type: 'add', a: 1, b: 'two' } as never));
      expect(flat).toBeInstanceOf(ConverseError);
      expect(flat.code).toBe('INVALID_MESSAGE');
      expect(flat.issues).toEqual([{ path: ['b'], message: expect.any(String) }]);
      expect(flat.message).toContain('"add"');
      expect(flat.message).toContain('b:');

      const nested = await rejectionOf(
        client.ask({ type: 'order', customer: '', items: [{ name: 'tea', qty: 1 }, { name: 7, qty: 0 }] } as never),
      );
      expect(nested.code).toBe('INVALID_MESSAGE');
      const paths = (nested.issues as Array<{ path: Array<string | number> }>).map((issue) => issue.path);
      expect(paths).toEqual(expect.arrayContaining([['customer'], ['items', 1, 'name'], ['items', 1, 'qty']]));
      for (const issue of nested.issues) expect(typeof issue.message).toBe('string');
      // Array indices stay numbers on the wire.
      expect(paths.find((p) => p[0] === 'items')![1]).toBe(1);

      const missing = await rejectionOf(client.ask({ type: 'add', a: 1 } as never));
      expect(missing.code).toBe('INVALID_MESSAGE');
      expect(missing.issues.map((issue: { path: unknown }) => issue.path)).toEqual([['b']]);

      expect(calls).toEqual([]);
      // The connection carries on.
      expect(await client.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
      expect(calls).toEqual(['add']);
    });

    it('a message type the protocol does not declare is answered NO_HANDLER', async () => {
      const calls: string[] = [];
      const { client } = await serve(protocol, calls);
      const error = await rejectionOf(client.ask({ type: 'divide', a: 1, b: 2 } as never));
      expect(error.code).toBe('NO_HANDLER');
      expect(error.message).toContain('divide');
      expect(calls).toEqual([]);
    });

    it('a reply that fails its output schema fails on the server: the asker gets REMOTE_ERROR (remote.code INVALID_MESSAGE), the server emits handlerError', async () => {
      const calls: string[] = [];
      const { server, client } = await serve(protocol, calls);
      const reported: ConverseError[] = [];
      server.on('handlerError', (error) => reported.push(error));
      const error = await rejectionOf(client.ask({ type: 'broken' }));
      expect(error.code).toBe('REMOTE_ERROR');
      expect(error.remote).toMatchObject({ code: 'INVALID_MESSAGE' });
      expect(error.remote.message).toContain('"broken"');
      expect(calls).toEqual(['broken']);
      await waitUntil(() => reported.length === 1, 'handlerError');
      expect(reported[0]!.code).toBe('INVALID_MESSAGE');
      expect(reported[0]!.issues).toEqual([{ path: [], message: expect.any(String) }]);
      // The bad value never left the server: the connection carries on.
      expect(await client.ask({ type: 'add', a: 20, b: 22 })).toBe(42);
    });

    it('a tell that fails validation is dropped (its handler never runs) and reported as handlerError', async () => {
      const calls: string[] = [];
      const { server, client } = await serve(protocol, calls);
      const reported: ConverseError[] = [];
      server.on('handlerError', (error) => reported.push(error));
      await client.tell({ type: 'log', line: 42 } as never);
      await client.tell({ type: 'log', line: 'fine' });
      await waitUntil(() => calls.length === 1 && reported.length === 1, 'the valid tell handled and the invalid one reported');
      expect(calls).toEqual(['log:fine']);
      expect(reported[0]!.code).toBe('INVALID_MESSAGE');
      expect(reported[0]!.issues).toEqual([{ path: ['line'], message: expect.any(String) }]);
      expect(reported[0]!.message).toContain('tell');
      const [connection] = [...server.connections.values()];
      expect(connection!.stats.unhandledTells).toBe(1);
    });
  });
}

describe('validation details', () => {
  it('the handler sees what the validator produced (coerced and stripped fields), with type restored', async () => {
    const Coercing = defineProtocol({
      echo: { input: z.object({ n: z.coerce.number(), tag: z.string().default('none') }), output: z.unknown() },
    });
    const name = socketName();
    const seen: unknown[] = [];
    const server = await listen(name, {
      protocol: Coercing,
      handlers: {
        echo: (event) => {
          seen.push(event);
          return event;
        },
      },
    });
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect(name, { protocol: Coercing });
    onCleanup(() => client.close({ timeout: 1000 }));
    // zod objects strip unknown keys; coerce turns '7' into 7; default fills `tag`.
    const reply = await client.ask({ type: 'echo', n: '7', extra: true } as never);
    expect(reply).toEqual({ type: 'echo', n: 7, tag: 'none' });
    expect(seen).toEqual([{ type: 'echo', n: 7, tag: 'none' }]);
  });

  it('an async validator is awaited; its issues are reported like a sync one', async () => {
    const Async = defineProtocol({
      check: {
        input: z.object({ user: z.string() }).refine(async ({ user }) => {
          await sleep(5);
          return user !== 'mallory';
        }, { message: 'unknown user', path: ['user'] }),
        output: z.boolean(),
      },
    });
    const name = socketName();
    const server = await listen(name, { protocol: Async, handlers: { check: () => true } });
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect(name, { protocol: Async });
    onCleanup(() => client.close({ timeout: 1000 }));
    expect(await client.ask({ type: 'check', user: 'alice' })).toBe(true);
    const error = await rejectionOf(client.ask({ type: 'check', user: 'mallory' }));
    expect(error.code).toBe('INVALID_MESSAGE');
    expect(error.issues).toEqual([{ path: ['user'], message: 'unknown user' }]);
  });

  it('a hand-written Standard Schema validator works too (no library needed)', async () => {
    const evenNumber: StandardSchemaV1<number> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: (value) =>
          typeof value === 'number' && value % 2 === 0 ? { value } : { issues: [{ message: 'must be an even number', path: [{ key: 'half' }] }] },
      },
    };
    const Even = defineProtocol({ half: { output: evenNumber } });
    const name = socketName();
    let next = 4;
    const server = await listen(name, { protocol: Even, handlers: { half: () => next } });
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect(name, { protocol: Even });
    onCleanup(() => client.close({ timeout: 1000 }));
    expect(await client.ask({ type: 'half' })).toBe(4);
    next = 3;
    const error = await rejectionOf(client.ask({ type: 'half' }));
    expect(error.code).toBe('REMOTE_ERROR');
    expect(error.remote.code).toBe('INVALID_MESSAGE');
    expect(error.remote.message).toContain('half: must be an even number');
  });

  it('a validator that throws (a bug in it) is answered INVALID_MESSAGE / REMOTE_ERROR, and does not take the server down', async () => {
    const throwing: StandardSchemaV1 = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: () => {
          throw new Error('validator bug');
        },
      },
    };
    const Buggy = defineProtocol({ inBad: { input: throwing }, outBad: { output: throwing } });
    const name = socketName();
    let called = 0;
    const server = await listen(name, { protocol: Buggy, handlers: { inBad: () => void called++, outBad: () => 1 } });
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect(name, { protocol: Buggy });
    onCleanup(() => client.close({ timeout: 1000 }));
    const input = await rejectionOf(client.ask({ type: 'inBad' }, { timeout: 1000 }));
    expect(input.code).toBe('INVALID_MESSAGE');
    expect(input.message).toContain('validator bug');
    const output = await rejectionOf(client.ask({ type: 'outBad' }, { timeout: 1000 }));
    expect(output.code).toBe('REMOTE_ERROR');
    expect(output.remote.message).toContain('validator bug');
    expect(called).toBe(0);
    expect(client.state).toBe('active');
  });

  it('replies made with message.reply() (no handlers) and answer() from a session are held to `output` too', async () => {
    const Strict = defineProtocol({ count: { output: z.number() }, label: { output: z.string() } });
    const name = socketName();
    const machine = setup({ types: { events: {} as { type: 'count' } | { type: 'label' } } }).createMachine({
      on: { label: { actions: ({ event }) => answer(event, 42) }, count: { actions: () => undefined } },
    });
    const server = await listen(name, { protocol: Strict, session: machine });
    onCleanup(() => server.close({ timeout: 1000 }));
    const reported: ConverseError[] = [];
    server.on('handlerError', (error) => reported.push(error));
    const client = await connect(name, { protocol: Strict });
    onCleanup(() => client.close({ timeout: 1000 }));
    const connection = await server.accept();
    const replies: Array<Promise<unknown>> = [];
    void (async () => {
      // What reply() settled with (its rejection observed at once).
      for await (const message of connection) replies.push(message.reply(message.event.type === 'count' ? 'many' : 'x').then(() => 'sent', (error: unknown) => error));
    })();
    const bad = await rejectionOf(client.ask({ type: 'count' }));
    expect(bad.code).toBe('REMOTE_ERROR');
    expect(bad.remote.code).toBe('INVALID_MESSAGE');
    // reply() itself rejects with what was wrong.
    const replyError = (await replies[0]) as ConverseError & { issues: Array<{ path: unknown[] }> };
    expect(replyError.code).toBe('INVALID_MESSAGE');
    expect(replyError.issues[0]!.path).toEqual([]);
    const fromMachine = await rejectionOf(client.ask({ type: 'label' }));
    expect(fromMachine.code).toBe('REMOTE_ERROR');
    expect(fromMachine.remote.code).toBe('INVALID_MESSAGE');
    await waitUntil(() => reported.length === 1, 'handlerError for the machine’s bad reply');
    expect(reported[0]!.code).toBe('INVALID_MESSAGE');
  });

  it('iterating without handlers: incoming messages are validated before they are queued', async () => {
    const name = socketName();
    const server = await listen(name, { protocol: ZodCalculator });
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect(name, { protocol: ZodCalculator });
    onCleanup(() => client.close({ timeout: 1000 }));
    const connection = await server.accept();
    const bad = rejectionOf(client.ask({ type: 'add', a: 'x', b: 1 } as never));
    const good = client.ask({ type: 'add', a: 1, b: 1 });
    const first = await connection[Symbol.asyncIterator]().next();
    expect(first.value!.event).toEqual({ type: 'add', a: 1, b: 1 });
    await first.value!.reply(2);
    expect(await good).toBe(2);
    expect((await bad).code).toBe('INVALID_MESSAGE');
  });

  it('defineProtocol refuses something that is not a Standard Schema validator', () => {
    expect(() => defineProtocol({ add: { input: { parse: () => 1 } as never } })).toThrow(/add\.input.*Standard Schema/);
  });
});

describe('declared streams', () => {
  it('`stream: true`: each item is checked against `output`; a bad item ends the stream with REMOTE_ERROR (remote.code INVALID_MESSAGE) and handlerError', async () => {
    const Feed = defineProtocol({
      ticks: { input: z.object({ count: z.number().int() }), output: z.object({ n: z.number() }), stream: true },
      badTicks: { output: v.number(), stream: true },
    });
    const name = socketName();
    let finallyRan = false;
    const server = await listen(name, {
      protocol: Feed,
      handlers: {
        ticks: async function* ({ count }) {
          for (let n = 0; n < count; n++) yield { n };
        },
        badTicks: async function* () {
          try {
            yield 1;
            yield 2;
            yield 'three' as unknown as number;
            yield 4;
          } finally {
            finallyRan = true;
          }
        },
      },
    });
    onCleanup(() => server.close({ timeout: 1000 }));
    const reported: ConverseError[] = [];
    server.on('handlerError', (error) => reported.push(error));
    const client = await connect(name, { protocol: Feed });
    onCleanup(() => client.close({ timeout: 1000 }));
    const ticks: Array<{ n: number }> = [];
    for await (const tick of client.stream({ type: 'ticks', count: 3 })) ticks.push(tick);
    expect(ticks).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
    expect((await rejectionOf(client.stream({ type: 'ticks', count: 'x' } as never).next())).code).toBe('INVALID_MESSAGE');

    const items: number[] = [];
    const error = await rejectionOf(
      (async () => {
        for await (const item of client.stream({ type: 'badTicks' })) items.push(item);
      })(),
    );
    expect(items).toEqual([1, 2]);
    expect(error.code).toBe('REMOTE_ERROR');
    expect(error.remote.code).toBe('INVALID_MESSAGE');
    expect(finallyRan).toBe(true);
    await waitUntil(() => reported.length === 1, 'handlerError');
    expect(reported[0]!.code).toBe('INVALID_MESSAGE');
    expect(protocolDescription(Feed).messages[0]).toMatchObject({ type: 'ticks', stream: true });
  });
});

describe('protocol names and versions in the handshake', () => {
  it('a name mismatch is refused with HANDSHAKE_FAILED naming both protocols, on both sides', async () => {
    const name = socketName();
    const Other = defineProtocol({ add: {} }, { name: 'spreadsheet', version: '1.0' });
    const server = await listen(name, { protocol: ZodCalculator, handlers: { add: ({ a, b }) => a + b } });
    onCleanup(() => server.close({ timeout: 1000 }));
    const serverSide: ConverseError[] = [];
    server.on('connectionError', (error) => serverSide.push(error));
    const error = await rejectionOf(connect(name, { protocol: Other }));
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('HANDSHAKE_FAILED');
    expect(error.message).toContain('"calculator"');
    expect(error.message).toContain('"spreadsheet"');
    await waitUntil(() => serverSide.length === 1, 'the server reported the refused handshake');
    expect(serverSide[0]!.code).toBe('HANDSHAKE_FAILED');
    expect(serverSide[0]!.message).toContain('"calculator"');
    expect(serverSide[0]!.message).toContain('"spreadsheet"');
    expect(server.connections.size).toBe(0);
  });

  it('the peer’s declared name and version are visible on both sides; versions may differ (a daemon serves old clients)', async () => {
    const name = socketName();
    const V1 = defineProtocol({ add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() } }, { name: 'calculator', version: 1 });
    const server = await listen(name, {
      protocol: ZodCalculator,
      handlers: {
        // A daemon can branch on the client's version.
        add: ({ a, b }, ctx) => (ctx.connection.peerProtocol?.version === 1 ? Math.trunc(a + b) : a + b),
      },
    });
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect(name, { protocol: V1 });
    onCleanup(() => client.close({ timeout: 1000 }));
    expect(client.peerProtocol).toEqual({ name: 'calculator', version: 2 });
    const connection = await server.accept();
    expect(connection.peerProtocol).toEqual({ name: 'calculator', version: 1 });
    expect(await client.ask({ type: 'add', a: 1.5, b: 1 })).toBe(2);
  });

  it('a side that declares no name is not refused; peerProtocol is undefined when the peer declared nothing', async () => {
    const name = socketName();
    const server = await listen(name, { protocol: ZodCalculator, handlers: { add: ({ a, b }) => a + b } });
    onCleanup(() => server.close({ timeout: 1000 }));
    const plain = await connect(name);
    onCleanup(() => plain.close({ timeout: 1000 }));
    expect(plain.peerProtocol).toEqual({ name: 'calculator', version: 2 });
    const connection = await server.accept();
    expect(connection.peerProtocol).toBeUndefined();
    expect(await plain.ask({ type: 'add', a: 1, b: 2 })).toBe(3);
    const Unnamed = defineProtocol({ add: {} }, { version: 'v9' });
    const versioned = await connect(name, { protocol: Unnamed });
    onCleanup(() => versioned.close({ timeout: 1000 }));
    expect((await server.accept()).peerProtocol).toEqual({ name: undefined, version: 'v9' });
  });
});

describe('protocolDescription', () => {
  it('lists the message names and gives JSON Schema where the validator can produce it, never throwing', () => {
    const description = protocolDescription(ZodCalculator);
    expect(description.name).toBe('calculator');
    expect(description.version).toBe(2);
    expect(description.messages.map((m) => m.type)).toEqual(['add', 'order', 'broken', 'log', 'ping']);
    const add = description.messages[0]!;
    expect(add.input).toMatchObject({ type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] });
    expect(add.output).toMatchObject({ type: 'number' });
    expect(description.messages.find((m) => m.type === 'log')!.output).toBeUndefined();
    expect(description.messages.find((m) => m.type === 'ping')).toEqual({ type: 'ping', hasInput: false, hasOutput: false });

    // valibot schemas carry no JSON Schema themselves (that needs @valibot/to-json-schema): names only.
    const fromValibot = protocolDescription(ValibotCalculator);
    expect(fromValibot.messages.map((m) => m.type)).toEqual(['add', 'order', 'broken', 'log', 'ping']);
    expect(fromValibot.messages[0]).toEqual({ type: 'add', hasInput: true, hasOutput: true });

    // A schema zod cannot express as JSON Schema (a transform) is left out rather than thrown.
    const Odd = defineProtocol({ odd: { input: z.object({ at: z.date() }), output: z.string().transform((s) => s.length) } });
    const odd = protocolDescription(Odd).messages[0]!;
    expect(odd.type).toBe('odd');
    expect(odd.hasInput).toBe(true);
  });
});
