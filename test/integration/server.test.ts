/**
 * The server: accepting, the live-connection registry, broadcast, the supervisor actor's
 * children, maxConnections, and graceful close.
 */
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ConverseError, connect, type Connection } from '../../src/index.js';
import type { ClientApi, ServerApi } from '../fixtures/protocol.js';
import { cleanup, rejectionOf, waitUntil } from '../helpers/cleanup.js';
import { startFixture } from '../helpers/fixture.js';
import { startClients, startServer } from '../helpers/scenario.js';

afterEach(cleanup);

function childIds(server: { actor: { getSnapshot(): { children: Record<string, unknown> } } }): string[] {
  return Object.keys(server.actor.getSnapshot().children).sort();
}

/** The child actor ids of the live connections (children are keyed by recycled actor ids, not connection ids). */
function liveActorIds(server: { connections: ReadonlyMap<string, { actor: { id: string } }> }): string[] {
  return [...server.connections.values()].map((c) => c.actor.id).sort();
}

describe('accepting connections', () => {
  it('accept() and for await (const c of server) yield the connections; connections is keyed by id', async () => {
    const { name, server } = await startServer();
    // (Awaited together: a fixture that fails to start must fail the test, not leave accept() waiting.)
    const [accepted, firstClient] = await Promise.all([server.accept(), startFixture('client', [name])]);
    expect(accepted.state).toBe('active');
    expect(accepted.peer.pid).toBe(firstClient.pid);

    const iterated: Connection<ServerApi, ClientApi>[] = [];
    const iterating = (async () => {
      for await (const connection of server) {
        iterated.push(connection);
        if (iterated.length === 2) break;
      }
    })();
    const [, more] = await Promise.all([iterating, Promise.all([startFixture('client', [name]), startFixture('client', [name])])]);
    const clients = [firstClient, ...more];
    expect(new Set(iterated.map((c) => c.peer.pid))).toEqual(new Set([clients[1]!.pid, clients[2]!.pid]));

    expect(server.connections.size).toBe(3);
    for (const connection of [accepted, ...iterated]) {
      expect(server.connections.get(connection.id)).toBe(connection);
      expect(typeof connection.id).toBe('string');
      expect(connection.id.length).toBeGreaterThanOrEqual(10);
    }
    expect(new Set(server.connections.keys()).size).toBe(3);
    expect([...server.connections.values()].map((c) => c.id).sort()).toEqual([accepted, ...iterated].map((c) => c.id).sort());
  });

  it('the supervisor actor has exactly one child per live connection, and a closed connection’s child is gone', async () => {
    const { name, server } = await startServer();
    expect(childIds(server)).toEqual([]);
    const { clients, connectionOf } = await startClients(server, name, 3);
    expect(childIds(server)).toEqual(liveActorIds(server));
    expect(childIds(server)).toHaveLength(3);
    // Each child is the connection's own actor.
    for (const client of clients) {
      const connection = connectionOf(client);
      expect(server.actor.getSnapshot().children[connection.actor.id]).toBe(connection.actor);
    }

    // One client closes gracefully.
    const leaving = connectionOf(clients[0]!);
    expect(await clients[0]!.request({ op: 'close' })).toMatchObject({ ok: true, state: 'closed' });
    await leaving.closed;
    await waitUntil(() => !childIds(server).includes(leaving.actor.id), 'the closed connection’s child is gone');
    expect(server.connections.has(leaving.id)).toBe(false);
    expect(childIds(server)).toEqual(liveActorIds(server));
    expect(childIds(server)).toHaveLength(2);

    // The server closes one itself.
    const dropped = connectionOf(clients[1]!);
    dropped.destroy();
    await dropped.closed;
    await waitUntil(() => childIds(server).length === 1, 'the destroyed connection’s child is gone');
    expect(childIds(server)).toEqual([connectionOf(clients[2]!).actor.id]);
    expect(await clients[2]!.request({ op: 'ask', event: { type: 'add', a: 1, b: 1 } })).toMatchObject({ ok: true, value: 2 });
  });

  it('maxConnections: 2 — a third client gets SERVER_FULL from connect(); a slot freed is usable again', async () => {
    const { name, server } = await startServer({ maxConnections: 2 });
    const refusals: ConverseError[] = [];
    server.on('connectionError', (error) => refusals.push(error));
    const { clients } = await startClients(server, name, 2);

    const third = await startFixture('client', [name], { expectReady: false });
    expect(third.first).toMatchObject({ ready: false, code: 'SERVER_FULL' });
    // In-process too: the error is a ConverseError with that code.
    const error = await rejectionOf(connect(name));
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('SERVER_FULL');
    expect(refusals.map((e) => e.code)).toEqual(['SERVER_FULL', 'SERVER_FULL']);
    expect(server.connections.size).toBe(2);

    await clients[0]!.request({ op: 'close' });
    await waitUntil(() => server.connections.size === 1 && childIds(server).length === 1, 'a slot is free');
    const again = await startFixture('client', [name]);
    expect(await again.request({ op: 'ask', event: { type: 'add', a: 2, b: 3 } })).toMatchObject({ ok: true, value: 5 });
  });
});

describe('broadcast', () => {
  it('reaches every client process', async () => {
    const { name, server } = await startServer();
    const { clients } = await startClients(server, name, 3);
    await server.broadcast({ type: 'notify', text: 'hello, everyone' });
    await Promise.all(clients.map((client) => client.waitFor((line) => line.event === 'notify' && line.text === 'hello, everyone')));
    // And again: every client gets each broadcast once, in order.
    await server.broadcast({ type: 'notify', text: 'second' });
    for (const client of clients) {
      await client.waitFor((line) => line.event === 'notify' && line.text === 'second');
      expect(client.lines.filter((line) => line.event === 'notify').map((line) => line.text)).toEqual(['hello, everyone', 'second']);
    }
  });
});

describe('server.close()', () => {
  it('graceful: in-flight asks get their replies, new asks fail with CONNECTION_CLOSED at once, the socket file is removed', async () => {
    const { name, server, log } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 2);
    const serverSide = connectionOf(clients[0]!);

    // Six asks in flight, each handler taking 200 ms.
    const inFlight = clients.flatMap((client, c) =>
      [0, 1, 2].map((i) => client.request({ op: 'ask', event: { type: 'slow', ms: 200, value: `${c}:${i}` } })),
    );
    await waitUntil(() => log.running === 6, 'all six handlers are running');
    // A client that asks as soon as it learns the server is closing.
    const lateAsk = clients[1]!.request({ op: 'askWhenNotActive', event: { type: 'add', a: 1, b: 1 } });

    const closing = server.close();
    // A new ask made by the server after close started: rejected at once.
    const started = performance.now();
    const refused = await rejectionOf(serverSide.ask({ type: 'add', a: 1, b: 2 }, { timeout: 10_000 }));
    expect(refused).toBeInstanceOf(ConverseError);
    expect(refused.code).toBe('CONNECTION_CLOSED');
    expect(performance.now() - started).toBeLessThan(1000); // not after the 200 ms handlers, nor the 10 s timeout

    const replies = await Promise.all(inFlight);
    expect(replies.map((r) => r.value)).toEqual(['0:0', '0:1', '0:2', '1:0', '1:1', '1:2']);
    for (const reply of replies) expect(reply.ok).toBe(true);

    const late = await lateAsk;
    expect(late).toMatchObject({ ok: false, code: 'CONNECTION_CLOSED' });
    expect(late.elapsed).toBeLessThan(1000);

    await closing;
    expect(fs.existsSync(name)).toBe(false);
    expect(server.connections.size).toBe(0);
    expect(childIds(server)).toEqual([]);
    expect(server.actor.getSnapshot().status).toBe('done');
    await Promise.all(clients.map((client) => client.waitFor((line) => line.event === 'closed')));
    // Accepting is over.
    expect((await rejectionOf(server.accept())).code).toBe('CONNECTION_CLOSED');
  });

  it('close({ timeout }) cuts off a handler that never returns', async () => {
    const { name, server, log } = await startServer();
    const { clients } = await startClients(server, name, 1);
    const hung = clients[0]!.request({ op: 'ask', event: { type: 'hang' }, timeout: 20_000 });
    await waitUntil(() => log.started.includes('hang'), 'the handler started');

    const started = performance.now();
    await server.close({ timeout: 300 });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(3000); // the default close timeout is 5000 ms
    expect(await log.abortOf('hang')).toMatchObject({ type: 'hang' });
    expect(await hung).toMatchObject({ ok: false, code: 'CONNECTION_CLOSED' });
    expect(fs.existsSync(name)).toBe(false);
    expect(childIds(server)).toEqual([]);
  });

  it('close() with no connections resolves and removes the socket file; calling it twice is fine', async () => {
    const { name, server } = await startServer();
    expect(fs.existsSync(name)).toBe(true);
    await Promise.all([server.close(), server.close()]);
    expect(fs.existsSync(name)).toBe(false);
  });
});
