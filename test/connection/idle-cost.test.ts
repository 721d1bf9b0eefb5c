/**
 * What an idle connection holds on the server. The cost itself is measured in bench/ (S4, heap
 * per idle connection); these check the structure behind the number, so that a change bringing
 * back a per-connection allocation fails here: the stream's listeners and the server's phase
 * listener are shared functions, and nothing is made for a queue, a promise or a callback the
 * connection has not used. (test/package/actor-shape.test.ts runs the built library with V8's
 * natives to see that connection actors share their hidden classes.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, listen, type Connection } from '../../src/index.js';
import { cleanup, onCleanup, socketName, waitUntil } from '../helpers/cleanup.js';

afterEach(cleanup);

/** A server with handlers and `n` clients that asked once each, idle now. */
async function idleServer(n: number): Promise<Connection[]> {
  const name = socketName();
  const server = await listen(name, { handlers: { add: (event: unknown) => (event as { a: number; b: number }).a + (event as { a: number; b: number }).b } });
  onCleanup(() => server.close({ timeout: 100 }));
  for (let i = 0; i < n; i++) {
    const client = await connect(name);
    onCleanup(() => client.destroy());
    expect(await client.ask({ type: 'add', a: i, b: 1 })).toBe(i + 1);
  }
  await waitUntil(() => server.connections.size === n, `${n} connections`);
  return [...server.connections.values()];
}

describe('an idle server connection', () => {
  it("shares its stream's listeners and its phase listener with every other connection", async () => {
    const [a, b, c] = (await idleServer(3)) as [Connection, Connection, Connection];
    for (const event of ['data', 'close', 'error', 'drain', 'end', 'finish']) {
      const listeners = a.core.socket.listeners(event);
      for (const other of [b, c]) {
        const theirs = other.core.socket.listeners(event);
        expect(theirs, event).toHaveLength(listeners.length);
        theirs.forEach((listener, i) => expect(listener, `${event} listener ${i}`).toBe(listeners[i]));
      }
    }
    expect(a.core.socket.listeners('data').length).toBeGreaterThan(0);
    expect(b.core.onPhase).toBe(a.core.onPhase);
  });

  it('holds no incoming queue, closed promise, flush callback, deadline or actor input it has not used', async () => {
    const connections = await idleServer(2);
    for (const connection of connections) {
      const core = connection.core as unknown as {
        closedPromise: unknown;
        inbound: { queue: unknown };
        sender: { flushedCallback: unknown };
        lifecycleDeadline: unknown;
      };
      expect(core.closedPromise).toBeUndefined(); // nobody asked for `closed`
      expect(core.inbound.queue).toBeUndefined(); // every message went to a handler
      expect(core.sender.flushedCallback).toBeUndefined(); // the write budget was never reached
      expect(core.lifecycleDeadline).toBeUndefined(); // the handshake's deadline was dropped with its state
      const actor = connection.actor as unknown as { options: { input?: unknown }; _deferred: unknown[] };
      expect(actor.options.input).toBeUndefined(); // read once, at the start
      expect(actor._deferred).toHaveLength(0);
    }
    // Asked for now, `closed` still settles when the connection closes.
    const [first] = connections as [Connection];
    const closed = first.closed;
    first.destroy();
    await closed;
    expect(first.state).toBe('closed');
    // And once closed, a promise asked for later is already settled.
    await first.closed;
  });
});
