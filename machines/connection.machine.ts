import { assign, enqueueActions, fromCallback, setup, type ActorRefFrom, type AnyActorRef } from 'xstate';
import { ConverseError } from '../src/errors.js';

/**
 * The life of one connection, on either side: handshake → active → closing → closed.
 *
 * The machine owns the lifecycle and the protocol phases; it does not see individual messages.
 * Framing, correlation and dispatch are plain code in the connection's transport (see
 * `src/connection/core.ts`), which reports lifecycle facts to this machine as `TRANSPORT.*`
 * events and takes commands from it. The transport is an object the machine is *given* in its
 * input, so the machine can be run, tested and visualised with a stand-in: the machine attaches
 * it when it starts, calls it from named actions, and releases it when it stops. (It is plain
 * code, not an invoked actor: a second actor per connection cost about 2 KB and its spawn.)
 *
 * The context owns the lifecycle facts (the phase is the state; why it closed is `error`; who
 * said goodbye); the transport reads them from the snapshot and keeps no copy.
 *
 * The handshake and close deadlines are armed and disarmed by the machine (entry and exit actions
 * of `handshake` and `closing`) but kept by the transport, which sends `DEADLINE.HANDSHAKE` or
 * `DEADLINE.CLOSE` when one expires: not as `after` transitions, because XState's scheduler walks
 * every delayed event of the actor system whenever any actor stops, which made stopping N
 * handshaking or closing connections cost O(N²) (see `src/connection/deadline-queue.ts`).
 *
 * The pending-reply table is in `context.pending`. It is a reference to a plain table the
 * transport fills on every ask; the machine never copies it, and rejects everything left in it
 * when the connection reaches `closed`.
 */

/** What a connection's transport must offer the machine (implemented by `ConnectionCore`, src/connection/core.ts). */
export interface ConnectionTransport {
  /**
   * Start the I/O (and the handshake) and report lifecycle facts through `send` (the actor's own
   * `send`); `actor` is the connection actor itself. Called once, when the actor starts. Returns a
   * detach function, called (before `release`) when the actor stops.
   */
  attach(send: (event: TransportEvent) => void, actor: AnyActorRef): () => void;
  /** The actor moved to another state, short of its final one (each new snapshot's value, in order). */
  stateChanged?(state: ConnectionState): void;
  /** Carry out a command from the machine. */
  command(command: TransportCommand): void;
  /** The actor stopped (it reached `closed`, was stopped, or failed): destroy the socket and release everything still held. */
  release(): void;
}

/** The pending-reply table, as far as the machine needs it. */
export interface PendingTable {
  readonly size: number;
  rejectAll(error: ConverseError): void;
}

export interface HandshakeResult {
  /** Per-frame CRC-32 agreed for this connection. */
  checksum: boolean;
  /** The largest message body the peer accepts. */
  peerMaxMessageSize: number;
  /** The peer's protocol version. */
  peerVersion: number;
}

export type TransportEvent =
  | ({ type: 'TRANSPORT.HANDSHAKE_SUCCEEDED' } & HandshakeResult)
  | { type: 'TRANSPORT.HANDSHAKE_FAILED'; error: ConverseError }
  | { type: 'TRANSPORT.PEER_GOODBYE' }
  | { type: 'TRANSPORT.DRAINED' }
  | { type: 'TRANSPORT.FAILED'; error: ConverseError }
  | { type: 'TRANSPORT.CLOSED'; error?: ConverseError }
  /** The deadline armed with ARM_DEADLINE expired (never sent after DISARM_DEADLINE or another ARM_DEADLINE). */
  | { type: 'DEADLINE.HANDSHAKE' }
  | { type: 'DEADLINE.CLOSE' };

/** A deadline the transport keeps for the machine: its expiry comes back as `DEADLINE.<deadline>`. */
export type DeadlineKind = 'HANDSHAKE' | 'CLOSE';

export type TransportCommand =
  | { type: 'SEND_GOODBYE' }
  | { type: 'WATCH_DRAIN' }
  | { type: 'END' }
  /** Send `DEADLINE.<deadline>` in `timeout` ms (Infinity: never), replacing any deadline armed before. */
  | { type: 'ARM_DEADLINE'; deadline: DeadlineKind; timeout: number }
  | { type: 'DISARM_DEADLINE' };

export type ConnectionEvent =
  | TransportEvent
  | { type: 'xstate.done.actor.session'; output?: unknown }
  | { type: 'xstate.error.actor.session' }
  | { type: 'CLOSE'; timeout?: number }
  | { type: 'DESTROY'; error?: ConverseError };

export interface ConnectionInput {
  id: string;
  role: 'client' | 'server';
  transport: ConnectionTransport;
  pending: PendingTable;
  handshakeTimeout: number;
  closeTimeout: number;
  /**
   * When set, a `session` actor (the user's protocol machine, provided as the `session` actor)
   * is spawned with this input when the connection becomes active.
   */
  sessionInput?: unknown;
}

export interface ConnectionContext {
  id: string;
  role: 'client' | 'server';
  transport: ConnectionTransport;
  /** The pending-reply table (a live reference, never copied). */
  pending: PendingTable;
  handshakeTimeout: number;
  closeTimeout: number;
  /** What the handshake agreed, once it has. */
  handshake: HandshakeResult | undefined;
  /** Why the connection closed, when it did not close cleanly. */
  error: ConverseError | undefined;
  /** Whether the peer has said GOODBYE. */
  peerSaidGoodbye: boolean;
  /** Whether this side has said GOODBYE (it does on entering `closing`). */
  saidGoodbye: boolean;
  /** Input of the session actor, when the connection has one. */
  sessionInput: unknown;
}

/** The machine's commands to its transport: one frozen object each, shared by every connection. */
const SEND_GOODBYE: TransportCommand = Object.freeze({ type: 'SEND_GOODBYE' });
const WATCH_DRAIN: TransportCommand = Object.freeze({ type: 'WATCH_DRAIN' });
const END: TransportCommand = Object.freeze({ type: 'END' });
const DISARM_DEADLINE: TransportCommand = Object.freeze({ type: 'DISARM_DEADLINE' });

/**
 * Attach the transport to the actor that starts: it reports through the actor's own (bound)
 * `send`, hears of each new state, and is detached and released once the actor stops for any
 * reason (its final state, a stop from its parent, an error), as an invoked actor would be. On
 * the final state that is before any other observer hears of it (this observer comes first), so
 * they see a released transport, with the reason the machine recorded.
 */
function attachTransport(transport: ConnectionTransport, self: AnyActorRef): void {
  const attachment = new TransportAttachment(transport);
  self.subscribe(attachment);
  attachment.detach = transport.attach(self.send as (event: TransportEvent) => void, self);
}

/**
 * The actor's one observer for its transport (one per connection, so its methods are on the
 * prototype rather than closures: XState binds an observer's three methods either way).
 */
class TransportAttachment {
  detach: (() => void) | undefined;
  private released = false;

  constructor(private readonly transport: ConnectionTransport) {}

  next(snapshot: { status: string; value: unknown }): void {
    if (snapshot.status === 'done') this.complete();
    else this.transport.stateChanged?.(snapshot.value as ConnectionState);
  }

  error(): void {
    this.complete();
  }

  complete(): void {
    if (this.released) return;
    this.released = true;
    this.detach?.();
    this.transport.release();
  }
}

export const connectionMachine = setup({
  types: {
    context: {} as ConnectionContext,
    events: {} as ConnectionEvent,
    input: {} as ConnectionInput,
  },
  actors: {
    /** The user's per-connection protocol machine (provided by the server or client that has one). */
    session: fromCallback(() => undefined),
  },
  guards: {
    /** Closing finished on both sides: nothing of ours is pending and the peer said goodbye. */
    peerSaidGoodbye: ({ context }) => context.peerSaidGoodbye,
  },
  actions: {
    attachTransport: ({ context, self }) => attachTransport(context.transport, self),
    /**
     * Recorded in place (the context is this actor's own object): every connection takes this
     * transition once, and an assign copied the context into an object whose properties spill into
     * a second array (~0.1 KiB kept by every idle connection). The new snapshot (state `active`)
     * still tells observers that something changed.
     */
    recordHandshake: ({ context, event }) => {
      if (event.type !== 'TRANSPORT.HANDSHAKE_SUCCEEDED') return;
      context.handshake = { checksum: event.checksum, peerMaxMessageSize: event.peerMaxMessageSize, peerVersion: event.peerVersion };
    },
    recordError: assign({
      error: ({ context, event }) => context.error ?? ('error' in event ? event.error : undefined),
    }),
    recordHandshakeTimeout: assign({
      error: ({ context }) =>
        context.error ??
        makeError(
          'HANDSHAKE_FAILED',
          `The peer did not complete the handshake within ${context.handshakeTimeout} ms (handshakeTimeout). It may not speak this protocol, or it may be overloaded.`,
        ),
    }),
    recordCloseTimeout: assign({
      error: ({ context }) =>
        context.error ??
        makeError('CONNECTION_CLOSED', `The connection did not finish closing within ${context.closeTimeout} ms and was cut off; work still in flight was abandoned.`),
    }),
    recordPeerGoodbye: assign({ peerSaidGoodbye: true }),
    recordOwnGoodbye: assign({ saidGoodbye: true }),
    setCloseTimeout: assign({
      closeTimeout: ({ context, event }) => (event.type === 'CLOSE' && event.timeout !== undefined ? event.timeout : context.closeTimeout),
    }),
    spawnSession: enqueueActions(({ context, enqueue }) => {
      if (context.sessionInput !== undefined) enqueue.spawnChild('session', { id: 'session', input: context.sessionInput });
    }),
    /** The handshake must finish within `handshakeTimeout` (Infinity: no deadline is armed). */
    armHandshakeDeadline: ({ context }) => context.transport.command({ type: 'ARM_DEADLINE', deadline: 'HANDSHAKE', timeout: context.handshakeTimeout }),
    /** Closing must finish within `closeTimeout`, as set last (by CLOSE's `timeout`, just before this). */
    armCloseDeadline: ({ context }) => context.transport.command({ type: 'ARM_DEADLINE', deadline: 'CLOSE', timeout: context.closeTimeout }),
    disarmDeadline: ({ context }) => context.transport.command(DISARM_DEADLINE),
    sendGoodbye: ({ context }) => context.transport.command(SEND_GOODBYE),
    watchDrain: ({ context }) => context.transport.command(WATCH_DRAIN),
    endTransport: ({ context }) => context.transport.command(END),
    /** Every ask still waiting for a reply fails now, with the reason the connection closed. */
    rejectAllPending: ({ context }) => {
      context.pending.rejectAll(
        context.error ?? makeError('CONNECTION_CLOSED', 'The connection closed before a reply arrived. Retry on a new connection if the request is safe to repeat.'),
      );
    },
  },
}).createMachine({
  id: 'connection',
  context: ({ input }) => ({
    id: input.id,
    role: input.role,
    transport: input.transport,
    pending: input.pending,
    handshakeTimeout: input.handshakeTimeout,
    closeTimeout: input.closeTimeout,
    handshake: undefined,
    error: undefined,
    peerSaidGoodbye: false,
    saidGoodbye: false,
    sessionInput: input.sessionInput,
  }),
  entry: 'attachTransport',
  initial: 'handshake',
  states: {
    handshake: {
      entry: 'armHandshakeDeadline',
      exit: 'disarmDeadline',
      on: {
        'DEADLINE.HANDSHAKE': { target: 'closed', actions: 'recordHandshakeTimeout' },
        'TRANSPORT.HANDSHAKE_SUCCEEDED': { target: 'active', actions: 'recordHandshake' },
        'TRANSPORT.HANDSHAKE_FAILED': { target: 'closed', actions: 'recordError' },
        'TRANSPORT.FAILED': { target: 'closed', actions: 'recordError' },
        'TRANSPORT.CLOSED': { target: 'closed', actions: 'recordError' },
        CLOSE: { target: 'closed' },
        DESTROY: { target: 'closed', actions: 'recordError' },
      },
    },
    active: {
      entry: 'spawnSession',
      on: {
        // The session machine reached a final state: the protocol is over, close gracefully.
        'xstate.done.actor.session': { target: 'closing' },
        // The session machine threw: close gracefully too. (Unhandled, its error event would put
        // this actor in an error state and be rethrown as an uncaught exception.)
        'xstate.error.actor.session': { target: 'closing' },
        CLOSE: { target: 'closing', actions: 'setCloseTimeout' },
        'TRANSPORT.PEER_GOODBYE': { target: 'closing', actions: 'recordPeerGoodbye' },
        'TRANSPORT.FAILED': { target: 'closed', actions: 'recordError' },
        'TRANSPORT.CLOSED': { target: 'closed', actions: 'recordError' },
        DESTROY: { target: 'closed', actions: 'recordError' },
      },
    },
    closing: {
      entry: ['recordOwnGoodbye', 'sendGoodbye', 'watchDrain', 'armCloseDeadline'],
      exit: 'disarmDeadline',
      on: {
        'DEADLINE.CLOSE': { target: 'closed', actions: 'recordCloseTimeout' },
        'TRANSPORT.PEER_GOODBYE': { actions: ['recordPeerGoodbye', 'watchDrain'] },
        // A session that fails while the connection closes changes nothing (see `active`).
        'xstate.error.actor.session': { target: 'closing', reenter: false },
        'TRANSPORT.DRAINED': { guard: 'peerSaidGoodbye', actions: 'endTransport' },
        'TRANSPORT.FAILED': { target: 'closed', actions: 'recordError' },
        'TRANSPORT.CLOSED': { target: 'closed', actions: 'recordError' },
        DESTROY: { target: 'closed', actions: 'recordError' },
      },
    },
    closed: {
      type: 'final',
      entry: 'rejectAllPending',
    },
  },
});

export type ConnectionMachine = typeof connectionMachine;
export type ConnectionActorRef = ActorRefFrom<ConnectionMachine>;
export type ConnectionState = 'handshake' | 'active' | 'closing' | 'closed';

function makeError(code: 'HANDSHAKE_FAILED' | 'CONNECTION_CLOSED', message: string): ConverseError {
  return new ConverseError(code, message);
}
