/**
 * Never silent, never stuck: errors of this side's own making that no asker hears (a tell's
 * handler threw, a tell was dropped) are said once per kind when nobody observes them; a client
 * with neither handlers nor an iterator answers asks NO_HANDLER and drops tells instead of
 * stalling, so the replies to its own asks always get through.
 *
 * Warnings are remembered process-wide (once per kind), so every test uses message types of
 * its own.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, listen, type ConnectOptions, type ConverseError, type ListenOptions } from '../../src/index.js';
import { cleanup, onCleanup, rejectionOf, sleep, socketName, waitUntil } from '../helpers/cleanup.js';

afterEach(cleanup);

/** Process warnings of this library, collected while the test runs. */
function collectWarnings(): Array<{ code: string; message: string }> {
  const seen: Array<{ code: string; message: string }> = [];
  const listener = (warning: Error & { code?: string }): void => {
    if (warning.code?.startsWith('INTERPROCESS_CONVERSE_')) seen.push({ code: warning.code, message: warning.message });
  };
  process.on('warning', listener);
  onCleanup(() => process.off('warning', listener));
  return seen;
}

async function serve(options: ListenOptions<any, any>) {
  const name = socketName();
  const server = await listen<any, any>(name, options);
  onCleanup(() => server.close({ timeout: 500 }));
  return { name, server };
}

async function client(name: string, options: ConnectOptions<any, any> = {}) {
  const connection = await connect<any, any>(name, options);
  onCleanup(() => connection.close({ timeout: 500 }));
  return connection;
}

describe('unobserved errors', () => {
  it("a throwing tell handler with no 'handlerError' listener is said once per kind, as a process warning", async () => {
    const warnings = collectWarnings();
    const { name } = await serve({
      handlers: {
        audit1: () => {
          throw new Error('audit store is down');
        },
        journal1: () => {
          throw new Error('journal is full');
        },
      },
    });
    const c = await client(name);
    for (let i = 0; i < 50; i++) await c.tell({ type: 'audit1' });
    await c.tell({ type: 'journal1' });
    await c.tell({ type: 'nothing1' }); // no handler: dropped
    await c.ask({ type: 'audit1' }).catch(() => {}); // an ask's asker is told: not a warning
    await waitUntil(() => warnings.length >= 3, 'three kinds were said');
    await sleep(100);
    expect(warnings.map((w) => w.code).sort()).toEqual(['INTERPROCESS_CONVERSE_NO_HANDLER', 'INTERPROCESS_CONVERSE_REMOTE_ERROR', 'INTERPROCESS_CONVERSE_REMOTE_ERROR']);
    expect(warnings.find((w) => w.message.includes('"audit1"'))!.message).toMatch(/threw Error: audit store is down .*said once for this kind; listen for the server's 'handlerError' event/);
    expect(warnings.some((w) => w.message.includes('"journal1"'))).toBe(true);
    expect(warnings.some((w) => w.message.includes('"nothing1"'))).toBe(true);
  });

  it("with a 'handlerError' listener, the listener gets every one and nothing is printed", async () => {
    const warnings = collectWarnings();
    const { name, server } = await serve({
      handlers: {
        audit2: () => {
          throw new Error('down');
        },
      },
    });
    const heard: ConverseError[] = [];
    server.on('handlerError', (error) => heard.push(error));
    const c = await client(name);
    for (let i = 0; i < 5; i++) await c.tell({ type: 'audit2' });
    await c.tell({ type: 'nothing2' });
    await waitUntil(() => heard.length === 6, 'the listener heard all six');
    await sleep(100);
    expect(heard.filter((e) => e.code === 'REMOTE_ERROR')).toHaveLength(5);
    expect(heard.filter((e) => e.code === 'NO_HANDLER')).toHaveLength(1);
    expect(warnings).toEqual([]);
  });

  it('warnUnobservedErrors: false turns them off, on a server and on a client', async () => {
    const warnings = collectWarnings();
    const { name, server } = await serve({
      warnUnobservedErrors: false,
      handlers: {
        audit3: () => {
          throw new Error('down');
        },
      },
    });
    const c = await client(name, { handlers: {}, warnUnobservedErrors: false });
    await c.tell({ type: 'audit3' });
    await server.broadcast({ type: 'nothing3' });
    await waitUntil(() => c.stats.unhandledTells === 1, 'the client dropped the broadcast');
    await sleep(100);
    expect(warnings).toEqual([]);
  });

  it('a client with handlers: {} drops tells with one warning per type, not one per tell', async () => {
    const warnings = collectWarnings();
    const { name, server } = await serve({ handlers: {} });
    const c = await client(name, { handlers: {} });
    await waitUntil(() => server.connections.size === 1, 'the server has the connection');
    for (let i = 0; i < 300; i++) await server.broadcast({ type: 'notify4', text: `${i}` });
    await server.broadcast({ type: 'other4' });
    await waitUntil(() => c.stats.unhandledTells === 301, 'the client dropped all 301 tells');
    await sleep(100);
    const mine = warnings.filter((w) => /"(notify4|other4)"/.test(w.message));
    expect(mine).toHaveLength(2);
    expect(mine[0]!.message).toMatch(/pass warnUnobservedErrors: false to connect\(\)/);
  });

  it('a warning quoting a message type the peer chose shows its control characters escaped', async () => {
    const warnings = collectWarnings();
    const { name, server } = await serve({ handlers: {} });
    const c = await client(name, { handlers: {} });
    await waitUntil(() => server.connections.size === 1, 'the server has the connection');
    await server.broadcast({ type: 'evil\u001b]0;owned\u0007\r\u009b2J' });
    await waitUntil(() => warnings.some((w) => w.message.includes('evil')), 'the dropped tell was said');
    const said = warnings.find((w) => w.message.includes('evil'))!.message;
    expect(said).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(said).toContain('evil\\u001b]0;owned\\u0007\\u000d\\u009b2J');
    await c.close();
  });
});

describe('a client with neither handlers nor an iterator', () => {
  it('is never stuck: past 256 unread messages it answers asks NO_HANDLER, drops tells, and its own asks get their replies', async () => {
    const warnings = collectWarnings();
    const { name, server } = await serve({ handlers: { add: ({ a, b }: any) => a + b } });
    const c = await client(name); // no handlers, never iterated
    await waitUntil(() => server.connections.size === 1, 'the server has the connection');
    const [toClient] = server.connections.values();
    for (let i = 0; i < 1000; i++) await toClient!.tell({ type: 'tick5', i } as never);
    await sleep(200);
    // Tells alone are held (reading paused): it may still start iterating. Nothing is dropped yet.
    expect(c.stats.unhandledTells).toBe(0);
    // Its own asks still get through (before, its replies queued behind 1,000 unread tells).
    expect(await c.ask({ type: 'add', a: 2, b: 3 }, { timeout: 10_000 })).toBe(5);
    // An ask from the server is answered at once, not left to time out.
    const error = await rejectionOf(toClient!.ask({ type: 'question5' } as never, { timeout: 10_000 }));
    expect(error.code).toBe('NO_HANDLER');
    expect(c.stats.unhandledTells).toBeGreaterThanOrEqual(1000 - 256);
    const switched = (w: { message: string }): boolean => w.message.includes('messages wait unread on a connection that has no handlers and that nobody iterates');
    await waitUntil(() => warnings.some(switched), 'the switch was said');
    expect(warnings.filter(switched)).toHaveLength(1);
    expect(warnings.filter((w) => w.message.includes('"tick5"'))).toHaveLength(1);
    expect(c.state).toBe('active');
  });

  it('a client that iterates gets every message, in order, however many arrive first (backpressure, nothing dropped)', async () => {
    const { name, server } = await serve({});
    const c = await client(name);
    const iterator = c[Symbol.asyncIterator](); // iterating starts before the flood, reading later
    const [accepted] = await Promise.all([server.accept()]);
    const COUNT = 1000;
    const sending = (async () => {
      for (let i = 0; i < COUNT; i++) await accepted.tell({ type: 'tick6', i } as never);
    })();
    await sleep(300); // the queue fills and reading pauses; nothing is dropped
    expect(c.stats.unhandledTells).toBe(0);
    const seen: number[] = [];
    while (seen.length < COUNT) {
      const { value } = await iterator.next();
      seen.push((value!.event as unknown as { i: number }).i);
    }
    await sending;
    expect(seen).toEqual(Array.from({ length: COUNT }, (_, i) => i));
  });
});
