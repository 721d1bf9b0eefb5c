/**
 * Conversations between real processes, ported from the Rust crate's tests: a basic dialogue in
 * both directions, a flurry of asks from five clients in random directions, and reply timeouts.
 * Then what asks may end in: REMOTE_ERROR, NO_HANDLER, ABORTED, late replies, and `send()`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConverseError, type Connection } from '../../src/index.js';
import type { ClientApi, ServerApi } from '../fixtures/protocol.js';
import { cleanup, onCleanup, rejectionOf, sleep, socketName, waitUntil } from '../helpers/cleanup.js';
import { FrameReader, frame, handshakeBytes, parseHandshake, rawServer } from '../helpers/raw.js';
import { connectClient, startClients, startServer } from '../helpers/scenario.js';

afterEach(cleanup);

function randomOperand(): number {
  return Math.floor(Math.random() * 2_000_000) - 1_000_000;
}

describe('dialogue between a server and a client process', () => {
  it('the server asks the client, the client asks the server, and a handler asks back mid-ask', async () => {
    const { name, server } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 1);
    const client = clients[0]!;
    const connection = connectionOf(client);

    // Server → client.
    expect(await connection.ask({ type: 'add', a: 2, b: 3 })).toBe(5);
    expect(await connection.ask({ type: 'echo', value: { hello: ['world'] } })).toEqual({ hello: ['world'] });

    // Client → server.
    expect(await client.request({ op: 'ask', event: { type: 'add', a: 40, b: 2 } })).toMatchObject({ ok: true, value: 42 });

    // Server → client, whose handler asks the server back on the same connection before replying.
    expect(await connection.ask({ type: 'relay', a: 20, b: 22 })).toBe(42);

    // Several in parallel both ways.
    const serverAsks = Array.from({ length: 10 }, (_, i) => connection.ask({ type: 'add', a: i, b: i }));
    const clientAsks = Array.from({ length: 10 }, (_, i) => client.request({ op: 'ask', event: { type: 'add', a: i, b: 1 } }));
    expect(await Promise.all(serverAsks)).toEqual(Array.from({ length: 10 }, (_, i) => 2 * i));
    expect((await Promise.all(clientAsks)).map((line) => line.value)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  });

  it('a flurry: five client processes and the server ask each other at random for a second, every reply right', async () => {
    const { name, server } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 5);
    const connections = clients.map(connectionOf);

    // Client → server: every client runs its own flurry (it checks every reply itself).
    const clientFlurries = clients.map((client) => client.request({ op: 'flurry', ms: 1000 }, 20_000));

    // Server → clients at the same time: random client, random operands, a few in flight at once.
    let serverAsked = 0;
    const wrong: string[] = [];
    const until = performance.now() + 1000;
    const worker = async (): Promise<void> => {
      while (performance.now() < until) {
        const connection = connections[Math.floor(Math.random() * connections.length)]!;
        const a = randomOperand();
        const b = randomOperand();
        const sum = await connection.ask({ type: 'add', a, b });
        serverAsked++;
        if (sum !== a + b) wrong.push(`${a} + ${b} = ${sum}`);
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    const results = await Promise.all(clientFlurries);

    expect(wrong).toEqual([]);
    expect(serverAsked).toBeGreaterThan(20);
    for (const result of results) {
      expect(result).toMatchObject({ ok: true, wrong: 0 });
      expect(result.count).toBeGreaterThan(20);
    }
    // Nothing is left pending on any connection.
    for (const connection of connections) expect(connection.pendingAsks).toBe(0);
  });

  it('an unanswered ask fails with TIMEOUT after the timeout (not before, well before twice it); the next ask succeeds', async () => {
    const { name, server } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 1);
    const connection = connectionOf(clients[0]!);

    const started = performance.now();
    const error = await rejectionOf(connection.ask({ type: 'hang' }, { timeout: 300 }));
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('TIMEOUT');
    expect(elapsed).toBeGreaterThanOrEqual(300);
    expect(elapsed).toBeLessThan(600);

    // The client's handler was told to stop.
    await clients[0]!.waitFor((line) => line.event === 'aborted' && line.type === 'hang');
    // And the connection is fine.
    expect(await connection.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
    expect(connection.state).toBe('active');
    expect(connection.pendingAsks).toBe(0);
  });

  it('the replyTimeout option is the default timeout of asks (client process side)', async () => {
    const { name, server, log } = await startServer();
    const { clients } = await startClients(server, name, 1, { replyTimeout: 300 });
    const result = await clients[0]!.request({ op: 'ask', event: { type: 'hang' } });
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(result.elapsed).toBeGreaterThanOrEqual(300);
    expect(result.elapsed).toBeLessThan(600);
    // On ask timeout the server handler's ctx.signal aborts.
    expect(await log.abortOf('hang')).toMatchObject({ type: 'hang' });
    expect(await clients[0]!.request({ op: 'ask', event: { type: 'add', a: 2, b: 2 } })).toMatchObject({ ok: true, value: 4 });
  });

  it('a timed-out ask does not disturb later messages in either direction', async () => {
    const { name, server } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 1);
    const connection = connectionOf(clients[0]!);
    // A slow reply that comes after its ask gave up, interleaved with quick ones.
    const slow = connection.ask({ type: 'slow', ms: 300, value: 'late' }, { timeout: 100 });
    const quick = Array.from({ length: 20 }, (_, i) => connection.ask({ type: 'add', a: i, b: 0 }));
    expect((await rejectionOf(slow)).code).toBe('TIMEOUT');
    expect(await Promise.all(quick)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await sleep(350); // past the slow handler's end
    expect(await connection.ask({ type: 'echo', value: 'after' })).toBe('after');
    expect(await clients[0]!.request({ op: 'ask', event: { type: 'echo', value: 'client after' } })).toMatchObject({ ok: true, value: 'client after' });
  });
});

describe('late replies', () => {
  /**
   * A hand-driven server that replies to every ASK whose payload has `delay` after that many ms,
   * ignoring CANCEL (so the reply really arrives late), and to others at once.
   */
  async function lateReplyingServer(): Promise<string> {
    const name = socketName();
    await rawServer(name, (peer) => {
      let handshakeDone = false;
      const reader = new FrameReader((envelope) => {
        if (envelope[0] !== 1) return; // only ASKs
        const id = envelope[1] as number;
        const event = envelope[2] as { type: string; delay?: number; value?: unknown };
        const reply = (): void => {
          if (!peer.isClosed) peer.write(frame([2, id, event.value]));
        };
        if (event.delay) {
          const timer = setTimeout(reply, event.delay);
          onCleanup(() => clearTimeout(timer));
        } else reply();
      });
      // RawPeer's own listener (registered first) has already appended the chunk to `received`.
      peer.socket.on('data', (chunk: Buffer) => {
        if (handshakeDone) {
          reader.push(chunk);
          return;
        }
        const hello = parseHandshake(peer.received);
        if (hello === undefined) return;
        handshakeDone = true;
        peer.write(handshakeBytes({ kind: 2 })); // WELCOME: version 1, no checksum, 1 MiB
        if (peer.received.length > hello.size) reader.push(peer.received.subarray(hello.size));
      });
    });
    return name;
  }

  it('a reply after its ask timed out is dropped, counted in stats.lateReplies, and never surfaces as a message', async () => {
    const name = await lateReplyingServer();
    // No handlers: incoming messages would arrive by iteration.
    const connection = await connectClient(name);
    const seen: unknown[] = [];
    const iterating = (async () => {
      for await (const message of connection) seen.push(message.event);
    })();

    const error = await rejectionOf(connection.ask({ type: 'echo', value: 'late', delay: 300 } as never, { timeout: 100 }));
    expect(error.code).toBe('TIMEOUT');
    await waitUntil(() => connection.stats.lateReplies === 1, 'the late reply arrived');
    // The connection still works, and later replies reach their asks.
    expect(await connection.ask({ type: 'echo', value: 'next' })).toBe('next');
    expect(await Promise.all([1, 2, 3].map((value) => connection.ask({ type: 'echo', value })))).toEqual([1, 2, 3]);
    expect(connection.stats.lateReplies).toBe(1);
    expect(seen).toEqual([]);
    expect(connection.state).toBe('active');
    connection.destroy();
    await iterating;
    expect(seen).toEqual([]);
  });
});

describe('what an ask can end in', () => {
  it('REMOTE_ERROR carries name, message and code when a handler throws; both directions', async () => {
    const { name, server } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 1);
    const client = clients[0]!;

    // Client process asks, the in-process server's handler throws.
    const fromServer = await client.request({ op: 'ask', event: { type: 'fail', message: 'disk full', code: 'E_DISK', name: 'StorageError' } });
    expect(fromServer).toMatchObject({ ok: false, code: 'REMOTE_ERROR', remote: { name: 'StorageError', message: 'disk full', code: 'E_DISK' } });

    // The server asks, the client process's handler throws.
    const error = await rejectionOf(connectionOf(client).ask({ type: 'fail', message: 'no such user', code: 'E_NOUSER' }));
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('REMOTE_ERROR');
    expect(error.remote).toEqual({ name: 'Error', message: 'no such user', code: 'E_NOUSER' });

    // A rejection without a code: no code in `remote`.
    const plain = await client.request({ op: 'ask', event: { type: 'fail', message: 'plain' } });
    expect(plain.remote).toEqual({ name: 'Error', message: 'plain' });
    // The connection is still usable.
    expect(await connectionOf(client).ask({ type: 'add', a: 1, b: 2 })).toBe(3);
  });

  it('NO_HANDLER for a message type the peer has no handler for', async () => {
    const { name, server } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 1);
    const toServer = await clients[0]!.request({ op: 'ask', event: { type: 'nosuch', x: 1 } });
    expect(toServer).toMatchObject({ ok: false, code: 'NO_HANDLER' });
    const error = await rejectionOf(connectionOf(clients[0]!).ask({ type: 'nosuch' } as never));
    expect(error.code).toBe('NO_HANDLER');
    // A tell of an unknown type is dropped, and the connection carries on.
    await clients[0]!.request({ op: 'tell', event: { type: 'nosuch' } });
    expect(await clients[0]!.request({ op: 'ask', event: { type: 'add', a: 1, b: 1 } })).toMatchObject({ ok: true, value: 2 });
  });

  it('an AbortSignal aborted mid-flight rejects with ABORTED and aborts the server handler’s ctx.signal', async () => {
    const { name, server, log } = await startServer();
    const { clients } = await startClients(server, name, 1);
    const result = await clients[0]!.request({ op: 'ask', event: { type: 'hang' }, abortAfter: 100, timeout: 10_000 });
    expect(result).toMatchObject({ ok: false, code: 'ABORTED' });
    expect(result.elapsed).toBeLessThan(5000);
    expect(await log.abortOf('hang')).toMatchObject({ type: 'hang', code: 'ABORTED' });
    expect(await clients[0]!.request({ op: 'ask', event: { type: 'add', a: 3, b: 4 } })).toMatchObject({ ok: true, value: 7 });
  });

  it('aborting a server → client ask aborts the client process handler, and an already-aborted signal rejects at once', async () => {
    const { name, server } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 1);
    const connection = connectionOf(clients[0]!);
    const controller = new AbortController();
    const asked = connection.ask({ type: 'hang' }, { signal: controller.signal, timeout: 10_000 });
    setTimeout(() => controller.abort(), 50);
    const error = await rejectionOf(asked);
    expect(error.code).toBe('ABORTED');
    await clients[0]!.waitFor((line) => line.event === 'aborted' && line.type === 'hang');

    const already = await rejectionOf(connection.ask({ type: 'add', a: 1, b: 1 }, { signal: AbortSignal.abort() }));
    expect(already.code).toBe('ABORTED');
    expect(connection.pendingAsks).toBe(0);
    expect(await connection.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
  });
});

describe('send()', () => {
  it('resolves its outer promise once written, before the reply; `reply` carries the answer', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let handlerStarted = false;
    const { name } = await startServer({
      handlers: {
        slow: async ({ value }) => {
          handlerStarted = true;
          await gate;
          return value;
        },
      },
    });
    const connection = await connectClient(name);
    const { reply } = await connection.send({ type: 'slow', ms: 0, value: 'answer' });
    // The outer promise settled while the handler cannot have replied (it waits for the gate).
    let settled = false;
    void reply.then(() => (settled = true));
    await waitUntil(() => handlerStarted, 'the handler started');
    expect(settled).toBe(false);
    release();
    expect(await reply).toBe('answer');
  });

  it('a reply nobody awaits that times out (or fails) causes no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    onCleanup(() => process.off('unhandledRejection', onUnhandled));

    const { name } = await startServer();
    const connection: Connection<ClientApi, ServerApi> = await connectClient(name);
    await connection.send({ type: 'hang' }, { timeout: 100 });
    await connection.send({ type: 'fail', message: 'nobody listens' });
    const { reply } = await connection.send({ type: 'hang' }, { timeout: 10_000 });
    void reply; // never awaited; rejected by the close below
    await sleep(300); // past the timeout
    connection.destroy();
    await connection.closed;
    await sleep(50); // unhandled rejections are reported after a macrotask
    expect(unhandled).toEqual([]);
    expect(connection.pendingAsks).toBe(0);
  });

  it('awaiting a timed-out reply still sees TIMEOUT', async () => {
    const { name } = await startServer();
    const connection = await connectClient(name);
    const { reply } = await connection.send({ type: 'hang' }, { timeout: 100 });
    expect((await rejectionOf(reply)).code).toBe('TIMEOUT');
  });

  it('rejects its outer promise when the message cannot be sent (MESSAGE_TOO_LARGE)', async () => {
    const { name } = await startServer({ maxMessageSize: 1024 });
    const connection = await connectClient(name, { maxMessageSize: 1024 });
    const error = await rejectionOf(connection.send({ type: 'echo', value: 'x'.repeat(2000) }));
    expect(error.code).toBe('MESSAGE_TOO_LARGE');
    expect(await connection.ask({ type: 'echo', value: 'small' })).toBe('small');
  });
});
