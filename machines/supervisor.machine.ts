import { assign, enqueueActions, sendParent, setup, stopChild, type ActorRefFrom } from 'xstate';
import { connectionMachine, type ConnectionInput } from './connection.machine.js';
import { ConnectionGroups } from './connection-groups.js';
import { IdentitySlots, type PeerIdentity } from './identity-slots.js';

/**
 * The server's supervisor: the root of its supervision tree.
 *
 * listening → draining → closed. It spawns one `connection` child per accepted socket, reaps
 * the child when its machine reaches `closed`, refuses peers the server's access policy denied
 * (ACCESS_DENIED), refuses a peer identity (uid, certificate) past `maxConnectionsPerPeer` and any socket past
 * `maxConnections` (SERVER_FULL), and drives graceful shutdown (stop accepting, ask every
 * connection to close, cut off stragglers after the close timeout).
 *
 * Admission is decided and counted here, in one place: the total (`live`) and the per-identity slots
 * (`identitySlots`) are taken only when a child is spawned and given back only when it is reaped, so
 * a refused socket can never use up anyone's share.
 *
 * Spawning into one XState parent copies its `children` object, so a spawn costs time in
 * proportion to the children already there (../shared/notes/xstate.md §2.4). The first
 * `groupSize` (100) connections are direct children; past that, connections go to
 * intermediate `connectionGroup` supervisors of up to `groupSize` children each, which keeps
 * every spawn and stop O(groupSize) however many clients connect.
 *
 * Accepted sockets arrive as `SOCKET.ACCEPTED` events from the server's listening socket; side
 * effects reach the outside world through `context.port`, the server's plain-code registry. The
 * supervisor has no other children, so `children` holds exactly the connections (and groups).
 */

/** What the supervisor needs from the server around it. */
export interface SupervisorPort {
  /** Answer a socket with a REJECT and close it; `why` says which limit or rule refused it. */
  refuse(accepted: AcceptedSocketEvent, code: RefusalCode, why: RefusalReason): void;
  stopAccepting(): void;
  /** Ask every live connection to close gracefully (each gets `timeout` ms). */
  closeAllConnections(timeout: number): void;
  /** Cut off every connection still open. */
  destroyAllConnections(): void;
}

export type RefusalCode = 'SERVER_FULL' | 'ACCESS_DENIED' | 'CONNECTION_CLOSED';
/** policy: the access policy; perPeer: maxConnectionsPerPeer; total: maxConnections; draining: shutting down. */
export type RefusalReason = 'policy' | 'perPeer' | 'total' | 'draining';

/** The server reports each accepted socket with the input for its connection machine. */
export interface AcceptedSocketEvent {
  type: 'SOCKET.ACCEPTED';
  connectionId: string;
  input: ConnectionInput;
  /**
   * What the transport verified about the peer: its uid on a local socket, its certificate's
   * fingerprint over TLS; undefined where there is none (not counted per peer).
   */
  identity?: PeerIdentity;
  /**
   * Set when the server's access policy (allowUids, allow) refused this peer; decided in plain
   * code so that user predicates never run inside a transition.
   */
  refusal?: 'ACCESS_DENIED';
}


/** Connections per intermediate group (and direct children of the supervisor). */
const DEFAULT_GROUP_SIZE = 100;

export interface SupervisorInput {
  port: SupervisorPort;
  maxConnections: number;
  /** @default Infinity */
  maxConnectionsPerPeer?: number;
  closeTimeout: number;
  groupSize?: number;
}

export interface SupervisorContext {
  port: SupervisorPort;
  maxConnections: number;
  closeTimeout: number;
  groupSize: number;
  /** Live connections (any state short of closed), direct and grouped. */
  live: number;
  /** Live connections per peer identity (taken at spawn, given back at reap). */
  identitySlots: IdentitySlots;
  /** Connections that are direct children. */
  direct: number;
  /** The intermediate groups and their live connections (a plain table the actions mutate). */
  groups: ConnectionGroups;
  /** Totals since start, for dashboards. */
  accepted: number;
  refused: number;
}

export type SupervisorEvent =
  | AcceptedSocketEvent
  | { type: 'CLOSE'; timeout?: number }
  | { type: 'GROUP.CONNECTION_ENDED'; groupId: string; connectionId: string }
  | { type: `xstate.done.actor.${string}`; actorId?: string }
  | { type: `xstate.error.actor.${string}`; actorId?: string };

/** An intermediate supervisor holding up to `groupSize` connections. */
export const connectionGroupMachine = setup({
  types: {
    context: {} as { live: number },
    events: {} as
      | { type: 'CONNECTION.ADD'; connectionId: string; input: ConnectionInput }
      | { type: `xstate.done.actor.${string}`; actorId?: string }
      | { type: `xstate.error.actor.${string}`; actorId?: string },
  },
  actors: { connection: connectionMachine },
  actions: {
    spawnConnection: enqueueActions(({ enqueue, event }) => {
      if (event.type !== 'CONNECTION.ADD') return;
      enqueue.spawnChild('connection', { id: event.connectionId, input: event.input });
    }),
    reapConnection: enqueueActions(({ enqueue, event, self }) => {
      const id = childIdOf(event);
      if (id === undefined) return;
      enqueue(stopChild(id));
      enqueue(sendParent({ type: 'GROUP.CONNECTION_ENDED', groupId: self.id, connectionId: id }));
    }),
    // Counted in place (see the supervisor's `admit`): an assign would copy context and snapshot on every accept.
    countIn: ({ context }) => void context.live++,
    countOut: ({ context, event }) => {
      if (childIdOf(event) !== undefined) context.live--;
    },
  },
}).createMachine({
  id: 'connectionGroup',
  context: { live: 0 },
  on: {
    'CONNECTION.ADD': { actions: ['spawnConnection', 'countIn'] },
    'xstate.done.actor.*': { actions: ['reapConnection', 'countOut'] },
    'xstate.error.actor.*': { actions: ['reapConnection', 'countOut'] },
  },
});

export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    input: {} as SupervisorInput,
  },
  actors: {
    connection: connectionMachine,
    connectionGroup: connectionGroupMachine,
  },
  delays: {
    // Infinity means no timeout: the longest timer Node honours is armed, and its guard finds nothing to do.
    closeTimeout: ({ context }) => Math.min(context.closeTimeout, 2 ** 31 - 1),
  },
  guards: {
    closeTimeoutFinite: ({ context }) => context.closeTimeout !== Infinity,
    atCapacity: ({ context }) => context.live >= context.maxConnections,
    refusedByPolicy: ({ event }) => event.type === 'SOCKET.ACCEPTED' && event.refusal !== undefined,
    peerAtLimit: ({ context, event }) => event.type === 'SOCKET.ACCEPTED' && context.identitySlots.full(event.identity),
    allConnectionsEnded: ({ context }) => context.live === 0,
  },
  actions: {
    /** One child per socket: a direct child while there is room, else in a group with room. */
    spawnConnection: enqueueActions(({ context, enqueue, event }) => {
      if (event.type !== 'SOCKET.ACCEPTED') return;
      if (context.direct < context.groupSize) {
        enqueue.spawnChild('connection', { id: event.connectionId, input: event.input });
        return;
      }
      const group = context.groups.next();
      if (group.isNew) enqueue.spawnChild('connectionGroup', { id: group.id });
      enqueue.sendTo(group.id, { type: 'CONNECTION.ADD', connectionId: event.connectionId, input: event.input });
    }),
    /**
     * The admission counts and tables are updated in place, by these actions only. They change
     * on every accept and reap, and an assign would copy the context and the snapshot each time
     * (about a tenth of an accept's cost); the snapshot's `context` is the same object throughout,
     * so it always reads the current counts.
     */
    admit: ({ context, event }) => {
      if (event.type !== 'SOCKET.ACCEPTED') return;
      context.identitySlots.take(event.connectionId, event.identity);
      // The same choice spawnConnection just made (nothing has changed since).
      if (context.direct < context.groupSize) context.direct++;
      else context.groups.join(context.groups.next().id);
      context.live++;
      context.accepted++;
    },
    refuseByPolicy: ({ context, event }) => {
      if (event.type === 'SOCKET.ACCEPTED' && event.refusal !== undefined) context.port.refuse(event, event.refusal, 'policy');
    },
    refusePeerAtLimit: ({ context, event }) => {
      if (event.type === 'SOCKET.ACCEPTED') context.port.refuse(event, 'SERVER_FULL', 'perPeer');
    },
    refuseServerFull: ({ context, event }) => {
      if (event.type === 'SOCKET.ACCEPTED') context.port.refuse(event, 'SERVER_FULL', 'total');
    },
    refuseDraining: ({ context, event }) => {
      if (event.type === 'SOCKET.ACCEPTED') context.port.refuse(event, 'CONNECTION_CLOSED', 'draining');
    },
    countRefused: ({ context }) => void context.refused++,
    /** A direct connection child finished: stop it (it leaves `children`) and count it out. */
    reapConnection: enqueueActions(({ enqueue, event }) => {
      const id = childIdOf(event);
      if (id === undefined || id.startsWith('group-')) return;
      enqueue(stopChild(id));
    }),
    releaseDirect: ({ context, event }) => {
      const id = childIdOf(event);
      if (id === undefined || id.startsWith('group-')) return;
      context.identitySlots.give(id);
      context.direct--;
      context.live--;
    },
    /** A grouped connection finished; an emptied group is stopped. */
    countGroupedEnd: enqueueActions(({ context, enqueue, event }) => {
      if (event.type !== 'GROUP.CONNECTION_ENDED') return;
      if (context.groups.countOf(event.groupId) <= 1) enqueue(stopChild(event.groupId));
    }),
    releaseGrouped: ({ context, event }) => {
      if (event.type !== 'GROUP.CONNECTION_ENDED') return;
      context.groups.leave(event.groupId);
      context.identitySlots.give(event.connectionId);
      context.live--;
    },
    setCloseTimeout: assign({
      closeTimeout: ({ context, event }) => (event.type === 'CLOSE' && event.timeout !== undefined ? event.timeout : context.closeTimeout),
    }),
    stopAccepting: ({ context }) => context.port.stopAccepting(),
    closeAllConnections: ({ context }) => context.port.closeAllConnections(context.closeTimeout),
    destroyAllConnections: ({ context }) => context.port.destroyAllConnections(),
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => ({
    port: input.port,
    maxConnections: input.maxConnections,
    closeTimeout: input.closeTimeout,
    groupSize: input.groupSize ?? DEFAULT_GROUP_SIZE,
    live: 0,
    identitySlots: new IdentitySlots(input.maxConnectionsPerPeer ?? Infinity),
    direct: 0,
    groups: new ConnectionGroups(input.groupSize ?? DEFAULT_GROUP_SIZE),
    accepted: 0,
    refused: 0,
  }),
  on: {
    'xstate.done.actor.*': { actions: ['reapConnection', 'releaseDirect'] },
    'xstate.error.actor.*': { actions: ['reapConnection', 'releaseDirect'] },
    'GROUP.CONNECTION_ENDED': { actions: ['countGroupedEnd', 'releaseGrouped'] },
  },
  initial: 'listening',
  states: {
    listening: {
      on: {
        'SOCKET.ACCEPTED': [
          { guard: 'refusedByPolicy', actions: ['refuseByPolicy', 'countRefused'] },
          { guard: 'peerAtLimit', actions: ['refusePeerAtLimit', 'countRefused'] },
          { guard: 'atCapacity', actions: ['refuseServerFull', 'countRefused'] },
          { actions: ['spawnConnection', 'admit'] },
        ],
        CLOSE: { target: 'draining', actions: 'setCloseTimeout' },
      },
    },
    draining: {
      entry: ['stopAccepting', 'closeAllConnections'],
      always: { guard: 'allConnectionsEnded', target: 'closed' },
      after: {
        closeTimeout: { guard: 'closeTimeoutFinite', actions: 'destroyAllConnections' },
      },
      on: {
        'SOCKET.ACCEPTED': { actions: ['refuseDraining', 'countRefused'] },
      },
    },
    closed: {
      type: 'final',
    },
  },
});

export type SupervisorMachine = typeof supervisorMachine;
export type SupervisorActorRef = ActorRefFrom<SupervisorMachine>;

function childIdOf(event: { type: string; actorId?: string }): string | undefined {
  if (event.actorId !== undefined) return event.actorId;
  const match = /^xstate\.(?:done|error)\.actor\.(.+)$/.exec(event.type);
  return match?.[1];
}
