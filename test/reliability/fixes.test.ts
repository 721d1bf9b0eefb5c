/**
 * The bugs found reading the connection engine (issue 9), each with the test that would have
 * caught it. In-process servers and clients over real sockets; a raw peer where the bug needs
 * one that misbehaves.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createMachine } from 'xstate';
import { answer, connect, listen, type Connection } from '../../src/index.js';
import { cleanup, onCleanup, rejectionOf, sleep, socketName, waitUntil } from '../helpers/cleanup.js';
import { listening } from '../helpers/listening.js';
import { handshakeBytes, parseHandshake, rawServer, type RawPeer } from '../helpers/raw.js';

afterEach(cleanup);


async function client(name: string, options: Parameters<typeof connect>[1] = {}): Promise<Connection> {
  const c = await connect(name, options);
  onCleanup(() => c.destroy());
  return c;
}

/** A raw server that handshakes, then reads nothing until `resume()`: our writes back up. */
async function stalledServer(): Promise<{ name: string; peer: () => RawPeer | undefined }> {
  const name = socketName();
  let peer: RawPeer | undefined;
  await rawServer(name, (p) => {
    peer = p;
    void p.until((bytes) => parseHandshake(bytes)).then(() => {
      p.write(handshakeBytes({ kind: 2 }));
      p.socket.pause();
    });
  });
  return { name, peer: () => peer };
}

/** Tell 64 KiB messages until more than `limit` bytes wait on the client's socket. */
async function backUp(connection: Connection, limit: number): Promise<void> {
  const text = 'z'.repeat(64 * 1024);
  while (connection.core.socket.writableLength <= limit) await connection.tell({ type: 'note', text });
}

describe('timeouts: 0 … 2^31-1 ms and Infinity', () => {
  it('Infinity means no timer: an ask, replyTimeout, closeTimeout and handshakeTimeout of Infinity do not fire after 1 ms', async () => {
    const { name } = await listening({ handlers: { slow: () => sleep(300).then(() => 'done') }, closeTimeout: Infinity, handshakeTimeout: Infinity });
    const c = await client(name, { replyTimeout: Infinity, closeTimeout: Infinity, connectTimeout: Infinity });
    expect(await c.ask({ type: 'slow' })).toBe('done');
    expect(await c.ask({ type: 'slow' }, { timeout: Infinity })).toBe('done');
    const pending = c.ask({ type: 'slow' });
    await c.close({ timeout: Infinity }); // waits for the ask instead of cutting it off
    expect(await pending).toBe('done');
    expect(c.closeReason).toBeUndefined();
  });

  it('server.close({ timeout: Infinity }) waits for the work in flight instead of cutting it off after 1 ms', async () => {
    const name = socketName();
    const s = await listen(name, { handlers: { slow: () => sleep(300).then(() => 'done') } });
    onCleanup(() => s.close({ timeout: 300 }));
    const c = await client(name);
    const pending = c.ask({ type: 'slow' });
    await waitUntil(() => [...s.connections.values()].some((sc) => sc.work().handling.length === 1), 'the server runs the handler');
    await s.close({ timeout: Infinity });
    expect(await pending).toBe('done');
  });

  it('anything else is a RangeError when the options are given', async () => {
    for (const bad of [-1, 2 ** 31, NaN, '100', 1e12]) {
      await expect(listen(socketName(), { replyTimeout: bad as number })).rejects.toThrow(RangeError);
      await expect(connect(socketName(), { closeTimeout: bad as number })).rejects.toThrow(RangeError);
    }
    const { name } = await listening({ handlers: { add: (e: { a: number; b: number }) => e.a + e.b } });
    const c = await client(name);
    await expect(c.ask({ type: 'add', a: 1, b: 1 }, { timeout: 2 ** 31 })).rejects.toThrow(RangeError);
    await expect(c.send({ type: 'add', a: 1, b: 1 }, { timeout: -5 })).rejects.toThrow(RangeError);
    expect(() => c.close({ timeout: -1 })).toThrow(RangeError);
    expect(await c.ask({ type: 'add', a: 1, b: 1 }, { timeout: 2 ** 31 - 1 })).toBe(2);
  });
});

describe('asks while writes are backed up', () => {
  it('an ask (or send) whose signal is already aborted fails with ABORTED, not TIMEOUT', async () => {
    const stalled = await stalledServer();
    const c = await client(stalled.name, { maxWriteBuffer: 64 * 1024, replyTimeout: 500 });
    await backUp(c, 64 * 1024);
    expect(c.core.socket.writableLength).toBeGreaterThan(64 * 1024); // the ask has to wait for room
    const signal = AbortSignal.abort();
    expect((await rejectionOf(c.ask({ type: 'x' }, { signal }))).code).toBe('ABORTED');
    expect((await rejectionOf(c.send({ type: 'x' }, { signal }))).code).toBe('ABORTED');
  });

  it('send(…, { timeout }) counts the wait for room once', async () => {
    const stalled = await stalledServer();
    const c = await client(stalled.name, { maxWriteBuffer: 64 * 1024 });
    await backUp(c, 64 * 1024);
    setTimeout(() => stalled.peer()?.socket.resume(), 1500); // room comes back after 1.5 s; no reply ever
    const { reply } = await c.send({ type: 'x' }, { timeout: 3000 });
    // The ask went out with what was left of its 3 s (at most 1.5 s), not 3 s again: counting
    // the wait twice made the reply's timeout fire after 4.5 s. (Read from the pending ask, not
    // from a clock, so a loaded machine cannot blur it.)
    const asking = c.work().asking;
    expect(asking).toHaveLength(1);
    expect(asking[0]!.timeoutMs).toBeLessThanOrEqual(1500);
    expect((await rejectionOf(reply)).code).toBe('TIMEOUT');
  });
});

describe('handlers and the connection’s end', () => {
  it('with an async validator, a handler never starts after its connection closed; the message was aborted', async () => {
    let started = 0;
    const slowSchema = {
      '~standard': { version: 1, vendor: 'test', validate: (value: unknown) => sleep(300).then(() => ({ value })) },
    };
    const { name } = await listening({
      protocol: { definition: { work: { input: slowSchema } } } as never,
      handlers: { work: () => void started++ },
    });
    const c = await client(name);
    void c.ask({ type: 'work' }).catch(() => {});
    await sleep(50);
    c.destroy();
    await sleep(500);
    expect(started).toBe(0);
  });

  it('a session’s answer() after the transition is too late: the handler’s reply wins', async () => {
    let later: (() => boolean) | undefined;
    const session = createMachine({
      on: {
        get: {
          actions: ({ event }) => {
            later = () => answer(event, 'from the machine, too late');
          },
        },
      },
    });
    const { name } = await listening({ session, handlers: { get: () => sleep(100).then(() => 'from the handler') } });
    const c = await client(name);
    const reply = c.ask({ type: 'get' });
    await waitUntil(() => later !== undefined, 'the session took the ask');
    expect(later!()).toBe(false);
    expect(await reply).toBe('from the handler');
  });

  it('a stream whose return() throws or rejects stays inside the library; ask() to it gets an error, the connection lives', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    onCleanup(() => void process.off('unhandledRejection', onUnhandled));
    const broken = (how: 'throws' | 'rejects') => ({
      [Symbol.asyncIterator]() {
        let n = 0;
        return {
          next: async () => ({ value: n++, done: false }),
          return: () => {
            if (how === 'throws') throw new Error('return() threw');
            return Promise.reject(new Error('return() rejected'));
          },
        };
      },
    });
    const { name, server: s } = await listening({ handlers: { throws: () => broken('throws'), rejects: () => broken('rejects'), add: (e: { a: number; b: number }) => e.a + e.b } });
    const errors: unknown[] = [];
    s.on('connectionError', (error) => errors.push(error));
    const c = await client(name);
    for (const type of ['throws', 'rejects']) {
      const error = await rejectionOf(c.ask({ type }));
      expect(error.code).toBe('REMOTE_ERROR');
      for await (const item of c.stream({ type })) if (item === 2) break;
    }
    expect(await c.ask({ type: 'add', a: 1, b: 2 })).toBe(3);
    await sleep(100);
    expect(unhandled).toEqual([]);
    expect(errors).toEqual([]);
    expect(c.state).toBe('active');
  });
});

describe('after the peer’s GOODBYE, what settles our side completes the close', () => {
  // The server's side stays open (its work ignores the cancel and never ends, so it cannot
  // finish closing before its closeTimeout): only the client's own settling can end the
  // conversation. The client ends its direction once its ask or stream is over; the server
  // then sees the end and closes too. Without the settle signal, the client waited for its
  // closeTimeout (20 s here).
  const stuck = (): Promise<never> => new Promise(() => {});

  it('an ask of ours that times out', async () => {
    const { name, server: s } = await listening({ handlers: { stuck }, closeTimeout: 20_000 });
    const c = await client(name, { closeTimeout: 20_000 });
    const ask = rejectionOf(c.ask({ type: 'stuck' }, { timeout: 600 }));
    await waitUntil(() => [...s.connections.values()].some((sc) => sc.work().handling.length === 1), 'the server runs the handler');
    void s.close({ timeout: 20_000 });
    await waitUntil(() => c.state === 'closing', 'the client heard GOODBYE');
    expect((await ask).code).toBe('TIMEOUT');
    const started = performance.now();
    await c.closed;
    expect(performance.now() - started).toBeLessThan(5000); // not closeTimeout (20 s)
    expect(c.closeReason).toBeUndefined();
  });

  it('a stream we break out of, and one we abort', async () => {
    // One item, then a producer that never yields again (and never sees the cancel).
    const stalls = async function* () {
      yield 0;
      await stuck();
    };
    for (const how of ['break', 'abort'] as const) {
      const { name, server: s } = await listening({ handlers: { stalls }, closeTimeout: 20_000 });
      const c = await client(name, { closeTimeout: 20_000 });
      const controller = new AbortController();
      const items = c.stream({ type: 'stalls' }, { signal: controller.signal });
      expect((await items.next()).value).toBe(0);
      void s.close({ timeout: 20_000 });
      await waitUntil(() => c.state === 'closing', 'the client heard GOODBYE');
      if (how === 'break') await items.return!();
      else controller.abort();
      const started = performance.now();
      await c.closed;
      expect(performance.now() - started, how).toBeLessThan(5000);
      expect(c.closeReason, how).toBeUndefined();
    }
  });
});
