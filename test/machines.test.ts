/**
 * The machines on their own, with stand-in transports: no sockets. This is the point of giving
 * the connection machine its transport in its input.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, type AnyActorRef } from 'xstate';
import {
  connectionMachine,
  supervisorMachine,
  type AcceptedSocketEvent,
  type ConnectionTransport,
  type SupervisorPort,
  type TransportCommand,
  type TransportEvent,
} from '../machines/index.js';
import { ConverseError } from '../src/errors.js';
import { ConnectionGroups } from '../machines/connection-groups.js';

class FakeTransport implements ConnectionTransport {
  send: ((event: TransportEvent) => void) | undefined;
  actor: AnyActorRef | undefined;
  /** The commands other than the deadline's, in order. */
  commands: TransportCommand['type'][] = [];
  /** The deadline the machine has armed (kept apart from `commands`): a stand-in never lets it expire by itself. */
  deadline: { deadline: string; timeout: number } | undefined;
  released = 0;
  attach(send: (event: TransportEvent) => void, actor: AnyActorRef): () => void {
    this.send = send;
    this.actor = actor;
    return () => (this.send = undefined);
  }
  command(command: TransportCommand): void {
    if (command.type === 'ARM_DEADLINE') {
      this.deadline = { deadline: command.deadline, timeout: command.timeout };
    } else if (command.type === 'DISARM_DEADLINE') this.deadline = undefined;
    else this.commands.push(command.type);
  }
  /** The armed deadline expires, as the real transport's deadline queue would make it. */
  expire(): void {
    const armed = this.deadline;
    if (armed === undefined) throw new Error('no deadline is armed');
    this.deadline = undefined;
    this.send!({ type: `DEADLINE.${armed.deadline}` } as TransportEvent);
  }
  release(): void {
    this.released++;
  }
}

class FakePending {
  size = 0;
  rejectedWith: ConverseError[] = [];
  rejectAll(error: ConverseError): void {
    this.rejectedWith.push(error);
  }
}

const actors: AnyActorRef[] = [];
afterEach(() => {
  for (const actor of actors.splice(0)) actor.stop();
});

function startConnection(overrides: { handshakeTimeout?: number; closeTimeout?: number } = {}) {
  const transport = new FakeTransport();
  const pending = new FakePending();
  const actor = createActor(connectionMachine, {
    input: { id: 'c1', role: 'client', transport, pending, handshakeTimeout: overrides.handshakeTimeout ?? 10_000, closeTimeout: overrides.closeTimeout ?? 10_000 },
  });
  actors.push(actor);
  actor.start();
  return { actor, transport, pending };
}

const handshakeOk: TransportEvent = { type: 'TRANSPORT.HANDSHAKE_SUCCEEDED', checksum: false, peerMaxMessageSize: 1024, peerVersion: 1 };

describe('connection machine', () => {
  it('starts in handshake, attached to its transport, and goes active on a successful handshake', () => {
    const { actor, transport } = startConnection();
    expect(actor.getSnapshot().value).toBe('handshake');
    expect(transport.send).toBeTypeOf('function');
    expect(transport.actor).toBe(actor);
    transport.send!(handshakeOk);
    expect(actor.getSnapshot().value).toBe('active');
    expect(actor.getSnapshot().context.handshake).toEqual({ checksum: false, peerMaxMessageSize: 1024, peerVersion: 1 });
  });

  it('arms the handshake deadline on start and disarms it once the handshake is done', () => {
    const { transport } = startConnection({ handshakeTimeout: 30 });
    expect(transport.deadline).toEqual({ deadline: 'HANDSHAKE', timeout: 30 });
    transport.send!(handshakeOk);
    expect(transport.deadline).toBeUndefined();
  });

  it('closes with HANDSHAKE_FAILED when the handshake deadline expires', () => {
    const { actor, pending, transport } = startConnection({ handshakeTimeout: 30 });
    transport.expire();
    const snapshot = actor.getSnapshot();
    expect(snapshot.value).toBe('closed');
    expect(snapshot.status).toBe('done');
    expect(snapshot.context.error?.code).toBe('HANDSHAKE_FAILED');
    expect(snapshot.context.error?.message).toContain('within 30 ms (handshakeTimeout)');
    expect(pending.rejectedWith[0]?.code).toBe('HANDSHAKE_FAILED');
    expect(transport.released).toBe(1); // reaching the final state stops the transport
  });

  it('records a failed handshake and closes', () => {
    const { actor, transport } = startConnection();
    transport.send!({ type: 'TRANSPORT.HANDSHAKE_FAILED', error: new ConverseError('VERSION_MISMATCH', 'v2') });
    expect(actor.getSnapshot().value).toBe('closed');
    expect(actor.getSnapshot().context.error?.code).toBe('VERSION_MISMATCH');
  });

  it('closes gracefully: goodbye, drain, end, then closed when the socket closes', () => {
    const { actor, transport, pending } = startConnection();
    transport.send!(handshakeOk);
    actor.send({ type: 'CLOSE' });
    expect(actor.getSnapshot().value).toBe('closing');
    expect(transport.commands).toEqual(['SEND_GOODBYE', 'WATCH_DRAIN']);
    // Drained before the peer said goodbye: the guard holds the end back.
    transport.send!({ type: 'TRANSPORT.DRAINED' });
    expect(transport.commands).not.toContain('END');
    transport.send!({ type: 'TRANSPORT.PEER_GOODBYE' });
    expect(transport.commands.at(-1)).toBe('WATCH_DRAIN');
    transport.send!({ type: 'TRANSPORT.DRAINED' });
    expect(transport.commands.at(-1)).toBe('END');
    transport.send!({ type: 'TRANSPORT.CLOSED' });
    expect(actor.getSnapshot().value).toBe('closed');
    expect(actor.getSnapshot().context.error).toBeUndefined();
    expect(pending.rejectedWith[0]?.code).toBe('CONNECTION_CLOSED');
  });

  it('enters closing when the peer says goodbye first', () => {
    const { actor, transport } = startConnection();
    transport.send!(handshakeOk);
    transport.send!({ type: 'TRANSPORT.PEER_GOODBYE' });
    expect(actor.getSnapshot().value).toBe('closing');
    expect(actor.getSnapshot().context.peerSaidGoodbye).toBe(true);
    expect(transport.commands).toEqual(['SEND_GOODBYE', 'WATCH_DRAIN']);
  });

  it('cuts a close off when the close deadline, armed with the timeout given to CLOSE, expires', () => {
    const { actor, transport } = startConnection();
    transport.send!(handshakeOk);
    expect(transport.deadline).toBeUndefined(); // none while active
    actor.send({ type: 'CLOSE', timeout: 30 });
    expect(transport.deadline).toEqual({ deadline: 'CLOSE', timeout: 30 });
    transport.expire();
    expect(actor.getSnapshot().value).toBe('closed');
    expect(actor.getSnapshot().context.error?.code).toBe('CONNECTION_CLOSED');
    expect(actor.getSnapshot().context.error?.message).toContain('within 30 ms');
    expect(transport.released).toBe(1);
  });

  it('arms the close deadline with closeTimeout when the peer starts closing, and disarms it when closing ends otherwise', () => {
    const { actor, transport } = startConnection({ closeTimeout: 250 });
    transport.send!(handshakeOk);
    transport.send!({ type: 'TRANSPORT.PEER_GOODBYE' });
    expect(transport.deadline).toEqual({ deadline: 'CLOSE', timeout: 250 });
    transport.send!({ type: 'TRANSPORT.CLOSED' });
    expect(actor.getSnapshot().value).toBe('closed');
    expect(actor.getSnapshot().context.error).toBeUndefined();
    expect(transport.deadline).toBeUndefined();
  });

  it('passes Infinity on (the transport arms nothing for it) and ignores a deadline event of another state', () => {
    const { actor, transport } = startConnection({ handshakeTimeout: Infinity, closeTimeout: Infinity });
    expect(transport.deadline).toEqual({ deadline: 'HANDSHAKE', timeout: Infinity });
    transport.send!(handshakeOk);
    transport.send!({ type: 'DEADLINE.HANDSHAKE' });
    transport.send!({ type: 'DEADLINE.CLOSE' });
    expect(actor.getSnapshot().value).toBe('active');
    actor.send({ type: 'CLOSE' });
    expect(transport.deadline).toEqual({ deadline: 'CLOSE', timeout: Infinity });
    transport.send!({ type: 'DEADLINE.HANDSHAKE' });
    expect(actor.getSnapshot().value).toBe('closing');
  });

  it('detaches and releases its transport once however it stops: final state, or stopped before it', () => {
    const done = startConnection();
    done.transport.send!(handshakeOk);
    done.actor.send({ type: 'DESTROY' });
    expect(done.transport.send).toBeUndefined(); // detached
    expect(done.transport.released).toBe(1);

    const stopped = startConnection();
    stopped.transport.send!(handshakeOk);
    expect(stopped.transport.released).toBe(0);
    stopped.actor.send({ type: 'CLOSE' });
    expect(stopped.transport.deadline?.deadline).toBe('CLOSE');
    stopped.actor.stop(); // as a parent's stopChild does: no final state, no exit actions
    expect(stopped.transport.send).toBeUndefined();
    expect(stopped.transport.released).toBe(1);
    expect(stopped.transport.commands).toEqual(['SEND_GOODBYE', 'WATCH_DRAIN']);
    // No exit action disarmed the deadline: the transport's release must (ConnectionCore.release does).
    expect(stopped.transport.deadline?.deadline).toBe('CLOSE');
  });

  it('goes straight to closed when the transport fails or the socket drops', () => {
    const a = startConnection();
    a.transport.send!(handshakeOk);
    a.transport.send!({ type: 'TRANSPORT.FAILED', error: new ConverseError('DECODE_FAILED', 'bad') });
    expect(a.actor.getSnapshot().value).toBe('closed');
    expect(a.actor.getSnapshot().context.error?.code).toBe('DECODE_FAILED');
    expect(a.pending.rejectedWith[0]?.code).toBe('DECODE_FAILED');

    const b = startConnection();
    b.transport.send!(handshakeOk);
    b.actor.send({ type: 'DESTROY' });
    expect(b.actor.getSnapshot().value).toBe('closed');
  });
});

function fakeSocketEvent(id: string, identity?: number | string): { event: AcceptedSocketEvent; transport: FakeTransport } {
  const transport = new FakeTransport();
  return {
    transport,
    event: {
      type: 'SOCKET.ACCEPTED',
      connectionId: id,
      identity,
      input: { id, role: 'server', transport, pending: new FakePending(), handshakeTimeout: 10_000, closeTimeout: 10_000 },
    },
  };
}

function startSupervisor(input: { maxConnections?: number; maxConnectionsPerPeer?: number; groupSize?: number; closeTimeout?: number } = {}) {
  const calls: string[] = [];
  const port: SupervisorPort = {
    refuse: (event, code, why) => calls.push(`refuse:${event.connectionId}:${code}${why === 'perPeer' ? ':perPeer' : ''}`),
    stopAccepting: () => calls.push('stopAccepting'),
    closeAllConnections: (timeout) => calls.push(`closeAll:${timeout}`),
    destroyAllConnections: () => calls.push('destroyAll'),
  };
  const actor = createActor(supervisorMachine, {
    input: {
      port,
      maxConnections: input.maxConnections ?? 100,
      maxConnectionsPerPeer: input.maxConnectionsPerPeer,
      closeTimeout: input.closeTimeout ?? 10_000,
      groupSize: input.groupSize,
    },
  });
  actors.push(actor);
  actor.start();
  return { actor, calls };
}

describe('supervisor machine', () => {
  it('spawns one child per accepted socket and reaps it when its connection closes', () => {
    const { actor } = startSupervisor();
    const a = fakeSocketEvent('a');
    const b = fakeSocketEvent('b');
    actor.send(a.event);
    actor.send(b.event);
    expect(Object.keys(actor.getSnapshot().children).sort()).toEqual(['a', 'b']);
    expect(actor.getSnapshot().context.live).toBe(2);
    // Connection a closes: its child leaves the supervisor.
    a.transport.send!({ type: 'TRANSPORT.CLOSED' });
    expect(Object.keys(actor.getSnapshot().children)).toEqual(['b']);
    expect(actor.getSnapshot().context.live).toBe(1);
    expect(a.transport.released).toBe(1);
  });

  it('refuses past maxConnections with SERVER_FULL', () => {
    const { actor, calls } = startSupervisor({ maxConnections: 1 });
    actor.send(fakeSocketEvent('a').event);
    actor.send(fakeSocketEvent('b').event);
    expect(calls).toContain('refuse:b:SERVER_FULL');
    expect(Object.keys(actor.getSnapshot().children)).toEqual(['a']);
    expect(actor.getSnapshot().context.refused).toBe(1);
  });

  it('counts per-identity slots only for spawned children and gives them back when they are reaped (direct and grouped)', () => {
    const { actor, calls } = startSupervisor({ maxConnections: 4, maxConnectionsPerPeer: 2, groupSize: 1 });
    const slots = () => actor.getSnapshot().context.identitySlots;
    const a = fakeSocketEvent('a', 1000);
    const b = fakeSocketEvent('b', 1000); // grouped (groupSize 1)
    actor.send(a.event);
    actor.send(b.event);
    actor.send(fakeSocketEvent('c', 1000).event); // past the per-uid limit
    expect(calls).toEqual(['refuse:c:SERVER_FULL:perPeer']);
    const others = ['d', 'e', 'f'].map((id) => fakeSocketEvent(id, 2000));
    for (const o of others) actor.send(o.event);
    expect(calls.slice(1)).toEqual(['refuse:f:SERVER_FULL:perPeer']);
    // At capacity (4): every further socket is refused, from any uid, and takes nothing.
    for (let i = 0; i < 5; i++) actor.send(fakeSocketEvent(`x${i}`, 3000 + (i % 2)).event);
    expect(calls.filter((c) => c.endsWith(':SERVER_FULL'))).toHaveLength(5);
    expect([slots().countOf(1000), slots().countOf(2000), slots().countOf(3000), slots().held]).toEqual([2, 2, 0, 4]);
    for (const s of [a, b, ...others.slice(0, 2)]) s.transport.send!({ type: 'TRANSPORT.CLOSED' });
    expect(actor.getSnapshot().context.live).toBe(0);
    expect([slots().users, slots().held]).toEqual([0, 0]);
    // Nobody was locked out: the same users get their full share again.
    for (const id of ['g', 'h']) actor.send(fakeSocketEvent(id, 1000).event);
    expect(slots().countOf(1000)).toBe(2);
    expect(actor.getSnapshot().context.refused).toBe(7);
  });

  it('groups connections past groupSize under intermediate supervisors, and stops emptied groups', () => {
    const { actor } = startSupervisor({ groupSize: 2 });
    const sockets = ['a', 'b', 'c', 'd', 'e'].map(fakeSocketEvent);
    for (const s of sockets) actor.send(s.event);
    const children = actor.getSnapshot().children as Record<string, AnyActorRef>;
    expect(Object.keys(children).sort()).toEqual(['a', 'b', 'group-0', 'group-1']);
    expect(Object.keys(children['group-0']!.getSnapshot().children).sort()).toEqual(['c', 'd']);
    expect(Object.keys(children['group-1']!.getSnapshot().children)).toEqual(['e']);
    expect(actor.getSnapshot().context.live).toBe(5);
    sockets[4]!.transport.send!({ type: 'TRANSPORT.CLOSED' });
    expect(Object.keys(actor.getSnapshot().children).sort()).toEqual(['a', 'b', 'group-0']);
    expect(actor.getSnapshot().context.live).toBe(4);
    // A group that regains room takes the next connection; a full one does not.
    sockets[2]!.transport.send!({ type: 'TRANSPORT.CLOSED' });
    const f = fakeSocketEvent('f');
    actor.send(f.event);
    const after = actor.getSnapshot().children as Record<string, AnyActorRef>;
    expect(Object.keys(after).sort()).toEqual(['a', 'b', 'group-0']);
    expect(Object.keys(after['group-0']!.getSnapshot().children).sort()).toEqual(['d', 'f']);
    const g = fakeSocketEvent('g');
    actor.send(g.event);
    expect(Object.keys(actor.getSnapshot().children).sort()).toEqual(['a', 'b', 'group-0', 'group-2']);
    expect(actor.getSnapshot().context.groups.count).toBe(2);
    expect(actor.getSnapshot().context.live).toBe(5);
  });

  it('keeps its group table in step: room, new groups, emptied groups forgotten', () => {
    const groups = new ConnectionGroups(2);
    expect(groups.next()).toEqual({ id: 'group-0', isNew: true });
    groups.join('group-0');
    expect(groups.next()).toEqual({ id: 'group-0', isNew: false });
    groups.join('group-0');
    expect(groups.next()).toEqual({ id: 'group-1', isNew: true });
    groups.join('group-1');
    groups.leave('group-0');
    expect(groups.countOf('group-0')).toBe(1);
    expect(groups.next()).toEqual({ id: 'group-1', isNew: false }); // the older group with room first
    groups.leave('group-1');
    expect(groups.countOf('group-1')).toBe(0);
    expect(groups.count).toBe(1);
    expect(groups.next()).toEqual({ id: 'group-0', isNew: false });
    groups.leave('group-0');
    groups.leave('group-0'); // a group already gone: nothing
    expect(groups.count).toBe(0);
    expect(groups.next()).toEqual({ id: 'group-2', isNew: true }); // ids are never reused
  });

  it('drains on CLOSE: stops accepting, closes connections, ends when the last one is gone', () => {
    const { actor, calls } = startSupervisor();
    const a = fakeSocketEvent('a');
    actor.send(a.event);
    actor.send({ type: 'CLOSE', timeout: 1234 });
    expect(actor.getSnapshot().value).toBe('draining');
    expect(calls).toEqual(['stopAccepting', 'closeAll:1234']);
    actor.send(fakeSocketEvent('late').event);
    expect(calls).toContain('refuse:late:CONNECTION_CLOSED');
    a.transport.send!({ type: 'TRANSPORT.CLOSED' });
    expect(actor.getSnapshot().value).toBe('closed');
    expect(actor.getSnapshot().status).toBe('done');
  });

  it('cuts off connections still open after the close timeout', async () => {
    const { actor, calls } = startSupervisor();
    actor.send(fakeSocketEvent('a').event);
    actor.send({ type: 'CLOSE', timeout: 30 });
    await new Promise((r) => setTimeout(r, 80));
    expect(calls).toContain('destroyAll');
  });
});
