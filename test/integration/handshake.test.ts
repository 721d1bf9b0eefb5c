/**
 * The handshake against peers that speak something else, say nothing, or speak another version;
 * and checksum negotiation. Raw bytes are written by hand (see test/helpers/raw.ts for the layout).
 */
import { pack } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { ConverseError, connect, type ConverseError as ConverseErrorType } from '../../src/index.js';
import { cleanup, rejectionOf, socketName, waitUntil } from '../helpers/cleanup.js';
import { handshakeBytes, parseHandshake, rawConnect, rawServer } from '../helpers/raw.js';
import { connectClient, startClients, startServer, startServerProcess } from '../helpers/scenario.js';

afterEach(cleanup);

/** HELLO, version 2: magic, 0x0002, kind 1, no flags, max 1 MiB, no extension. */
const HELLO_V2 = Buffer.from([0x89, 0x49, 0x43, 0x56, 0x00, 0x02, 0x01, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00]);

async function serverWithErrors(options: Parameters<typeof startServer>[0] = {}) {
  const started = await startServer(options);
  const errors: ConverseErrorType[] = [];
  started.server.on('connectionError', (error) => errors.push(error));
  return { ...started, errors };
}

describe('the server side of the handshake', () => {
  it('a peer speaking HTTP is closed at once with HANDSHAKE_FAILED', async () => {
    const { name, server, errors } = await serverWithErrors();
    const raw = await rawConnect(name);
    const started = performance.now();
    raw.write(Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    await raw.closed;
    expect(performance.now() - started).toBeLessThan(1000); // not the 5 s handshake timeout
    await waitUntil(() => errors.length > 0, 'the server reported it');
    expect(errors[0]).toBeInstanceOf(ConverseError);
    expect(errors[0]!.code).toBe('HANDSHAKE_FAILED');
    expect(server.connections.size).toBe(0);
    expect(Object.keys(server.actor.getSnapshot().children)).toEqual([]);
  });

  it('a silent peer is closed at handshakeTimeout with HANDSHAKE_FAILED', async () => {
    const { name, server, errors } = await serverWithErrors({ handshakeTimeout: 300 });
    const started = performance.now();
    const raw = await rawConnect(name);
    await raw.closed;
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(295); // timer granularity: the machine's timer starts after our clock read
    expect(elapsed).toBeLessThan(2000);
    await waitUntil(() => errors.length > 0, 'the server reported it');
    expect(errors[0]!.code).toBe('HANDSHAKE_FAILED');
    await waitUntil(() => Object.keys(server.actor.getSnapshot().children).length === 0, 'the child actor is gone');
  });

  it('a HELLO of version 2 gets a REJECT carrying VERSION_MISMATCH, and the server reports VERSION_MISMATCH', async () => {
    const { name, server, errors } = await serverWithErrors();
    const raw = await rawConnect(name);
    raw.write(HELLO_V2);
    const reject = await raw.until((bytes) => parseHandshake(bytes));
    expect(reject).toMatchObject({ version: 1, kind: 3 });
    expect(reject!.extension).toMatchObject({ code: 'VERSION_MISMATCH' });
    expect(typeof reject!.extension!.message).toBe('string');
    await raw.closed;
    await waitUntil(() => errors.length > 0, 'the server reported it');
    expect(errors[0]!.code).toBe('VERSION_MISMATCH');
    expect(server.connections.size).toBe(0);
  });

  it('a well-formed HELLO written by hand is welcomed (the byte layout is as documented)', async () => {
    const { name, server } = await serverWithErrors({ maxMessageSize: 65536 });
    const raw = await rawConnect(name);
    // HELLO v1: magic, 0x0001, kind 1, flags 0, max 0x00100000, ext 0.
    raw.write(Buffer.from([0x89, 0x49, 0x43, 0x56, 0x00, 0x01, 0x01, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00]));
    const welcome = await raw.until((bytes) => parseHandshake(bytes));
    expect(welcome).toMatchObject({ version: 1, kind: 2, flags: 0, maxMessageSize: 65536 });
    const connection = await server.accept();
    expect(connection.state).toBe('active');
    expect(connection.peerVersion).toBe(1);
  });
});

describe('the client side of the handshake', () => {
  /** A fake server that answers every HELLO with `answer`. */
  async function fakeServer(answer: Buffer): Promise<string> {
    const name = socketName();
    await rawServer(name, (peer) => {
      void peer.until((bytes) => parseHandshake(bytes)).then((hello) => {
        if (hello !== undefined) peer.write(answer);
      });
    });
    return name;
  }

  it('connect() to a server that REJECTs with version 2 fails with VERSION_MISMATCH', async () => {
    const extension = Buffer.from(pack({ code: 'VERSION_MISMATCH', message: 'this server speaks version 2' }));
    const name = await fakeServer(handshakeBytes({ version: 2, kind: 3, extension }));
    const error = await rejectionOf(connect(name));
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('VERSION_MISMATCH');
  });

  it('connect() to a server that REJECTs with version 2 and no reason still fails with VERSION_MISMATCH', async () => {
    const name = await fakeServer(handshakeBytes({ version: 2, kind: 3 }));
    const error = await rejectionOf(connect(name));
    expect(error.code).toBe('VERSION_MISMATCH');
  });

  it('connect() to a server that WELCOMEs with version 2 fails with VERSION_MISMATCH', async () => {
    const name = await fakeServer(handshakeBytes({ version: 2, kind: 2 }));
    const error = await rejectionOf(connect(name));
    expect(error.code).toBe('VERSION_MISMATCH');
  });

  it('connect() to something that is not this protocol fails with HANDSHAKE_FAILED', async () => {
    const name = await fakeServer(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const error = await rejectionOf(connect(name));
    expect(error.code).toBe('HANDSHAKE_FAILED');
  });

  it('connect() to a server that never answers fails with HANDSHAKE_FAILED at handshakeTimeout', async () => {
    const name = socketName();
    await rawServer(name, () => {});
    const started = performance.now();
    const error = await rejectionOf(connect(name, { handshakeTimeout: 300 }));
    const elapsed = performance.now() - started;
    expect(error.code).toBe('HANDSHAKE_FAILED');
    expect(elapsed).toBeGreaterThanOrEqual(295); // timer granularity: the machine's timer starts after our clock read
    expect(elapsed).toBeLessThan(2000);
  });
});

describe('checksums', () => {
  it('a client process with checksum: true against a server without: negotiated on, asks succeed both ways', async () => {
    const { name, server } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 1, { checksum: true });
    const connection = connectionOf(clients[0]!);
    expect(connection.actor.getSnapshot().context.handshake?.checksum).toBe(true);
    expect(await clients[0]!.request({ op: 'ask', event: { type: 'echo', value: { big: 'y'.repeat(10_000) } } })).toMatchObject({ ok: true });
    expect(await connection.ask({ type: 'add', a: 20, b: 22 })).toBe(42);
  });

  it('an in-process client with checksum: true against a server process without', async () => {
    const { name } = await startServerProcess();
    const connection = await connectClient(name, { checksum: true });
    expect(connection.actor.getSnapshot().context.handshake?.checksum).toBe(true);
    expect(await connection.ask({ type: 'echo', value: new Uint8Array(100_000).fill(9) })).toHaveLength(100_000);
  });

  it('a server with checksum: true turns it on for a client without', async () => {
    const { name } = await startServer({ checksum: true });
    const connection = await connectClient(name);
    expect(connection.actor.getSnapshot().context.handshake?.checksum).toBe(true);
    expect(await connection.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
  });

  it('without checksums on either side, none is used', async () => {
    const { name } = await startServer();
    const connection = await connectClient(name);
    expect(connection.actor.getSnapshot().context.handshake?.checksum).toBe(false);
  });
});
