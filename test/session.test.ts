/**
 * Protocol state machines: a `session` machine per connection gates every incoming message
 * (NOT_ACCEPTED naming the state and the event), takes it before the handler runs (which sees the
 * post-transition snapshot), can answer asks itself with `answer()`, is visible as the
 * connection's `session` child, and closes the connection gracefully when it reaches a final state.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { assign, setup, type AnyActorRef } from 'xstate';
import { answer, connect, ConverseError, listen, type Connection, type Handlers, type ListenOptions, type Server } from '../src/index.js';
import { cleanup, onCleanup, rejectionOf, sleep, socketName, waitUntil } from './helpers/cleanup.js';

afterEach(cleanup);

type Api = {
  login(e: { user: string; password: string }): boolean;
  whoami(): string | null;
  getSecret(): string;
  logout(): string;
  note(e: { text: string }): void;
  boom(): void;
  wild(): string;
};

type LoginEvent =
  | { type: 'login'; user: string; password: string }
  | { type: 'whoami' }
  | { type: 'getSecret' }
  | { type: 'logout' }
  | { type: 'note'; text: string }
  | { type: 'boom' };

/** anonymous → authenticated → loggedOut (final). */
const loginMachine = setup({
  types: {
    context: {} as { user: string | null; notes: string[]; connectionId: string },
    events: {} as LoginEvent,
    input: {} as { connectionId: string },
  },
  guards: {
    passwordOk: ({ event }) => event.type === 'login' && event.password === 'hunter2',
  },
}).createMachine({
  id: 'login',
  context: ({ input }) => ({ user: null, notes: [], connectionId: input.connectionId }),
  initial: 'anonymous',
  states: {
    anonymous: {
      on: {
        login: [
          { guard: 'passwordOk', target: 'authenticated', actions: assign({ user: ({ event }) => (event.type === 'login' ? event.user : null) }) },
          // A wrong password is taken (not refused), and the machine itself answers false.
          { actions: ({ event }) => answer(event, false) },
        ],
        whoami: { actions: ({ event }) => answer(event, null) },
      },
    },
    authenticated: {
      on: {
        // The machine answers whoami itself: no handler is called.
        whoami: { actions: ({ context, event }) => answer(event, context.user) },
        // Accepted here without a change of state: a self-transition (an empty `{}` would be a
        // "forbidden" transition, which snapshot.can() reports as not accepted).
        getSecret: { target: 'authenticated' },
        note: { actions: assign({ notes: ({ context, event }) => [...context.notes, event.type === 'note' ? event.text : ''] }) },
        boom: { target: 'broken' },
        logout: { target: 'loggedOut' },
      },
    },
    broken: {},
    loggedOut: { type: 'final' },
  },
});

interface Recorder {
  calls: string[];
  states: unknown[];
}

async function serveLogin(
  extra: Partial<Handlers<Api, any>> = {},
  options: Partial<ListenOptions<Api, any>> = {},
): Promise<{ name: string; server: Server<Api>; client: Connection<any, Api>; connection: Connection<Api>; log: Recorder }> {
  const name = socketName();
  const log: Recorder = { calls: [], states: [] };
  const server = await listen<Api>(name, {
    session: loginMachine,
    handlers: {
      login: ({ user }, ctx) => {
        log.calls.push(`login:${user}`);
        log.states.push(ctx.session?.value);
        return true;
      },
      getSecret: (_e, ctx) => {
        log.calls.push('getSecret');
        log.states.push(ctx.session?.value);
        return `the secret of ${ctx.session?.context.user}`;
      },
      whoami: () => {
        log.calls.push('whoami');
        return 'from the handler';
      },
      logout: async (_e, ctx) => {
        log.calls.push('logout');
        log.states.push(ctx.session?.value);
        await sleep(30);
        return 'bye';
      },
      note: ({ text }) => {
        log.calls.push(`note:${text}`);
      },
      boom: () => {
        log.calls.push('boom');
        throw new Error('the handler failed after the transition');
      },
      ...extra,
    },
    ...options,
  });
  onCleanup(() => server.close({ timeout: 1000 }));
  const client = await connect<Api>(name);
  onCleanup(() => client.close({ timeout: 1000 }));
  const connection = await server.accept();
  return { name, server, client, connection, log };
}

function sessionValue(connection: Connection): unknown {
  return connection.session?.getSnapshot().value;
}

describe('session machines gate incoming messages', () => {
  it('a message the session cannot take in its state is answered NOT_ACCEPTED naming the state and the event; its handler is not called', async () => {
    const { client, connection, log } = await serveLogin();
    expect(sessionValue(connection)).toBe('anonymous');
    const refused = await rejectionOf(client.ask({ type: 'getSecret' }));
    expect(refused).toBeInstanceOf(ConverseError);
    expect(refused.code).toBe('NOT_ACCEPTED');
    expect(refused.message).toContain('"anonymous"');
    expect(refused.message).toContain('"getSecret"');
    expect(log.calls).toEqual([]);
    expect(sessionValue(connection)).toBe('anonymous');

    // A guard that fails everywhere also means "not accepted": here the fallback takes it.
    expect(await client.ask({ type: 'login', user: 'ada', password: 'wrong' })).toBe(false);
    expect(log.calls).toEqual([]); // the machine answered; the handler was not called
    expect(sessionValue(connection)).toBe('anonymous');

    expect(await client.ask({ type: 'login', user: 'ada', password: 'hunter2' })).toBe(true);
    expect(await client.ask({ type: 'getSecret' })).toBe('the secret of ada');
    // Not accepted once logged in: login again.
    const again = await rejectionOf(client.ask({ type: 'login', user: 'bob', password: 'hunter2' }));
    expect(again.code).toBe('NOT_ACCEPTED');
    expect(again.message).toContain('"authenticated"');
    expect(log.calls).toEqual(['login:ada', 'getSecret']);
  });

  it('the transition runs first: the handler sees the post-transition snapshot in ctx.session', async () => {
    const { client, connection, log } = await serveLogin();
    await client.ask({ type: 'login', user: 'ada', password: 'hunter2' });
    await client.ask({ type: 'getSecret' });
    expect(log.states).toEqual(['authenticated', 'authenticated']);
    expect(connection.session?.getSnapshot().context.user).toBe('ada');
  });

  it('a throwing handler does not undo the transition (the asker gets REMOTE_ERROR)', async () => {
    const { client, connection, log } = await serveLogin();
    await client.ask({ type: 'login', user: 'ada', password: 'hunter2' });
    const error = await rejectionOf(client.ask({ type: 'boom' }));
    expect(error.code).toBe('REMOTE_ERROR');
    expect(error.remote.message).toContain('after the transition');
    expect(log.calls).toEqual(['login:ada', 'boom']);
    expect(sessionValue(connection)).toBe('broken');
    expect((await rejectionOf(client.ask({ type: 'getSecret' }))).message).toContain('"broken"');
  });

  it('answer(event, value) replies from the machine; the handler for that type is not called', async () => {
    const { client, log } = await serveLogin();
    expect(await client.ask({ type: 'whoami' })).toBeNull();
    await client.ask({ type: 'login', user: 'ada', password: 'hunter2' });
    expect(await client.ask({ type: 'whoami' })).toBe('ada');
    // stream() on an ask the machine answers gives a stream of one.
    const items: unknown[] = [];
    for await (const item of client.stream({ type: 'whoami' })) items.push(item);
    expect(items).toEqual(['ada']);
    expect(log.calls).toEqual(['login:ada']);
  });

  it('stream() of a message the session does not accept throws NOT_ACCEPTED from the loop', async () => {
    const { client } = await serveLogin();
    const error = await rejectionOf(
      (async () => {
        for await (const item of client.stream({ type: 'getSecret' })) void item;
      })(),
    );
    expect(error.code).toBe('NOT_ACCEPTED');
    expect(error.message).toContain('"anonymous"');
  });

  it('answer() returns false for something that is not an ask', () => {
    expect(answer({ type: 'note', text: 'x' }, 1)).toBe(false);
    expect(answer(undefined, 1)).toBe(false);
    expect(answer('whoami', 1)).toBe(false);
  });

  it('tells: one the session accepts reaches its handler; one it refuses is dropped and reported as handlerError', async () => {
    const { server, client, connection, log } = await serveLogin();
    const reported: ConverseError[] = [];
    server.on('handlerError', (error) => reported.push(error));
    await client.tell({ type: 'note', text: 'too early' });
    await waitUntil(() => reported.length === 1, 'the refused tell reported');
    expect(reported[0]!.code).toBe('NOT_ACCEPTED');
    expect(reported[0]!.message).toContain('"note"');
    expect(reported[0]!.message).toContain('"anonymous"');
    await client.ask({ type: 'login', user: 'ada', password: 'hunter2' });
    await client.tell({ type: 'note', text: 'hello' });
    await waitUntil(() => log.calls.includes('note:hello'), 'the accepted tell handled');
    expect(connection.session?.getSnapshot().context.notes).toEqual(['hello']);
    expect(log.calls).not.toContain('note:too early');
  });

  it('a tell the session takes needs no handler (the machine handled it)', async () => {
    const name = socketName();
    const server = await listen<Api>(name, { session: loginMachine, handlers: { login: () => true } });
    onCleanup(() => server.close({ timeout: 1000 }));
    const reported: ConverseError[] = [];
    server.on('handlerError', (error) => reported.push(error));
    const client = await connect<Api>(name);
    onCleanup(() => client.close({ timeout: 1000 }));
    const connection = await server.accept();
    await client.ask({ type: 'login', user: 'ada', password: 'hunter2' });
    await client.tell({ type: 'note', text: 'kept by the machine' });
    await waitUntil(() => connection.session?.getSnapshot().context.notes.length === 1, 'the machine took the tell');
    // An ask the machine takes but does not answer, with no handler: NO_HANDLER.
    expect((await rejectionOf(client.ask({ type: 'getSecret' }))).code).toBe('NO_HANDLER');
    expect(reported).toEqual([]);
  });

  it('event types reserved by XState (xstate.*) are never offered to the session, even one with a wildcard transition', async () => {
    const wildcard = setup({ types: { events: {} as { type: string } } }).createMachine({
      initial: 'open',
      states: { open: { on: { '*': { actions: ({ event }) => answer(event, `took ${event.type}`) } } } },
    });
    const name = socketName();
    const server = await listen(name, { session: wildcard });
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect(name);
    onCleanup(() => client.close({ timeout: 1000 }));
    const connection = await server.accept();
    expect(await client.ask({ type: 'wild' })).toBe('took wild');
    const stop = await rejectionOf(client.ask({ type: 'xstate.stop' }));
    expect(stop.code).toBe('NOT_ACCEPTED');
    expect(connection.session?.getSnapshot().status).toBe('active');
    expect(await client.ask({ type: 'wild' })).toBe('took wild');
  });
});

describe('the session is part of the connection', () => {
  it('visible as connection.session and as the connection actor’s `session` child; it gets { connectionId, peer } as input', async () => {
    const { client, connection } = await serveLogin();
    const child = (connection.actor.getSnapshot().children as Record<string, AnyActorRef>).session;
    expect(child).toBeDefined();
    expect(child).toBe(connection.session);
    expect(connection.session!.getSnapshot().context.connectionId).toBe(connection.id);
    const values: unknown[] = [];
    const subscription = connection.session!.subscribe((snapshot) => values.push(snapshot.value));
    await client.ask({ type: 'login', user: 'ada', password: 'hunter2' });
    subscription.unsubscribe();
    expect(values).toContain('authenticated');
    // The client side, given no session, has none.
    expect(client.session).toBeUndefined();
  });

  it('a final state closes the connection gracefully: replies still pending are delivered first', async () => {
    const { server, client, connection, log } = await serveLogin({
      getSecret: async () => {
        log.calls.push('getSecret');
        await sleep(80);
        return 'late secret';
      },
    });
    const errors: ConverseError[] = [];
    server.on('connectionError', (error) => errors.push(error));
    await client.ask({ type: 'login', user: 'ada', password: 'hunter2' });
    const secret = client.ask({ type: 'getSecret' });
    const bye = client.ask({ type: 'logout' });
    expect(await bye).toBe('bye');
    expect(await secret).toBe('late secret');
    await client.closed;
    await connection.closed;
    expect(client.state).toBe('closed');
    expect(connection.state).toBe('closed');
    expect(client.closeReason).toBeUndefined();
    expect(connection.closeReason).toBeUndefined();
    expect(log.states.at(-1)).toBe('loggedOut');
    expect(errors).toEqual([]);
    expect(server.connections.size).toBe(0);
  });

  it('a final state reached through answer() (no handler) also closes gracefully', async () => {
    const done = setup({ types: { events: {} as { type: 'quit' } } }).createMachine({
      initial: 'open',
      states: { open: { on: { quit: { target: 'done', actions: ({ event }) => answer(event, 'goodbye') } } }, done: { type: 'final' } },
    });
    const name = socketName();
    const server = await listen(name, { session: done });
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect(name);
    onCleanup(() => client.close({ timeout: 1000 }));
    expect(await client.ask({ type: 'quit' })).toBe('goodbye');
    await client.closed;
    expect(client.closeReason).toBeUndefined();
  });

  it('a session on the client side gates what the server asks it', async () => {
    type ClientApi = { prompt(e: { text: string }): string; done(): void };
    const clientSession = setup({ types: { events: {} as { type: 'prompt'; text: string } | { type: 'done' } } }).createMachine({
      initial: 'idle',
      states: {
        idle: { on: { prompt: { target: 'asked' } } },
        asked: { on: { done: { target: 'idle' } } },
      },
    });
    const name = socketName();
    const server = await listen<any, ClientApi>(name);
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect<any, ClientApi>(name, {
      session: clientSession,
      handlers: { prompt: ({ text }, ctx) => `${text}? (${String(ctx.session?.value)})`, done: () => {} },
    });
    onCleanup(() => client.close({ timeout: 1000 }));
    const connection = await server.accept();
    expect(client.session?.getSnapshot().value).toBe('idle');
    expect(await connection.ask({ type: 'prompt', text: 'name' })).toBe('name? (asked)');
    const refused = await rejectionOf(connection.ask({ type: 'prompt', text: 'again' }));
    expect(refused.code).toBe('NOT_ACCEPTED');
    expect(refused.message).toContain('"asked"');
    await connection.tell({ type: 'done' });
    await waitUntil(() => client.session?.getSnapshot().value === 'idle', 'the client session back in idle');
    expect(await connection.ask({ type: 'prompt', text: 'again' })).toBe('again? (asked)');
  });

  it('every connection gets its own session', async () => {
    const { name, client, connection } = await serveLogin();
    const second = await connect<Api>(name);
    onCleanup(() => second.close({ timeout: 1000 }));
    await client.ask({ type: 'login', user: 'ada', password: 'hunter2' });
    expect(sessionValue(connection)).toBe('authenticated');
    expect((await rejectionOf(second.ask({ type: 'getSecret' }))).code).toBe('NOT_ACCEPTED');
  });

  it('a session machine that throws: the asker gets REMOTE_ERROR, the server emits handlerError, the connection closes gracefully (no crash)', async () => {
    const fragile = setup({ types: { events: {} as { type: 'poke' } | { type: 'crash' } } }).createMachine({
      initial: 'ok',
      states: {
        ok: {
          on: {
            poke: { actions: ({ event }) => answer(event, 'poked') },
            crash: {
              actions: () => {
                throw new Error('bug in the machine');
              },
            },
          },
        },
      },
    });
    const name = socketName();
    let handled = 0;
    const server = await listen(name, { session: fragile, handlers: { crash: () => void handled++ } });
    onCleanup(() => server.close({ timeout: 1000 }));
    const reported: ConverseError[] = [];
    const connectionErrors: ConverseError[] = [];
    server.on('handlerError', (error) => reported.push(error));
    server.on('connectionError', (error) => connectionErrors.push(error));
    const client = await connect(name);
    onCleanup(() => client.close({ timeout: 1000 }));
    const connection = await server.accept();
    expect(await client.ask({ type: 'poke' })).toBe('poked');
    const slow = client.ask({ type: 'poke' });
    const crashed = await rejectionOf(client.ask({ type: 'crash' }, { timeout: 1000 }));
    expect(crashed.code).toBe('REMOTE_ERROR');
    expect(crashed.remote.message).toBe('bug in the machine');
    expect(await slow).toBe('poked');
    expect(handled).toBe(0);
    await connection.closed;
    await client.closed;
    expect(client.closeReason).toBeUndefined();
    expect(reported.map((error) => error.code)).toEqual(['REMOTE_ERROR']);
    expect(reported[0]!.message).toContain('session machine failed');
    expect(connectionErrors).toEqual([]);
    // The server carries on with other connections.
    const second = await connect(name);
    onCleanup(() => second.close({ timeout: 1000 }));
    expect(await second.ask({ type: 'poke' })).toBe('poked');
  });
});

describe('the examples (built by `npm run build`)', () => {
  const run = async (example: string): Promise<string> => {
    const file = fileURLToPath(new URL(`../dist/examples/${example}.js`, import.meta.url));
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
    const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 20_000 });
    return stdout;
  };

  it('examples/login.ts: getSecret is refused before login, works after it, and logout closes the connection', async () => {
    const out = await run('login');
    expect(out).toMatch(/getSecret before login → NOT_ACCEPTED: .*"anonymous".*"getSecret"/);
    expect(out).toContain('login with a malformed message → INVALID_MESSAGE');
    expect(out).toContain('getSecret → "the secret of ada: 42"');
    expect(out).toContain('logout → "goodbye, ada"');
    expect(out).toContain('connection closed, cleanly');
    expect(out).toMatch(/done\n$/);
  });

  it('examples/upload.ts: the size guards refuse bad chunks, commit and abort work, the streamed download matches', async () => {
    const out = await run('upload');
    expect(out).toMatch(/a chunk over MAX_CHUNK .* → NOT_ACCEPTED: .*"receiving".*"chunk"/);
    expect(out).toMatch(/commit before the last byte → NOT_ACCEPTED/);
    expect(out).toMatch(/commit → \{"name":"notes.txt","size":200000/);
    expect(out).toContain('identical to the upload: true');
    expect(out).toContain('connection closed, cleanly');
    expect(out).toMatch(/done\n$/);
  });
});
