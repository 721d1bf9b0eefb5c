/**
 * Tracing hooks on node:diagnostics_channel (as undici publishes them): a subscriber sees
 * connection open/close and ask start/end/error for real conversations — a reply, a timeout, a
 * remote error, an abort, and a connection lost with an ask pending.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, listen, type Connection } from '../src/index.js';
import { cleanup, onCleanup, rejectionOf, socketName, waitUntil } from './helpers/cleanup.js';

afterEach(cleanup);

const NAMES = {
  open: 'interprocess-converse:connection:open',
  close: 'interprocess-converse:connection:close',
  askStart: 'interprocess-converse:ask:start',
  askEnd: 'interprocess-converse:ask:end',
  askError: 'interprocess-converse:ask:error',
} as const;

type Api = {
  add(e: { a: number; b: number }): number;
  hang(): never;
  fail(e: { message: string }): never;
};

interface Recorded {
  channel: keyof typeof NAMES;
  message: any;
}

/** Subscribe to every channel for this test; only messages about `mine` connections are kept. */
function record(): { messages: Recorded[]; of(connection: Connection, channel?: keyof typeof NAMES): Recorded[]; mine: Set<unknown> } {
  const messages: Recorded[] = [];
  const mine = new Set<unknown>();
  for (const [channel, name] of Object.entries(NAMES) as Array<[keyof typeof NAMES, string]>) {
    const listener = (message: unknown): void => {
      messages.push({ channel, message });
    };
    diagnosticsChannel.subscribe(name, listener);
    onCleanup(() => diagnosticsChannel.unsubscribe(name, listener));
  }
  return {
    messages,
    mine,
    of: (connection, channel) => messages.filter((m) => m.message.connection === connection && (channel === undefined || m.channel === channel)),
  };
}

async function pair(handlers: Partial<Record<keyof Api, (...args: any[]) => unknown>> = {}) {
  const name = socketName();
  const server = await listen<Api, {}>(name, {
    handlers: {
      add: ({ a, b }: { a: number; b: number }) => a + b,
      hang: () => new Promise<never>(() => {}),
      fail: ({ message }: { message: string }) => {
        throw Object.assign(new Error(message), { code: 'E_DEMO' });
      },
      ...handlers,
    } as never,
  });
  onCleanup(() => server.close({ timeout: 500 }));
  const accepted = server.accept();
  const client = await connect<Api, {}>(name);
  onCleanup(() => client.close({ timeout: 500 }));
  const serverSide = await accepted;
  return { server, client, serverSide };
}

describe('diagnostics_channel tracing hooks', () => {
  it('nothing subscribes by default, so publishing costs a hasSubscribers check', () => {
    for (const name of Object.values(NAMES)) expect(diagnosticsChannel.hasSubscribers(name)).toBe(false);
  });

  it('publishes connection:open on both sides once the handshake is done', async () => {
    const recorded = record();
    const { client, serverSide } = await pair();
    await waitUntil(() => recorded.of(serverSide, 'open').length === 1, 'the server side published open');
    expect(recorded.of(client, 'open')).toHaveLength(1);
    expect(recorded.of(client, 'open')[0]!.message.connection.state).toBe('active');
  });

  it('publishes ask:start and ask:end for an answered ask, with matching ids', async () => {
    const recorded = record();
    const { client } = await pair();
    expect(await client.ask({ type: 'add', a: 20, b: 22 })).toBe(42);
    const start = recorded.of(client, 'askStart');
    const end = recorded.of(client, 'askEnd');
    expect(start).toHaveLength(1);
    expect(start[0]!.message.event).toEqual({ type: 'add', a: 20, b: 22 });
    expect(typeof start[0]!.message.id).toBe('number');
    expect(end).toHaveLength(1);
    expect(end[0]!.message).toMatchObject({ id: start[0]!.message.id, type: 'add' });
    expect(recorded.of(client, 'askError')).toHaveLength(0);
  });

  it('publishes ask:error with TIMEOUT when no reply comes in time', async () => {
    const recorded = record();
    const { client } = await pair();
    const error = await rejectionOf(client.ask({ type: 'hang' }, { timeout: 50 }));
    expect(error.code).toBe('TIMEOUT');
    const start = recorded.of(client, 'askStart');
    const failed = recorded.of(client, 'askError');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.message).toMatchObject({ id: start[0]!.message.id, type: 'hang' });
    expect(failed[0]!.message.error.code).toBe('TIMEOUT');
    expect(failed[0]!.message.error).toBe(error);
    expect(recorded.of(client, 'askEnd')).toHaveLength(0);
  });

  it('publishes ask:error for a remote error and for an abort', async () => {
    const recorded = record();
    const { client } = await pair();
    const remote = await rejectionOf(client.ask({ type: 'fail', message: 'boom' }));
    expect(remote.code).toBe('REMOTE_ERROR');
    const controller = new AbortController();
    const aborted = client.ask({ type: 'hang' }, { signal: controller.signal });
    controller.abort();
    expect((await rejectionOf(aborted)).code).toBe('ABORTED');
    const errors = recorded.of(client, 'askError').map((m) => [m.message.type, m.message.error.code]);
    expect(errors).toEqual([
      ['fail', 'REMOTE_ERROR'],
      ['hang', 'ABORTED'],
    ]);
    expect(recorded.of(client, 'askError')[0]!.message.error.remote).toMatchObject({ message: 'boom', code: 'E_DEMO' });
  });

  it('publishes connection:close (without error) on a graceful close, on both sides', async () => {
    const recorded = record();
    const { client, serverSide } = await pair();
    await client.close();
    await serverSide.closed;
    await waitUntil(() => recorded.of(serverSide, 'close').length === 1, 'the server side published close');
    const closes = recorded.of(client, 'close');
    expect(closes).toHaveLength(1);
    expect(closes[0]!.message.error).toBeUndefined();
    expect(recorded.of(serverSide, 'close')[0]!.message.error).toBeUndefined();
  });

  it('a lost connection fails the pending ask (ask:error CONNECTION_CLOSED) and closes with the error', async () => {
    const recorded = record();
    const { client, serverSide } = await pair();
    const pending = client.ask({ type: 'hang' }, { timeout: 5000 });
    await waitUntil(() => recorded.of(client, 'askStart').length === 1, 'the ask started');
    serverSide.destroy(); // the server cuts the client off
    const error = await rejectionOf(pending);
    expect(error.code).toBe('CONNECTION_CLOSED');
    await client.closed;
    const failed = recorded.of(client, 'askError');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.message.error.code).toBe('CONNECTION_CLOSED');
    const closes = recorded.of(client, 'close');
    expect(closes).toHaveLength(1);
    expect(closes[0]!.message.error?.code).toBe('CONNECTION_CLOSED');
    // Order: the ask started, failed, then the connection reported closed.
    const order = recorded.messages.filter((m) => m.message.connection === client).map((m) => m.channel);
    expect(order).toEqual(['open', 'askStart', 'askError', 'close']);
  });

  it('a server asking its client is traced on the server side', async () => {
    const recorded = record();
    const name = socketName();
    const server = await listen<{}, Api>(name, {});
    onCleanup(() => server.close({ timeout: 500 }));
    const accepted = server.accept();
    const client = await connect<{}, Api>(name, { handlers: { add: ({ a, b }) => a + b, hang: () => new Promise<never>(() => {}), fail: () => undefined as never } });
    onCleanup(() => client.close({ timeout: 500 }));
    const serverSide = await accepted;
    expect(await serverSide.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
    expect(recorded.of(serverSide, 'askStart')).toHaveLength(1);
    expect(recorded.of(serverSide, 'askEnd')).toHaveLength(1);
  });
});
