/**
 * A connection's lifecycle and what it exposes: close / destroy / closed, state and its actor,
 * and the peer's kernel-reported credentials.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConverseError, peerCredentialsSupported } from '../../src/index.js';
import { cleanup, rejectionOf, waitUntil } from '../helpers/cleanup.js';
import { connectClient, startClients, startServer, startServerProcess } from '../helpers/scenario.js';

afterEach(cleanup);

/** Record every top-level state the connection's actor goes through. */
function recordStates(connection: { actor: { subscribe(fn: (snapshot: { value: unknown }) => void): unknown; getSnapshot(): { value: unknown } } }): string[] {
  const states = [String(connection.actor.getSnapshot().value)];
  connection.actor.subscribe((snapshot) => {
    const value = String(snapshot.value);
    if (states.at(-1) !== value) states.push(value);
  });
  return states;
}

describe('close()', () => {
  it('graceful from the client: active → closing → closed on both sides; closed settles; the actor’s value is the state', async () => {
    const { name, server } = await startServer();
    const client = await connectClient(name);
    const serverSide = await server.accept();
    expect(client.state).toBe('active');
    expect(client.actor.getSnapshot().value).toBe('active');
    expect(serverSide.actor.getSnapshot().value).toBe(serverSide.state);

    const clientStates = recordStates(client);
    const serverStates = recordStates(serverSide);
    const closing = client.close();
    expect(client.state).toBe('closing');
    expect(client.actor.getSnapshot().value).toBe('closing');
    await closing;
    await expect(client.closed).resolves.toBeUndefined();
    await serverSide.closed;

    expect(client.state).toBe('closed');
    expect(client.actor.getSnapshot().value).toBe('closed');
    expect(client.actor.getSnapshot().status).toBe('done');
    expect(serverSide.state).toBe('closed');
    expect(serverSide.actor.getSnapshot().value).toBe('closed');
    expect(clientStates).toEqual(['active', 'closing', 'closed']);
    expect(serverStates).toEqual(['active', 'closing', 'closed']);
    // A clean close has no error.
    expect(client.closeReason).toBeUndefined();
    expect(serverSide.closeReason).toBeUndefined();

    // Everything after close fails with CONNECTION_CLOSED.
    expect((await rejectionOf(client.ask({ type: 'add', a: 1, b: 1 }))).code).toBe('CONNECTION_CLOSED');
    expect((await rejectionOf(client.tell({ type: 'log', line: 'x' }))).code).toBe('CONNECTION_CLOSED');
    expect((await rejectionOf(client.send({ type: 'add', a: 1, b: 1 }))).code).toBe('CONNECTION_CLOSED');
    // close() again is harmless.
    await client.close();
  });

  it('graceful close lets asks already sent finish, both directions', async () => {
    const { name, server } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 1);
    const connection = connectionOf(clients[0]!);
    const fromClient = clients[0]!.request({ op: 'ask', event: { type: 'slow', ms: 200, value: 'c' } });
    const fromServer = connection.ask({ type: 'slow', ms: 200, value: 's' });
    await waitUntil(() => connection.stats.messagesIn >= 1, 'the client’s ask arrived');
    const closing = connection.close();
    expect(await fromServer).toBe('s');
    expect(await fromClient).toMatchObject({ ok: true, value: 'c' });
    await closing;
    expect(connection.state).toBe('closed');
    await clients[0]!.waitFor((line) => line.event === 'closed');
  });
});

describe('destroy()', () => {
  it('closes at once: pending asks reject with CONNECTION_CLOSED, closed resolves (never rejects), the peer sees the close', async () => {
    const { name, server } = await startServer();
    const client = await connectClient(name);
    const serverSide = await server.accept();
    const pending = client.ask({ type: 'hang' }, { timeout: 10_000 });
    await waitUntil(() => serverSide.stats.messagesIn >= 1, 'the ask arrived');
    const states = recordStates(client);
    const started = performance.now();
    client.destroy(new ConverseError('ACCESS_DENIED', 'go away'));
    const error = await rejectionOf(pending);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(error.code).toBe('CONNECTION_CLOSED');
    await expect(client.closed).resolves.toBeUndefined();
    expect(client.state).toBe('closed');
    expect(states).toEqual(['active', 'closed']);
    expect(client.actor.getSnapshot().value).toBe('closed');
    await serverSide.closed;
    expect(serverSide.state).toBe('closed');
    client.destroy(); // again: harmless
  });

  it('a server-side destroy() rejects the client process’s pending ask with CONNECTION_CLOSED', async () => {
    const { name, server } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 1);
    const connection = connectionOf(clients[0]!);
    const asked = clients[0]!.request({ op: 'ask', event: { type: 'hang' }, timeout: 10_000 });
    await waitUntil(() => connection.stats.messagesIn >= 1, 'the ask arrived');
    connection.destroy();
    await expect(connection.closed).resolves.toBeUndefined();
    const result = await asked;
    expect(result).toMatchObject({ ok: false, code: 'CONNECTION_CLOSED' });
    expect(result.elapsed).toBeLessThan(2000);
  });
});

describe('peer credentials', () => {
  it.runIf(process.platform === 'linux' && peerCredentialsSupported)('name the client process on the server side and the server process on the client side', async () => {
    const { name, server } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 1);
    expect(connectionOf(clients[0]!).peer).toEqual({ pid: clients[0]!.pid, uid: process.getuid!(), gid: process.getgid!() });
    // What the client process saw of us.
    expect(clients[0]!.first.peer).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });

    const remote = await startServerProcess();
    const client = await connectClient(remote.name);
    expect(client.peer).toEqual({ pid: remote.process.pid, uid: process.getuid!(), gid: process.getgid!() });
  });
});
