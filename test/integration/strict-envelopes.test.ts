import { afterEach, describe, expect, it } from 'vitest';
import { connect, listen } from '../../src/index.js';
import { cleanup, onCleanup, rejectionOf, socketName } from '../helpers/cleanup.js';
import { FrameReader, frame, handshakeBytes, parseHandshake, rawConnect, rawServer, type RawPeer } from '../helpers/raw.js';

/*
 * The strict readings of docs/PROTOCOL.md §6 and §7.1 that touch the connection engine: answers
 * must match the ask's mode, a stream window is an integer, and an ASK right behind the peer's
 * GOODBYE is still answered. (Element counts, floats and CREDITs: test/wire/envelope-shape.test.ts
 * and the conformance kit's case S30.)
 */

afterEach(cleanup);

/** A server of this library with untyped handlers. */
async function serve(handlers: Record<string, (event: any) => unknown>): Promise<{ name: string }> {
  const name = socketName();
  const server = await listen<any, any>(name, { handlers });
  onCleanup(() => server.close({ timeout: 500 }));
  return { name };
}

/** A raw server that WELCOMEs and then answers every ASK it reads with `answer(id)`. */
async function answeringServer(answer: (id: number) => Buffer): Promise<string> {
  const name = socketName();
  await rawServer(name, (peer) => {
    let handshaken = false;
    const reader = new FrameReader((envelope) => {
      if (envelope[0] === 1) peer.write(answer(envelope[1] as number));
    });
    peer.socket.on('data', (chunk: Buffer) => {
      if (!handshaken) {
        handshaken = true;
        peer.write(handshakeBytes({ kind: 2 }));
        if (chunk.length > 14) reader.push(chunk.subarray(14));
        return;
      }
      reader.push(chunk);
    });
  });
  return name;
}

describe('answers must match the mode of the ask (§6.7)', () => {
  it.each([
    ['STREAM_END', (id: number) => frame([9, id])],
    ['STREAM_ITEM', (id: number) => frame([8, id, 'item'])],
  ])('a %s answering a plain ask closes the connection with PROTOCOL_ERROR', async (_kind, answer) => {
    const name = await answeringServer(answer);
    const connection = await connect(name);
    onCleanup(() => connection.destroy());
    const error = await rejectionOf(connection.ask({ type: 'plain' }, { timeout: 5000 }));
    expect(error.code).toBe('CONNECTION_CLOSED');
    await connection.closed;
    expect(connection.closeReason?.code).toBe('PROTOCOL_ERROR');
    expect(connection.closeReason?.message).toMatch(/plain ASK/);
  });

  it('a REPLY to a streaming ask is a stream of one item', async () => {
    const name = await answeringServer((id) => frame([2, id, 'single']));
    const connection = await connect(name);
    onCleanup(() => connection.destroy());
    const items: unknown[] = [];
    for await (const item of connection.stream({ type: 'one' })) items.push(item);
    expect(items).toEqual(['single']);
  });
});

async function handshaken(name: string): Promise<{ peer: RawPeer; reader: FrameReader; envelopes: unknown[][] }> {
  const peer = await rawConnect(name);
  peer.write(handshakeBytes({ kind: 1 }));
  const welcome = await peer.until((received) => parseHandshake(received));
  expect(welcome?.kind).toBe(2);
  const envelopes: unknown[][] = [];
  const reader = new FrameReader((envelope) => envelopes.push(envelope));
  let offset = welcome!.size;
  peer.socket.on('data', () => {
    reader.push(peer.received.subarray(offset));
    offset = peer.received.length;
  });
  if (peer.received.length > offset) {
    reader.push(peer.received.subarray(offset));
    offset = peer.received.length;
  }
  return { peer, reader, envelopes };
}

describe('the stream window of an ASK (§6.7)', () => {
  it.each([[0], [-1], [1.5], ['16']])('a window of %j closes the connection', async (window) => {
    const { name } = await serve({
      count: async function* () {
        yield 1;
      },
    });
    const { peer, envelopes } = await handshaken(name);
    peer.write(frame([1, 0, { type: 'count' }, { stream: window }]));
    await peer.closed;
    expect(envelopes).toEqual([]);
  });

  it('options that are not a map, or a map without "stream", are ignored (a plain ask)', async () => {
    const { name } = await serve({ add: ({ a, b }: { a: number; b: number }) => a + b });
    const { peer, envelopes } = await handshaken(name);
    peer.write(Buffer.concat([frame([1, 0, { type: 'add', a: 1, b: 2 }, 'not a map']), frame([1, 1, { type: 'add', a: 2, b: 2 }, { other: true }])]));
    await expect.poll(() => envelopes.length, { timeout: 5000 }).toBe(2);
    expect(envelopes).toEqual([[2, 0, 3], [2, 1, 4]]);
  });
});

describe('an ASK right behind the GOODBYE (§7.1 step 3)', () => {
  it('is answered with ERROR CONNECTION_CLOSED before the server ends its direction', async () => {
    const { name } = await serve({ echo: ({ value }: { value: unknown }) => value });
    const { peer, envelopes } = await handshaken(name);
    peer.write(Buffer.concat([frame([5]), frame([1, 7, { type: 'echo', value: 1 }])]));
    await peer.until((_received) => (peer.socket.readableEnded ? true : undefined), 5000);
    expect(envelopes[0]).toEqual([5]);
    expect(envelopes[1]).toMatchObject([3, 7, { code: 'CONNECTION_CLOSED' }]);
    expect(envelopes).toHaveLength(2);
  });
});
