/**
 * The connection engine over an in-memory duplex pair (no socket, no process): it runs over any
 * Duplex; maxInFlight, the write budget and closing, each part in isolation from the transport.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { answerHello, hello, readWelcome } from '../../src/connection/negotiate.js';
import { HandshakeReader } from '../../src/wire/handshake.js';
import { cleanup, sleep, waitUntil } from '../helpers/cleanup.js';
import { corePair } from './pair.js';

afterEach(cleanup);

describe('the core over an in-memory duplex pair', () => {
  it('asks, replies and tells both ways', async () => {
    const told: unknown[] = [];
    const { client, server } = await corePair(
      { handlers: { add: (e: { a: number; b: number }) => e.a + e.b, note: (e: { text: string }) => void told.push(e.text) } },
      { handlers: { whoami: () => 'client' } },
    );
    expect(await client.connection.ask({ type: 'add', a: 1, b: 2 })).toBe(3);
    await client.connection.tell({ type: 'note', text: 'hi' });
    await waitUntil(() => told.length === 1, 'the tell arrived');
    expect(await server.connection.ask({ type: 'whoami' })).toBe('client');
  });

  it('maxInFlight: at the bound reading pauses; it resumes at half; every ask is answered', async () => {
    const waiting: Array<() => void> = [];
    let started = 0;
    const { client } = await corePair({
      maxInFlight: 4,
      handlers: {
        wait: () => {
          started++;
          return new Promise<string>((resolve) => waiting.push(() => resolve('done')));
        },
      },
    });
    const asks = Array.from({ length: 10 }, () => client.connection.ask({ type: 'wait' }));
    await waitUntil(() => started === 4, '4 handlers started');
    await sleep(50);
    expect(started).toBe(4);
    waiting.splice(0, 1)[0]!();
    await sleep(50);
    expect(started).toBe(4); // 3 running: above half of 4, still paused
    waiting.splice(0, 1)[0]!();
    await waitUntil(() => started === 6, 'reading resumed at half: 2 more started');
    while (started < 10 || waiting.length > 0) {
      waiting.splice(0).forEach((release) => release());
      await sleep(5);
    }
    expect(await Promise.all(asks)).toEqual(Array(10).fill('done'));
  });

  it('a write budget under the stream’s own high-water mark still resumes reading', async () => {
    const big = 'y'.repeat(4096);
    const { client } = await corePair({ maxWriteBuffer: 512, handlers: { big: async () => big } }, {}, 1024);
    const replies = await Promise.all(Array.from({ length: 20 }, () => client.connection.ask({ type: 'big' }, { timeout: 3000 })));
    expect(replies.every((r) => r === big)).toBe(true);
  });

  it('closing waits for the peer’s answers and for ours, then ends', async () => {
    const { client, server } = await corePair({ handlers: { slow: () => sleep(100).then(() => 'late') } });
    const ask = client.connection.ask({ type: 'slow' });
    await sleep(10);
    const closed = server.connection.close();
    expect(await ask).toBe('late');
    await closed;
    expect(server.core.closeReason).toBeUndefined();
    await client.connection.closed;
  });
});

describe('negotiate: handshake decisions as pure functions', () => {
  const server = { role: 'server' as const, checksum: false, maxMessageSize: 4096, protocolMeta: { name: 'calc', version: 2 } };
  const client = { role: 'client' as const, checksum: true, maxMessageSize: 1024, protocolMeta: { name: 'calc' } };
  const read = (bytes: Buffer) => new HandshakeReader().push(bytes)!.message;

  it('agrees on the smaller limit and on checksums if either side wants them', () => {
    const outcome = answerHello(read(hello(client)), server);
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.agreement).toMatchObject({ checksum: true, sendLimit: 1024, peerProtocol: { name: 'calc' } });
    const welcome = readWelcome(read(outcome.answer!), client);
    expect(welcome.ok && welcome.agreement).toMatchObject({ checksum: true, sendLimit: 1024, peerProtocol: { name: 'calc', version: 2 } });
  });

  it('refuses another protocol with a REJECT the client reads as HANDSHAKE_FAILED', () => {
    const outcome = answerHello(read(hello({ ...client, protocolMeta: { name: 'chat' } })), server);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error.code).toBe('HANDSHAKE_FAILED');
    expect(outcome.destroy).toBe(false);
    const answer = readWelcome(read(outcome.answer!), client);
    expect(!answer.ok && answer.error.code).toBe('HANDSHAKE_FAILED');
  });
});
