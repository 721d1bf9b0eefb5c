/**
 * Peers that die: a process killed with SIGKILL mid-ask fails the ask with CONNECTION_CLOSED at
 * once (never by waiting for the timeout), and the server drops only that connection's actor.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConverseError } from '../../src/index.js';
import { cleanup, rejectionOf, settle, waitUntil } from '../helpers/cleanup.js';
import { connectClient, startClients, startServer, startServerProcess } from '../helpers/scenario.js';
import { noticeDeadPeerWithin } from '../helpers/transport.js';

afterEach(cleanup);

describe('a peer process killed mid-ask', () => {
  it('a client killed while the server asks it: CONNECTION_CLOSED at once, its child actor is gone, others still served', async () => {
    const { name, server } = await startServer();
    const { clients, connectionOf } = await startClients(server, name, 3);
    const [victim, ...others] = clients as [typeof clients[0], ...typeof clients];
    const connection = connectionOf(victim);
    const id = connection.id;
    const actorId = connection.actor.id;
    expect(server.actor.getSnapshot().children[actorId]).toBe(connection.actor);

    const asked = settle(connection.ask({ type: 'hang' }, { timeout: 10_000 }));
    await victim.waitFor((line) => line.event === 'handling' && line.type === 'hang');
    const started = performance.now();
    await victim.kill('SIGKILL');
    const outcome = await asked;
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toBeInstanceOf(ConverseError);
    expect(outcome.error.code).toBe('CONNECTION_CLOSED');
    expect(outcome.at - started).toBeLessThan(noticeDeadPeerWithin(5000)); // not the 10 s timeout (generous: a busy machine is slow)

    await connection.closed;
    expect(connection.state).toBe('closed');
    await waitUntil(() => server.actor.getSnapshot().children[actorId] === undefined, 'the dead client’s child actor is gone');
    expect(server.connections.has(id)).toBe(false);
    expect(Object.keys(server.actor.getSnapshot().children)).toHaveLength(2);

    // The others are served both ways.
    for (const other of others) {
      expect(await other.request({ op: 'ask', event: { type: 'add', a: 1, b: 2 } })).toMatchObject({ ok: true, value: 3 });
      expect(await connectionOf(other).ask({ type: 'add', a: 3, b: 4 })).toBe(7);
    }
  });

  it('a client killed while its own asks run on the server: the handlers’ signals abort and the server carries on', async () => {
    const { name, server, log } = await startServer();
    const { clients } = await startClients(server, name, 2);
    clients[0]!.send({ op: 'ask', tag: 'x', event: { type: 'hang' }, timeout: 10_000 });
    await waitUntil(() => log.started.includes('hang'), 'the handler started');
    await clients[0]!.kill('SIGKILL');
    expect(await log.abortOf('hang')).toMatchObject({ type: 'hang' });
    expect(await clients[1]!.request({ op: 'ask', event: { type: 'add', a: 2, b: 2 } })).toMatchObject({ ok: true, value: 4 });
  });

  it('a server process killed while a client asks it: CONNECTION_CLOSED at once', async () => {
    const { name, process: serverProcess } = await startServerProcess();
    const connection = await connectClient(name);
    const asked = settle(connection.ask({ type: 'hang' }, { timeout: 10_000 }));
    await serverProcess.waitFor((line) => line.event === 'handling' && line.type === 'hang');
    const started = performance.now();
    await serverProcess.kill('SIGKILL');
    const outcome = await asked;
    expect(outcome.error?.code).toBe('CONNECTION_CLOSED');
    expect(outcome.at - started).toBeLessThan(noticeDeadPeerWithin(5000)); // not the 10 s timeout (generous: a busy machine is slow)
    await connection.closed;
    expect(connection.state).toBe('closed');
    expect(connection.closeReason?.code).toBe('CONNECTION_CLOSED');
    expect((await rejectionOf(connection.ask({ type: 'add', a: 1, b: 1 }))).code).toBe('CONNECTION_CLOSED');
  });
});
