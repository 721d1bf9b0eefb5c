/**
 * The conversation over NATS: one nats-server for this file on a free loopback port. Each
 * connection is a virtual stream (src/transport/nats/stream.ts); these tests check that what the
 * engine relies on holds over it (order, flow control, liveness), that several daemons share a
 * service's clients, that a client's `reconnect` finds another daemon when one is SIGKILLed, and
 * that a hostile publisher breaks only its own stream.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect as natsConnect } from '@nats-io/transport-node';
import { connect, ConverseError, listen, type Connection, type ConnectOptions, type ListenOptions, type Server } from '../../src/index.js';
import { cleanup, onCleanup, rejectionOf, sleep, waitUntil } from '../helpers/cleanup.js';
import { startFixture } from '../helpers/fixture.js';
import { startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import type { ClientApi, ServerApi } from '../fixtures/protocol.js';

type Api = { add(e: { a: number; b: number }): number; blob(e: { n: number }): Uint8Array; count(e: { i: number }): void };
type Back = { ping(): string };

/** Short heartbeats so dead peers are noticed within a test's patience. */
const FAST = { heartbeat: { interval: 100, timeout: 1000 } };

let nats: NatsServer;
beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats?.stop();
});
afterEach(cleanup);

let services = 0;
const freshService = (): string => nats.url(`svc${process.pid}-${services++}`);

async function serve(name: string, options: ListenOptions<Api, Back> = {}): Promise<Server<Api, Back>> {
  const server = await listen<Api, Back>(name, {
    handlers: { add: ({ a, b }) => a + b, blob: ({ n }) => new Uint8Array(n).fill(7), count: () => {} },
    nats: FAST,
    ...options,
  });
  onCleanup(() => server.close({ timeout: 1000 }));
  return server;
}

async function dial(name: string, options: ConnectOptions<Back, Api> = {}): Promise<Connection<Back, Api>> {
  const connection = await connect<Api, Back>(name, { handlers: { ping: () => 'pong' }, nats: FAST, ...options });
  onCleanup(() => connection.destroy());
  return connection;
}

describe('nats://host:port/<service>', () => {
  it('serves a service: asks both ways, large messages beyond the flow-control window, hundreds in flight in order', async () => {
    const name = freshService();
    const server = await serve(name, { maxMessageSize: 8 * 1024 * 1024 });
    const client = await dial(name, { maxMessageSize: 8 * 1024 * 1024 });
    expect(server.name).toBe(name);
    expect(await client.ask({ type: 'add', a: 20, b: 22 })).toBe(42);
    const accepted = await server.accept();
    expect(await accepted.ask({ type: 'ping' })).toBe('pong');
    // NATS tells nothing verified about a publisher: no identity.
    expect(accepted.peer).toEqual({});
    // 5 MiB: twenty times the default 256 KiB window, and more than NATS's 1 MiB max_payload.
    const big = await client.ask({ type: 'blob', n: 5 * 1024 * 1024 }, { timeout: 20_000 });
    expect(big.length).toBe(5 * 1024 * 1024);
    expect(big.every((b) => b === 7)).toBe(true);
    const replies = await Promise.all(Array.from({ length: 500 }, (_, i) => client.ask({ type: 'add', a: i, b: 0 })));
    expect(replies).toEqual(Array.from({ length: 500 }, (_, i) => i));
    await client.close();
    await waitUntil(() => server.connections.size === 0, 'the server saw the graceful close');
  });

  it('with no daemon serving the service, connect fails at once with CONNECT_FAILED (no responders)', async () => {
    const started = performance.now();
    const error = await rejectionOf(connect(freshService(), { connectTimeout: 20_000 }));
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('CONNECT_FAILED');
    expect(error.message).toMatch(/no responders/);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('a NATS server that is not there fails with CONNECT_FAILED', async () => {
    const error = await rejectionOf(connect('nats://127.0.0.1:1/calc', { connectTimeout: 2000 }));
    expect(error.code).toBe('CONNECT_FAILED');
  });

  it('flow control: a client that does not read holds the server back (tells wait) instead of piling up; all arrive in order once it reads', async () => {
    const name = freshService();
    const server = await serve(name, { maxWriteBuffer: 64 * 1024 });
    const client = await connect<Api, any>(name, { nats: { ...FAST, window: 16 * 1024 } });
    onCleanup(() => client.destroy());
    const accepted = await server.accept();
    const payload = 'x'.repeat(4000);
    let done = 0;
    const tells = Array.from({ length: 400 }, (_, i) => accepted.tell({ type: 'count', i, payload } as never).then(() => done++));
    await sleep(500);
    // 400 × 4 KB = 1.6 MB; the window (16 KiB) plus the write budget (64 KiB) hold far less.
    expect(done).toBeLessThan(400);
    const seen: number[] = [];
    for await (const message of client) {
      seen.push((message.event as unknown as { i: number }).i);
      if (seen.length === 400) break;
    }
    await Promise.all(tells);
    expect(seen).toEqual(Array.from({ length: 400 }, (_, i) => i));
  });

  it('maxConnectionsPerPeer does not apply (NATS verifies no identity): maxConnections bounds the streams', async () => {
    const name = freshService();
    const server = await serve(name, { maxConnectionsPerPeer: 1, maxConnections: 2 });
    const clients = [await dial(name), await dial(name)];
    for (const client of clients) expect(await client.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
    expect(server.actor.getSnapshot().context.identitySlots.held).toBe(0);
    expect((await rejectionOf(connect(name, { nats: FAST, connectTimeout: 5000 }))).code).toBe('SERVER_FULL');
  });

  it('two daemons on one service share its clients (a queue group)', async () => {
    const name = freshService();
    const a = await serve(name);
    const b = await serve(name);
    await Promise.all(Array.from({ length: 24 }, () => dial(name)));
    await waitUntil(() => a.connections.size + b.connections.size === 24, 'all 24 connected');
    // Each OPEN goes to one member at random: both get some (all 24 on one: p = 2^-23).
    expect(a.connections.size).toBeGreaterThan(0);
    expect(b.connections.size).toBeGreaterThan(0);
  });

  it('a SIGKILLed daemon: its client notices by heartbeat and `reconnect` finds the other daemon', async () => {
    const name = freshService();
    const options = { nats: FAST };
    const first = await startFixture('server', [name, options]);
    const second = await startFixture('server', [name, options]);
    const client = await connect<ServerApi, ClientApi>(name, { nats: FAST, reconnect: { initialDelay: 50, maxDelay: 200 }, connectTimeout: 2000, replyTimeout: 3000 });
    onCleanup(() => client.destroy());
    expect(await client.ask({ type: 'add', a: 1, b: 2 })).toBe(3);
    const holder = await Promise.race([first, second].map((f) => f.waitFor((line) => line.event === 'connection', 5000).then(() => f)));
    const other = holder === first ? second : first;
    const othersConnections = other.lines.filter((line) => line.event === 'connection').length;
    await holder.kill('SIGKILL');
    // Nothing tells NATS subscribers that a publisher died: the heartbeat timeout does.
    await waitUntil(() => other.lines.filter((line) => line.event === 'connection').length > othersConnections, 'the client reconnected to the other daemon', 15_000);
    expect(await client.ask({ type: 'add', a: 40, b: 2 }, { timeout: 5000 })).toBe(42);
  });

  it('a SIGKILLed client: the server closes its connection at the heartbeat timeout', async () => {
    const name = freshService();
    const server = await serve(name);
    const client = await startFixture('client', [name, { nats: FAST }]);
    await waitUntil(() => server.connections.size === 1, 'the client connected');
    const [connection] = server.connections.values();
    await client.kill('SIGKILL');
    await connection!.closed;
    expect(server.connections.size).toBe(0);
  });

  it('losing the NATS server closes every stream on it at once (messages may be lost), with CONNECTION_CLOSED', async () => {
    const own = await startNatsServer();
    let stopped = false;
    onCleanup(() => (stopped ? undefined : own.stop()));
    const name = own.url('calc');
    const server = await serve(name);
    const client = await dial(name, { nats: { ...FAST, connectOptions: { maxReconnectAttempts: 0 } } });
    const pending = client.ask({ type: 'add', a: 1, b: 1 }, { timeout: 30_000 }).catch((error: unknown) => error);
    await pending;
    const hanging = client.ask({ type: 'blob', n: 10 }, { timeout: 30_000 }).then(
      () => 'answered',
      (error: ConverseError) => error.code,
    );
    await own.kill();
    stopped = true;
    await client.closed;
    expect(['answered', 'CONNECTION_CLOSED']).toContain(await hanging);
    await waitUntil(() => server.connections.size === 0, 'the server side closed too', 10_000);
  });
});

describe('a hostile NATS publisher breaks only its own stream', () => {
  it('garbage OPENs get a refusal; a forged message on a stream resets that stream only', async () => {
    const name = freshService();
    const service = name.split('/').pop()!;
    const server = await serve(name);
    const errors: ConverseError[] = [];
    server.on('connectionError', (error) => errors.push(error));
    const raw = await natsConnect({ servers: `127.0.0.1:${nats.port}` });
    onCleanup(() => raw.close());
    for (const junk of ['not json', '{"converse":1}', '{"converse":1,"inbox":"a.*","window":65536,"silence":1000}', '{"converse":1,"inbox":"x","window":1,"silence":1000}', 'x'.repeat(5000)]) {
      const reply = await raw.request(`converse.svc.${service}`, junk, { timeout: 5000 });
      expect(JSON.parse(new TextDecoder().decode(reply.data))).toMatchObject({ refused: 'HANDSHAKE_FAILED' });
    }
    expect(errors.filter((e) => e.code === 'HANDSHAKE_FAILED')).toHaveLength(5);

    // Two good clients; find the server's inbox of one by opening a raw stream of our own.
    const victim = await dial(name);
    const bystander = await dial(name);
    expect(await victim.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
    const inbox = `_INBOX.raw${process.pid}`;
    const sub = raw.subscribe(inbox);
    const accept = await raw.request(`converse.svc.${service}`, JSON.stringify({ converse: 1, inbox, window: 65536, silence: 60_000 }), { timeout: 5000 });
    const serverInbox = JSON.parse(new TextDecoder().decode(accept.data)).inbox as string;
    expect(serverInbox).toMatch(/^_INBOX\./);
    await waitUntil(() => server.connections.size === 2, 'two clients are live');
    // A DATA message with sequence number 7 where 0 is expected: the stream is reset, nothing is read.
    const forged = Buffer.from([1, 0, 0, 0, 7, 0xde, 0xad]);
    raw.publish(serverInbox, forged);
    await raw.flush();
    // Its REJECT/RESET comes back on our inbox; the other clients are untouched.
    let reset = false;
    for await (const msg of sub) {
      if (msg.data[0] === 4) {
        reset = true;
        break;
      }
    }
    expect(reset).toBe(true);
    expect(await victim.ask({ type: 'add', a: 2, b: 2 })).toBe(4);
    expect(await bystander.ask({ type: 'add', a: 3, b: 3 })).toBe(6);
  });

  it('a peer that sends past the credit it was granted is reset', async () => {
    const name = freshService();
    const service = name.split('/').pop()!;
    await serve(name, { nats: { ...FAST, window: 4096 } });
    const raw = await natsConnect({ servers: `127.0.0.1:${nats.port}` });
    onCleanup(() => raw.close());
    const inbox = `_INBOX.flood${process.pid}`;
    const sub = raw.subscribe(inbox);
    const accept = await raw.request(`converse.svc.${service}`, JSON.stringify({ converse: 1, inbox, window: 65536, silence: 60_000 }), { timeout: 5000 });
    const serverInbox = JSON.parse(new TextDecoder().decode(accept.data)).inbox as string;
    const chunk = Buffer.alloc(5 + 6000); // 6000 bytes against a 4096-byte window, before anything was read
    chunk[0] = 1;
    chunk.writeUInt32BE(0, 1);
    raw.publish(serverInbox, chunk);
    let reason = '';
    for await (const msg of sub) {
      if (msg.data[0] === 4) {
        reason = Buffer.from(msg.data.subarray(5)).toString();
        break;
      }
    }
    expect(reason).toMatch(/window/);
  });
});
