/**
 * Remote introspection over the socket itself: `listen(name, { introspection: true })` answers
 * the reserved `$converse.*` message types, and `introspect(connection)` is the client side.
 */
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  connect,
  introspect,
  listen,
  observeServer,
  PROTOCOL_VERSION,
  type Connection,
  type IntrospectionEvent,
} from '../src/index.js';
import { watchStart } from '../src/introspection.js';
import { cleanup, onCleanup, rejectionOf, sleep, socketName, waitUntil } from './helpers/cleanup.js';

afterEach(cleanup);

type Api = {
  add(e: { a: number; b: number }): number;
  log(e: { line: string }): void;
};
type ClientApi = { hang(): never };

const handlers = { add: ({ a, b }: { a: number; b: number }) => a + b, log: () => {} };
const packageVersion = (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function client(name: string): Promise<Connection<ClientApi, Api>> {
  const connection = await connect<Api, ClientApi>(name, { handlers: { hang: () => new Promise<never>(() => {}) } });
  onCleanup(() => connection.close({ timeout: 300 }));
  return connection;
}

describe('introspection over the socket', () => {
  it('is off by default: $converse.info gets NO_HANDLER', async () => {
    const name = socketName();
    const server = await listen<Api, ClientApi>(name, { handlers });
    onCleanup(() => server.close({ timeout: 300 }));
    const connection = await client(name);
    const error = await rejectionOf(introspect(connection).info());
    expect(error.code).toBe('NO_HANDLER');
  });

  it('$converse.info reports versions, socket, pid, counts, message types and the asker', async () => {
    const name = socketName();
    const server = await listen<Api, ClientApi>(name, { handlers, introspection: true, maxConnections: 50 });
    onCleanup(() => server.close({ timeout: 300 }));
    const connection = await client(name);
    const info = await introspect(connection).info();
    expect(info).toMatchObject({
      library: 'interprocess-converse',
      version: packageVersion,
      protocolVersion: PROTOCOL_VERSION,
      introspectionVersion: 1,
      socket: name,
      pid: process.pid,
      state: 'listening',
      live: 1,
      accepted: 1,
      refused: 0,
      maxConnections: 50,
      messageTypes: ['add', 'log'],
    });
    expect(info.uptime).toBeGreaterThanOrEqual(0);
    expect(server.connections.has(info.you!)).toBe(true);
  });

  it('declared message types win over handler names; an iterating server answers introspection too', async () => {
    const name = socketName();
    const server = await listen<Api, ClientApi>(name, { introspection: { messageTypes: ['add', 'log', 'later'] } });
    onCleanup(() => server.close({ timeout: 300 }));
    const seen: string[] = [];
    void (async () => {
      for await (const connection of server) {
        void (async () => {
          for await (const message of connection) {
            seen.push(message.event.type);
            if (message.expectsReply) await message.reply(42);
          }
        })();
      }
    })();
    const connection = await client(name);
    const info = await introspect(connection).info();
    expect(info.messageTypes).toEqual(['add', 'log', 'later']);
    expect(await connection.ask({ type: 'add', a: 1, b: 1 })).toBe(42);
    // The reserved types never reached the application's loop.
    expect(seen).toEqual(['add']);
  });

  it('$converse.connections lists every connection with state, peer, stats, pending asks and age', async () => {
    const name = socketName();
    const server = await listen<Api, ClientApi>(name, { handlers, introspection: true });
    onCleanup(() => server.close({ timeout: 300 }));
    const watcher = await client(name);
    const other = await client(name);
    expect(await other.ask({ type: 'add', a: 1, b: 2 })).toBe(3);
    await waitUntil(() => server.connections.size === 2, 'both registered');
    const otherServerSide = [...server.connections.values()].find((c) => c.stats.messagesIn === 1)!;
    void otherServerSide.ask({ type: 'hang' }, { timeout: 10_000 }).catch(() => undefined);
    await sleep(20);

    const list = await introspect(watcher).connections();
    expect(list).toHaveLength(2);
    const entry = list.find((c) => c.id === otherServerSide.id)!;
    expect(entry).toMatchObject({ state: 'active', pendingAsks: 1, peerVersion: PROTOCOL_VERSION });
    expect(entry.stats).toMatchObject({ messagesIn: 1, messagesOut: 2 });
    expect(entry.stats.bytesIn).toBeGreaterThan(0);
    expect(entry.peer.pid).toBe(otherServerSide.peer.pid);
    expect(entry.peer.uid).toBe(otherServerSide.peer.uid);
    expect(entry.age).toBeGreaterThanOrEqual(0);
    expect(entry.openedAt).toBeLessThanOrEqual(Date.now());
  });

  it('$converse.watch streams state changes as $converse.event tells; unwatch stops them', async () => {
    const name = socketName();
    const server = await listen<Api, ClientApi>(name, { handlers, introspection: true });
    onCleanup(() => server.close({ timeout: 300 }));
    const watcher = await client(name);
    const events: IntrospectionEvent[] = [];
    const watch = await introspect(watcher).watch((event) => events.push(event));
    expect(watch.initial.connections.map((c) => c.id)).toEqual([watch.initial.server.you]);

    const graceful = await client(name);
    await graceful.close();
    const crashed = await client(name);
    await waitUntil(() => events.filter((e) => e.kind === 'connection' && e.to === 'active').length === 2, 'two connections became active');
    const crashedId = (events.filter((e) => e.kind === 'connection' && e.to === 'active')[1] as { id: string }).id;
    [...server.connections.values()].find((c) => c.id === crashedId)!.destroy(); // as if the peer died
    await waitUntil(() => events.filter((e) => e.kind === 'connection' && e.to === 'closed').length === 2, 'both closed');

    const transitions = events.filter((e) => e.kind === 'connection') as Array<Extract<IntrospectionEvent, { kind: 'connection' }>>;
    const gracefulId = transitions[0]!.id;
    expect(transitions.filter((e) => e.id === gracefulId).map((e) => `${e.from}→${e.to}`)).toEqual([
      'null→handshake',
      'handshake→active',
      'active→closing',
      'closing→closed',
    ]);
    const crashedClose = transitions.find((e) => e.id === crashedId && e.to === 'closed')!;
    expect(crashedClose.from).toBe('active');
    expect(crashedClose.connection.state).toBe('closed');
    expect(transitions.find((e) => e.id === gracefulId && e.to === 'closed')!.error).toBeUndefined();
    // Sequence numbers increase, and each event carries the connection as it was.
    const seqs = events.map((e) => e.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(seqs[0]).toBeGreaterThan(watch.initial.seq);
    expect(transitions[1]!.connection.peer.pid).toBe(process.pid);

    await watch.stop();
    const count = events.length;
    const late = await client(name);
    await late.close();
    await sleep(50);
    expect(events.length).toBe(count);
    // Nobody observes any more: the server dropped its inspection observer and timeline.
    expect(watchStart(server).timeline).toEqual([]);
  });

  it('$converse.event tells stay inside the library on a client that iterates', async () => {
    const name = socketName();
    const server = await listen<Api, ClientApi>(name, { handlers, introspection: true });
    onCleanup(() => server.close({ timeout: 300 }));
    const watcher = await connect<Api, {}>(name); // no handlers: messages arrive by iteration
    onCleanup(() => watcher.close({ timeout: 300 }));
    const iterated: string[] = [];
    void (async () => {
      for await (const message of watcher) iterated.push((message.event as { type: string }).type);
    })();
    const events: IntrospectionEvent[] = [];
    await introspect(watcher).watch((event) => events.push(event));
    const other = await client(name);
    await other.close();
    await waitUntil(() => events.some((e) => e.kind === 'connection' && e.to === 'closed'), 'the other connection closed');
    await server.broadcast({ type: 'hang' } as never).catch(() => undefined);
    await waitUntil(() => iterated.length === 1, 'the broadcast arrived');
    expect(iterated).toEqual(['hang']);
  });

  it('$converse.event tells stay inside the library on a reconnecting client after a reconnect', async () => {
    const name = socketName();
    let server = await listen<Api, ClientApi>(name, { handlers, introspection: true });
    onCleanup(() => server.close({ timeout: 300 }));
    const watcher = await connect<Api, {}>(name, { reconnect: { initialDelay: 20, maxDelay: 50 } });
    onCleanup(() => watcher.close({ timeout: 300 }));
    const iterated: string[] = [];
    void (async () => {
      for await (const message of watcher) iterated.push((message.event as { type: string }).type);
    })();
    await introspect(watcher).watch(() => {});
    const first = watcher.core;
    await server.close({ timeout: 300 });
    server = await listen<Api, ClientApi>(name, { handlers, introspection: true });
    await waitUntil(() => watcher.core !== first && watcher.state === 'active', 'the client reconnected', 10_000);
    const events: IntrospectionEvent[] = [];
    await introspect(watcher).watch((event) => events.push(event));
    const other = await client(name);
    await other.close();
    await waitUntil(() => events.some((e) => e.kind === 'connection' && e.to === 'closed'), 'the other connection closed');
    await server.broadcast({ type: 'hang' } as never).catch(() => undefined);
    await waitUntil(() => iterated.length === 1, 'the broadcast arrived');
    expect(iterated).toEqual(['hang']);
  });

  it('a watcher that goes away is forgotten', async () => {
    const name = socketName();
    const server = await listen<Api, ClientApi>(name, { handlers, introspection: true });
    onCleanup(() => server.close({ timeout: 300 }));
    const watcher = await client(name);
    await introspect(watcher).watch(() => {});
    watcher.destroy();
    await waitUntil(() => server.connections.size === 0, 'the watcher is gone');
    await sleep(10);
    expect(watchStart(server).timeline).toEqual([]);
  });

  it('reports refused sockets', async () => {
    const name = socketName();
    const server = await listen<Api, ClientApi>(name, { handlers, introspection: true, maxConnections: 1 });
    onCleanup(() => server.close({ timeout: 300 }));
    const watcher = await client(name);
    const events: IntrospectionEvent[] = [];
    await introspect(watcher).watch((event) => events.push(event));
    const error = await rejectionOf(connect(name, { connectTimeout: 500 }));
    expect(error.code).toBe('SERVER_FULL');
    await waitUntil(() => events.some((e) => e.kind === 'refused'), 'the refusal was reported');
    expect(events.find((e) => e.kind === 'refused')).toMatchObject({ kind: 'refused', code: 'SERVER_FULL' });
  });

  it('introspection.allow narrows who may introspect (ACCESS_DENIED), and bad options are refused before binding', async () => {
    const name = socketName();
    const server = await listen<Api, ClientApi>(name, { handlers, introspection: { allow: (peer) => peer.uid === -1 } });
    onCleanup(() => server.close({ timeout: 300 }));
    const connection = await client(name);
    for (const ask of [introspect(connection).info(), introspect(connection).connections(), introspect(connection).watch(() => {})]) {
      const error = await rejectionOf(ask);
      expect(error.code).toBe('REMOTE_ERROR');
      expect(error.remote.code).toBe('ACCESS_DENIED');
    }
    // Ordinary messages are unaffected.
    expect(await connection.ask({ type: 'add', a: 2, b: 2 })).toBe(4);

    const other = socketName();
    const invalid = await rejectionOf(listen(other, { introspection: 'yes' as never }));
    expect(invalid.code).toBe('INVALID_ARGUMENT');
    expect(fs.existsSync(other)).toBe(false);
  });

  it('observeServer reports changes in process and detaches when the last listener leaves', async () => {
    const name = socketName();
    const server = await listen<Api, ClientApi>(name, { handlers });
    onCleanup(() => server.close({ timeout: 300 }));
    const events: IntrospectionEvent[] = [];
    const stop = observeServer(server, (event) => events.push(event));
    const connection = await client(name);
    await connection.close();
    await waitUntil(() => events.some((e) => e.kind === 'connection' && e.to === 'closed'), 'closed');
    expect(watchStart(server).timeline.length).toBe(events.length);
    stop();
    expect(watchStart(server).timeline).toEqual([]);
    await server.close();
  });
});
