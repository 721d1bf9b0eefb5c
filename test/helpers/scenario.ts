/**
 * Common set-ups: a server in the test process serving ServerApi, with client fixture
 * processes connected to it; or a server fixture process with clients in the test process.
 */
import { connect, listen, type Connection, type ConnectOptions, type Handlers, type ListenOptions, type Server } from '../../src/index.js';
import type { ClientApi, ServerApi } from '../fixtures/protocol.js';
import { onCleanup, socketName, waitUntil } from './cleanup.js';
import { startFixture, type Fixture, type Line } from './fixture.js';
import { transportConnectOptions, transportKind, transportListenOptions, transportName } from './transport.js';

/** What the in-process server's handlers observed. */
export class HandlerLog {
  /** Handler signals that aborted, by message type, with the abort reason's code. */
  readonly aborted: Array<{ type: string; code: string | undefined }> = [];
  /** Handlers currently running. */
  running = 0;
  /** Types of the handlers that started (hang, slow), in order. */
  readonly started: string[] = [];
  private listeners: Array<() => void> = [];

  record(type: string, signal: AbortSignal): void {
    this.started.push(type);
    signal.addEventListener(
      'abort',
      () => {
        this.aborted.push({ type, code: (signal.reason as { code?: string } | undefined)?.code });
        for (const listener of this.listeners.slice()) listener();
      },
      { once: true },
    );
  }

  /** Resolves once a handler of `type` has seen its signal abort. */
  abortOf(type: string): Promise<{ type: string; code: string | undefined }> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        const found = this.aborted.find((a) => a.type === type);
        if (found) resolve(found);
        return found !== undefined;
      };
      if (check()) return;
      const listener = (): void => {
        if (check()) this.listeners = this.listeners.filter((l) => l !== listener);
      };
      this.listeners.push(listener);
    });
  }
}

/** ServerApi handlers for an in-process server. */
export function serverHandlers(log = new HandlerLog()): Handlers<ServerApi, ClientApi> {
  return {
    add: ({ a, b }) => a + b,
    echo: ({ value }) => value,
    slow: async ({ ms, value }, { signal }) => {
      log.record('slow', signal);
      log.running++;
      try {
        await new Promise((resolve) => setTimeout(resolve, ms));
        return value;
      } finally {
        log.running--;
      }
    },
    hang: (_event, { signal }) => {
      log.record('hang', signal);
      return new Promise<never>(() => {});
    },
    fail: ({ message, code, name }) => {
      const error = new Error(message) as Error & { code?: string };
      if (name !== undefined) error.name = name;
      if (code !== undefined) error.code = code;
      throw error;
    },
    ping: () => undefined,
    log: () => {},
    seq: () => {},
  };
}

/** An in-process server; without a name, on the test transport (see helpers/transport.ts). */
export async function startServer(
  options: ListenOptions<ServerApi, ClientApi> = {},
  name?: string,
): Promise<{ name: string; server: Server<ServerApi, ClientApi>; log: HandlerLog }> {
  const onTestTransport = name === undefined;
  name ??= (await transportName()) ?? socketName();
  const log = new HandlerLog();
  const server = await listen<ServerApi, ClientApi>(name, { handlers: serverHandlers(log), ...(onTestTransport ? transportListenOptions() : {}), ...options });
  onCleanup(() => server.close({ timeout: 500 }));
  // server.name: with tls://…:0, the port it got.
  return { name: server.name, server, log };
}

export type ClientFixture = Fixture & { first: Line };

/**
 * `count` client processes connected to `server`; `connectionOf(client)` is the server-side
 * connection of each (matched by the kernel-reported pid).
 */
export async function startClients(
  server: Server<ServerApi, ClientApi>,
  name: string,
  count: number,
  clientOptions: Record<string, unknown> = {},
): Promise<{ clients: ClientFixture[]; connectionOf(client: Fixture): Connection<ServerApi, ClientApi> }> {
  const before = server.connections.size;
  const options = { ...transportOptionsFor(name, 'connect'), ...clientOptions };
  const byPid = new Map<number, Connection<ServerApi, ClientApi>>();
  let clients: ClientFixture[];
  if (transportKind === 'unix' || !/^[a-z]+:\/\//.test(name)) {
    clients = await Promise.all(Array.from({ length: count }, () => startFixture('client', [name, options])));
    await waitUntil(() => server.connections.size >= before + count, `${count} clients are connected`);
    for (const connection of server.connections.values()) {
      if (connection.peer.pid !== undefined) byPid.set(connection.peer.pid, connection);
    }
  } else {
    // No pid over TLS or NATS: start the clients one at a time and take each new connection as its.
    clients = [];
    for (let i = 0; i < count; i++) {
      const known = new Set(server.connections.values());
      const client = await startFixture('client', [name, options]);
      await waitUntil(() => server.connections.size > known.size, `client ${i + 1} of ${count} is connected`);
      clients.push(client);
      byPid.set(client.pid, [...server.connections.values()].find((c) => !known.has(c))!);
    }
  }
  return {
    clients,
    connectionOf(client) {
      const connection = byPid.get(client.pid);
      if (connection === undefined) throw new Error(`no server-side connection for pid ${client.pid} (peer credentials unavailable?)`);
      return connection;
    },
  };
}

/** An in-process client; destroyed after the test. */
export async function connectClient(
  name: string,
  options: ConnectOptions<ClientApi, ServerApi> = {},
): Promise<Connection<ClientApi, ServerApi>> {
  const connection = await connect<ServerApi, ClientApi>(name, { ...(transportOptionsFor(name, 'connect') as ConnectOptions<ClientApi, ServerApi>), ...options });
  onCleanup(() => connection.destroy());
  return connection;
}

/** A server fixture process at a fresh name (on the test transport unless `name` is given). */
export async function startServerProcess(options: Record<string, unknown> = {}, name?: string): Promise<{ name: string; process: Fixture & { first: Line } }> {
  const onTestTransport = name === undefined;
  name ??= (await transportName(true)) ?? socketName();
  const process = await startFixture('server', [name, { ...(onTestTransport ? transportListenOptions() : {}), ...options }]);
  return { name, process };
}

/** The test transport's options, for names on it (a URL); local socket names need none. */
function transportOptionsFor(name: string, side: 'connect' | 'listen'): Record<string, unknown> {
  if (!/^[a-z]+:\/\//.test(name)) return {};
  return side === 'connect' ? transportConnectOptions() : transportListenOptions();
}
