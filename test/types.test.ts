/**
 * Type-level tests. They are checked by `tsc` (npm test builds first), so a wrong inference is a
 * build failure; the runtime part only makes vitest count the file.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type { BroadcastResult, Connection, ConverseError, EventOf, Handlers, IncomingMessage, ReplyOf, Server } from '../src/index.js';
import { connect, listen } from '../src/index.js';

type ServerApi = {
  add(e: { a: number; b: number }): number;
  status(): { uptime: number; clients: number };
  log(e: { line: string }): void;
  load(e: { id: string }): Promise<{ bytes: Uint8Array }>;
};
type ClientApi = {
  notify(e: { text: string }): void;
  confirm(e: { question: string }): boolean;
};

// Compile-only: never called at run time.
async function typeChecks(): Promise<void> {
  const server = await listen<ServerApi, ClientApi>('x', {
    handlers: {
      add: (e) => {
        expectTypeOf(e).toEqualTypeOf<{ type: 'add' } & { a: number; b: number }>();
        return e.a + e.b;
      },
      status: async (_e, ctx) => {
        expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
        // The server can ask its client back, typed by ClientApi.
        expectTypeOf(ctx.connection.ask({ type: 'confirm', question: 'ok?' })).toEqualTypeOf<Promise<boolean>>();
        return { uptime: 1, clients: 2 };
      },
      log: () => {},
      // @ts-expect-error a handler must return the declared reply type
      load: () => 42,
    },
  });
  expectTypeOf(server).toEqualTypeOf<Server<ServerApi, ClientApi>>();

  const client = await connect<ServerApi, ClientApi>('x', {
    handlers: {
      confirm: (e) => e.question.length > 0,
      notify: (e) => {
        expectTypeOf(e.text).toBeString();
      },
    },
  });
  expectTypeOf(client).toEqualTypeOf<Connection<ClientApi, ServerApi>>();

  // Reply types are inferred from the protocol.
  expectTypeOf(client.ask({ type: 'add', a: 1, b: 2 })).toEqualTypeOf<Promise<number>>();
  expectTypeOf(client.ask({ type: 'status' })).toEqualTypeOf<Promise<{ uptime: number; clients: number }>>();
  expectTypeOf(client.ask({ type: 'load', id: 'a' })).toEqualTypeOf<Promise<{ bytes: Uint8Array }>>();
  expectTypeOf(client.ask({ type: 'log', line: 'x' })).toEqualTypeOf<Promise<void>>();
  const sent = await client.send({ type: 'add', a: 1, b: 2 });
  expectTypeOf(sent.reply).toEqualTypeOf<Promise<number>>();
  expectTypeOf(client.tell({ type: 'log', line: 'hello' })).toEqualTypeOf<Promise<void>>();

  // Unknown message types and wrong fields are compile errors.
  // @ts-expect-error unknown message type
  void client.ask({ type: 'nope' });
  // @ts-expect-error wrong field type
  void client.ask({ type: 'add', a: 1, b: 'two' });
  // @ts-expect-error missing field
  void client.ask({ type: 'add', a: 1 });
  // @ts-expect-error excess field
  void client.ask({ type: 'add', a: 1, b: 2, c: 3 });
  // @ts-expect-error a client cannot ask what only the client serves
  void client.ask({ type: 'confirm', question: 'x' });
  // @ts-expect-error the server's broadcast carries ClientApi events
  void server.broadcast({ type: 'add', a: 1, b: 2 });
  void server.broadcast({ type: 'notify', text: 'hi' });
  // broadcast() is Promise<void> as the contract has it (code typed for that compiles, holding
  // the promise or calling through such a type); { report: true } adds { sent, skipped }.
  const broadcasted: Promise<void> = server.broadcast({ type: 'notify', text: 'hi' });
  const voidBroadcaster: { broadcast(event: { type: 'notify'; text: string }): Promise<void> } = server;
  await voidBroadcaster.broadcast({ type: 'notify', text: 'hi' });
  await broadcasted;
  expectTypeOf(server.broadcast({ type: 'notify', text: 'hi' })).toEqualTypeOf<Promise<void>>();
  expectTypeOf(await server.broadcast({ type: 'notify', text: 'hi' }, { report: true })).toEqualTypeOf<BroadcastResult>();
  // @ts-expect-error the server's broadcast carries ClientApi events, reported or not
  void server.broadcast({ type: 'add', a: 1, b: 2 }, { report: true });

  // Server-side connections ask the client's protocol.
  for await (const connection of server) {
    expectTypeOf(connection).toEqualTypeOf<Connection<ServerApi, ClientApi>>();
    expectTypeOf(connection.ask({ type: 'confirm', question: '?' })).toEqualTypeOf<Promise<boolean>>();
    expectTypeOf(connection.state).toEqualTypeOf<'handshake' | 'active' | 'closing' | 'closed' | 'reconnecting'>();
    expectTypeOf(connection.peer.uid).toEqualTypeOf<number | undefined>();
  }

  // Iteration yields the local protocol's events.
  for await (const message of client) {
    expectTypeOf(message).toEqualTypeOf<IncomingMessage<ClientApi>>();
    expectTypeOf(message.event).toEqualTypeOf<EventOf<ClientApi>>();
    if (message.event.type === 'confirm') expectTypeOf(message.event.question).toBeString();
  }

  // Untyped use stays permissive.
  const loose = await connect('x');
  expectTypeOf(loose.ask({ type: 'anything', whatever: 1 })).toEqualTypeOf<Promise<any>>();

  expectTypeOf<ReplyOf<ServerApi, 'add'>>().toEqualTypeOf<number>();
  expectTypeOf<Handlers<ServerApi, ClientApi>['add']>().toMatchTypeOf<((...args: any[]) => any) | undefined>();
  expectTypeOf<ConverseError['code']>().toMatchTypeOf<string>();
}

describe('types', () => {
  it('are checked at build time (tsc)', () => {
    expectTypeOf(typeChecks).toBeFunction();
  });
});
