/**
 * Message size limits at their exact boundaries, a peer that declares an oversized frame, and
 * near-empty payloads.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConverseError, type ConverseError as ConverseErrorType } from '../../src/index.js';
import { encodeFrame } from '../../src/wire/codec.js';
import { cleanup, rejectionOf, socketName, waitUntil } from '../helpers/cleanup.js';
import { parseHandshake, rawConnect, rawServer } from '../helpers/raw.js';
import { connectClient, startClients, startServer, startServerProcess } from '../helpers/scenario.js';

afterEach(cleanup);

/** The encoded body size of an ASK (frame kind 1) with `id` carrying `event`, measured with the library's own encoder. */
function askBodySize(event: unknown, id = 0): number {
  const frame = encodeFrame([1, id, event], false, 0xffffffff);
  const prefix = frame[0]! <= 0xfb ? 1 : frame[0] === 0xfc ? 3 : frame[0] === 0xfd ? 5 : 9;
  return frame.length - prefix;
}

/** The Uint8Array length that makes `{ type: 'echo', value: bytes }` an ASK body of exactly `limit` bytes. */
function payloadLengthFor(limit: number, id = 0): number {
  // Start from an estimate, then walk to the exact length (binary headers grow at 256 and 65536).
  let n = Math.max(0, limit - (askBodySize({ type: 'echo', value: new Uint8Array(0) }, id) + 2));
  while (askBodySize({ type: 'echo', value: new Uint8Array(n) }, id) < limit) n++;
  while (askBodySize({ type: 'echo', value: new Uint8Array(n) }, id) > limit) n--;
  if (askBodySize({ type: 'echo', value: new Uint8Array(n) }, id) !== limit) throw new Error(`no payload length gives exactly ${limit} bytes`);
  return n;
}

describe('maxMessageSize', () => {
  const LIMIT = 4096;

  it('a message of exactly maxMessageSize passes; one byte more fails with MESSAGE_TOO_LARGE and the connection stays usable', async () => {
    const { name } = await startServerProcess({ maxMessageSize: LIMIT });
    const connection = await connectClient(name, { maxMessageSize: LIMIT });
    const n = payloadLengthFor(LIMIT, 0);
    expect(askBodySize({ type: 'echo', value: new Uint8Array(n) }, 0)).toBe(LIMIT);
    expect(askBodySize({ type: 'echo', value: new Uint8Array(n + 1) }, 1)).toBe(LIMIT + 1);

    // The first ask on a fresh connection uses id 0.
    const exact = new Uint8Array(n).fill(7);
    const back = (await connection.ask({ type: 'echo', value: exact })) as Uint8Array;
    expect(back.length).toBe(n);
    expect(back.every((byte) => byte === 7)).toBe(true);

    const error = await rejectionOf(connection.ask({ type: 'echo', value: new Uint8Array(n + 1) }));
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('MESSAGE_TOO_LARGE');
    // A tell over the limit fails the same way.
    expect((await rejectionOf(connection.tell({ type: 'log', line: 'x'.repeat(LIMIT) }))).code).toBe('MESSAGE_TOO_LARGE');

    expect(connection.state).toBe('active');
    expect(connection.pendingAsks).toBe(0);
    expect(await connection.ask({ type: 'add', a: 1, b: 2 })).toBe(3);
    // The exact size still passes afterwards (ids 1..3 are one byte too).
    expect(((await connection.ask({ type: 'echo', value: exact })) as Uint8Array).length).toBe(n);
  });

  it('past the 1 MiB default the error names the option and the size to raise it to; raised on both sides to that size, a 1 MiB payload and its fields crosses both ways', async () => {
    const { name: defaultName } = await startServer();
    const small = await connectClient(defaultName);
    const chunk = { data: new Uint8Array(1024 * 1024), len: 1024 * 1024, note: 'a 1 MiB chunk' };
    const refused = await rejectionOf(small.ask({ type: 'echo', value: chunk }));
    expect(refused.code).toBe('MESSAGE_TOO_LARGE');
    const needed = askBodySize({ type: 'echo', value: chunk }, 1);
    expect(refused.message).toContain('over the limit of 1048576 bytes');
    expect(refused.message).toContain(`Raise the maxMessageSize option of both listen() and connect() to at least ${needed}`);
    expect(await small.ask({ type: 'add', a: 1, b: 2 })).toBe(3);

    const { name } = await startServer({ maxMessageSize: 4 * 1024 * 1024 });
    const connection = await connectClient(name, { maxMessageSize: 4 * 1024 * 1024 });
    const payload = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
    const back = (await connection.ask({ type: 'echo', value: { data: payload, len: payload.length, note: 'a 1 MiB chunk' } })) as { data: Uint8Array; len: number };
    expect(back.len).toBe(payload.length);
    expect(Buffer.compare(Buffer.from(back.data), Buffer.from(payload))).toBe(0);

    const tooBig = new Uint8Array(4 * 1024 * 1024);
    const error = await rejectionOf(connection.ask({ type: 'echo', value: tooBig }));
    expect(error.code).toBe('MESSAGE_TOO_LARGE');
    const encoded = askBodySize({ type: 'echo', value: tooBig }, 1);
    expect(error.message).toContain('over the limit of 4194304 bytes');
    expect(error.message).toContain(`Raise the maxMessageSize option of both listen() and connect() to at least ${encoded}`);
    expect(await connection.ask({ type: 'add', a: 1, b: 2 })).toBe(3);
  });

  it('the limit agreed is the smaller of the two sides’ (a client with a larger limit cannot send past the server’s)', async () => {
    const { name } = await startServerProcess({ maxMessageSize: LIMIT });
    const connection = await connectClient(name, { maxMessageSize: 1024 * 1024 });
    const n = payloadLengthFor(LIMIT, 0);
    expect(((await connection.ask({ type: 'echo', value: new Uint8Array(n) })) as Uint8Array).length).toBe(n);
    expect((await rejectionOf(connection.ask({ type: 'echo', value: new Uint8Array(n + 1) }))).code).toBe('MESSAGE_TOO_LARGE');
    expect(await connection.ask({ type: 'add', a: 2, b: 2 })).toBe(4);
  });

  it('a peer that declares a frame over the limit is cut off with RECEIVED_MESSAGE_TOO_LARGE; other clients are still served', async () => {
    const { name, server } = await startServer({ maxMessageSize: 1024 });
    const errors: ConverseErrorType[] = [];
    server.on('connectionError', (error) => errors.push(error));
    const { clients } = await startClients(server, name, 1);

    for (const header of [
      [0xfc, 0x04, 0x01], // u16 length 1025: one byte over
      [0xfd, 0xff, 0xff, 0xff, 0xff], // u32 length 4 GiB - 1
    ]) {
      const raw = await rawConnect(name);
      // HELLO by hand: magic, version 1, kind HELLO, no flags, max 1 MiB, no extension.
      raw.write(Buffer.from([0x89, 0x49, 0x43, 0x56, 0x00, 0x01, 0x01, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00]));
      const welcome = await raw.until((bytes) => parseHandshake(bytes));
      expect(welcome).toMatchObject({ version: 1, kind: 2, maxMessageSize: 1024 });
      const before = errors.length;
      raw.write(Buffer.from(header));
      await raw.closed; // the server closes the connection at once: nothing of the body was needed
      await waitUntil(() => errors.length > before, 'the server reported the connection error');
      expect(errors.at(-1)!.code).toBe('RECEIVED_MESSAGE_TOO_LARGE');
      // The message says which option to raise, and to what.
      expect(errors.at(-1)!.message).toContain('raise the maxMessageSize option of both listen() and connect() to at least');
    }

    // Meanwhile the other client is served as usual.
    expect(await clients[0]!.request({ op: 'ask', event: { type: 'add', a: 5, b: 6 } })).toMatchObject({ ok: true, value: 11 });
    expect(server.connections.size).toBe(1);
  });

  it('the client side also cuts off a server that sends past its limit (RECEIVED_MESSAGE_TOO_LARGE), failing pending asks', async () => {
    const name = socketName();
    const hellos: Array<ReturnType<typeof parseHandshake>> = [];
    await rawServer(name, (peer) => {
      void peer.until((bytes) => parseHandshake(bytes)).then((hello) => {
        hellos.push(hello);
        // WELCOME by hand: version 1, kind WELCOME, no flags, max 1 MiB, no extension.
        peer.write(Buffer.from([0x89, 0x49, 0x43, 0x56, 0x00, 0x01, 0x02, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00]));
        // Then, once the client has asked something, a frame header declaring 513 bytes.
        void peer.until((bytes) => (bytes.length > hello!.size ? true : undefined)).then(() => peer.write(Buffer.from([0xfc, 0x02, 0x01])));
      });
    });
    const connection = await connectClient(name, { maxMessageSize: 512 });
    expect(hellos[0]).toMatchObject({ version: 1, kind: 1, maxMessageSize: 512 });
    const error = await rejectionOf(connection.ask({ type: 'add', a: 1, b: 1 }, { timeout: 10_000 }));
    expect(error.code).toBe('CONNECTION_CLOSED');
    await connection.closed;
    expect(connection.state).toBe('closed');
    expect(connection.closeReason?.code).toBe('RECEIVED_MESSAGE_TOO_LARGE');
  });
});

describe('near-empty payloads', () => {
  it('empty strings, arrays, objects, bytes and type-only events cross and come back', async () => {
    const { name } = await startServerProcess();
    const connection = await connectClient(name);
    expect(await connection.ask({ type: 'echo', value: '' })).toBe('');
    expect(await connection.ask({ type: 'echo', value: {} })).toEqual({});
    expect(await connection.ask({ type: 'echo', value: [] })).toEqual([]);
    const bytes = (await connection.ask({ type: 'echo', value: new Uint8Array(0) })) as Uint8Array;
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(bytes.length).toBe(0);
    expect(await connection.ask({ type: 'echo', value: { a: '', b: {}, c: [], d: new Uint8Array(0) } })).toEqual({
      a: '',
      b: {},
      c: [],
      d: Buffer.alloc(0),
    });
    expect(await connection.ask({ type: 'ping' })).toBeUndefined();
    await connection.tell({ type: 'log', line: '' });
    expect(await connection.ask({ type: 'add', a: 0, b: 0 })).toBe(0);
  });
});
