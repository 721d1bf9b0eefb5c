import type { ConnectionActorRef, ConnectionState } from '../../machines/connection.machine.js';
import type { ConnectionCore } from './core.js';
import type { ConverseError } from '../errors.js';
import { checkTimeout } from '../timeouts.js';
import type { PeerCredentials } from '../transport/peer-credentials.js';
import type { AnyActorRef } from 'xstate';
import type { ProtocolMeta } from './negotiate.js';
import type { FlightRecording } from './recorder.js';
import type { WorkInFlight } from './work.js';
import type { ConnectionStats } from './stats.js';
import type { AskOptions, EventFor, EventOf, MessageFields, MessageType, ReplyOf, StreamItemOf, StreamOptions } from '../types.js';

/**
 * The public face of a connection: what `listen()` hands out and `connect()` returns. Every call
 * goes to the connection's core (src/connection/core.ts), which a reconnecting connection swaps.
 */

/** A message from the peer, as delivered by `for await (const message of connection)`. */
export interface IncomingMessage<Local> {
  /** The event as the peer sent it. */
  readonly event: EventOf<Local>;
  /** True when the peer asked and waits for `reply` or `fail`. */
  readonly expectsReply: boolean;
  /** Aborts when the asker cancels or times out, or the connection closes. */
  readonly signal: AbortSignal;
  /** Answer an ask. Rejects for a tell, a second answer, or a closed connection. */
  reply(value: unknown): Promise<void>;
  /** Answer an ask with an error: the asker gets `REMOTE_ERROR` carrying it. */
  fail(error: unknown): Promise<void>;
}

/**
 * One end of a conversation, on either side. `Local` is the protocol this side serves (its
 * handlers), `Remote` the protocol the peer serves (what `ask` and `tell` send).
 */
/** A connection's state: its actor's top-level state, or `'reconnecting'` for a reconnecting client whose server is away. */
export type ConnectionStateName = ConnectionState | 'reconnecting';

export class Connection<Local = any, Remote = any> implements AsyncIterable<IncomingMessage<Local>> {
  /** @internal The physical connection behind this one (a reconnecting connection swaps it). */
  core: ConnectionCore;
  /** A nanoid, unique to this connection. */
  readonly id: string;
  /** Given by a reconnecting connection (which outlives its cores); otherwise the core's. */
  private readonly ownClosed: Promise<void> | undefined;

  /** The library's own handlers for reserved `$…` types added to this connection (introspection). */
  private ownHandlers: Record<string, (event: any, ctx: any) => unknown> | undefined;
  /** @internal Date.now() when a server accepted it (introspection's `openedAt`); undefined on a client. */
  openedAt: number | undefined = undefined;

  /** @internal */
  constructor(core: ConnectionCore, id: string, closed?: Promise<void>) {
    this.core = core;
    this.id = id;
    this.ownClosed = closed;
    core.facade = this;
  }

  /** Settles (never rejects) once the connection is closed. */
  get closed(): Promise<void> {
    return this.ownClosed ?? this.core.closed;
  }

  /** @internal Answer the reserved type `type` with `handler` (before user handlers), on this and every later physical connection. */
  useInternalHandler(type: string, handler: (event: any, ctx: any) => unknown): void {
    this.ownHandlers = { ...this.ownHandlers, [type]: handler };
    this.applyInternalHandlers(this.core);
  }

  /** @internal */
  protected applyInternalHandlers(core: ConnectionCore): void {
    if (this.ownHandlers !== undefined) core.options.internalHandlers = { ...core.options.internalHandlers, ...this.ownHandlers };
  }

  /** The peer process's credentials as the kernel reports them (never as the peer claims). */
  get peer(): PeerCredentials {
    return this.core.peer;
  }

  /** The top-level state of the connection's actor (`'reconnecting'` only for a reconnecting client). */
  get state(): ConnectionStateName {
    return this.core.phase;
  }

  /** The connection's XState actor: its snapshot's value is `state`; its context holds the pending-reply table. */
  get actor(): ConnectionActorRef {
    return this.core.actor as ConnectionActorRef;
  }

  /**
   * The flight recorder's recording so far: the last frames (direction, kind, id, type, size,
   * time) and lifecycle transitions. A connection that closes on an error also puts it on the
   * error as `recording`.
   */
  recording(): FlightRecording {
    return this.core.recording();
  }

  /**
   * Work in flight: the peer's asks this side is handling (type, age, whether the asker
   * cancelled), this side's asks waiting (age, timeout), streams being produced (items sent,
   * credit left), and whether reading is paused and why.
   */
  work(): WorkInFlight {
    return this.core.work();
  }

  /** Why the connection closed, when it did not close cleanly (undefined while open or after a clean close). */
  get closeReason(): ConverseError | undefined {
    return this.core.closeReason;
  }

  /** The peer's wire protocol version (known once the handshake is done). */
  get peerVersion(): number | undefined {
    return this.core.peerVersion;
  }

  /** The peer's declared protocol (`name`, `version`) from its handshake, if it declared one. */
  get peerProtocol(): Readonly<ProtocolMeta> | undefined {
    return this.core.peerProtocol;
  }

  /** The session actor (the `session` machine given to listen/connect), once the connection is active. */
  get session(): AnyActorRef | undefined {
    return (this.core.actor?.getSnapshot() as { children?: Record<string, AnyActorRef> } | undefined)?.children?.session;
  }

  /** Counters for this connection (messages and bytes each way, late replies). Live, not a copy. */
  get stats(): Readonly<ConnectionStats> {
    return this.core.stats;
  }

  /** Asks sent and still waiting for their reply. */
  get pendingAsks(): number {
    return this.core.pending.size;
  }

  /**
   * Send a message and wait for its reply. Rejects with `TIMEOUT` after `timeout` (default
   * `replyTimeout`), `ABORTED` when `signal` aborts (the peer is told), `CONNECTION_CLOSED` as soon
   * as the connection is lost, `REMOTE_ERROR` / `NO_HANDLER` when the peer answers with an error.
   */
  ask<K extends MessageType<Remote>>(event: { type: K } & MessageFields<Remote, K>, options?: AskOptions): Promise<ReplyOf<Remote, K>> {
    return this.core.ask(event, options) as Promise<ReplyOf<Remote, K>>;
  }

  /**
   * The two-layer send: the outer promise settles once the message is written to the socket;
   * `reply` settles with the answer. A `reply` nobody awaits never causes an unhandled rejection.
   */
  async send<K extends MessageType<Remote>>(
    event: { type: K } & MessageFields<Remote, K>,
    options?: AskOptions,
  ): Promise<{ reply: Promise<ReplyOf<Remote, K>> }> {
    // Waiting for room in the write budget counts against the ask's timeout (once).
    const room = this.core.waitForRoom(options, (event as { type: string })?.type);
    if (room !== undefined) options = await room;
    // Throws (rejecting the outer promise) when the message cannot be sent at all.
    const reply = this.core.startAsk(event, options) as Promise<ReplyOf<Remote, K>>;
    // Mark it handled: awaiting `reply` still sees the rejection.
    reply.catch(noop);
    await this.core.flushed();
    return { reply };
  }

  /**
   * Ask for a streamed reply: `for await (const item of connection.stream(event))`. The peer's
   * handler yields items (an async generator); at most `window` are in flight ahead of the
   * consumer. Breaking out of the loop cancels the handler; an error from it (or TIMEOUT between
   * items, or CONNECTION_CLOSED) is thrown from the loop. A handler that returns a plain value
   * gives a stream of one.
   */
  stream<K extends MessageType<Remote>>(event: { type: K } & MessageFields<Remote, K>, options?: StreamOptions): AsyncIterableIterator<StreamItemOf<Remote, K>> {
    return this.core.stream(event, options) as AsyncIterableIterator<StreamItemOf<Remote, K>>;
  }

  /** One-way: no reply is expected or tracked. Resolves once the message is handed to the socket. */
  tell<K extends MessageType<Remote>>(event: { type: K } & MessageFields<Remote, K>): Promise<void> {
    return this.core.tell(event);
  }

  /**
   * Graceful close: new asks fail at once; asks already sent get their replies and handlers
   * already running finish (both sides), then the socket is closed. Past `timeout` (default
   * 5000 ms) whatever is left is cut off.
   */
  close(options?: { timeout?: number }): Promise<void> {
    if (options?.timeout !== undefined) checkTimeout('timeout', options.timeout);
    const actor = this.core.actor;
    if (actor === undefined || this.core.phase === 'closed') {
      this.core.release();
      return this.closed;
    }
    actor.send({ type: 'CLOSE', timeout: options?.timeout });
    return this.closed;
  }

  /** Immediate close: pending asks reject with `CONNECTION_CLOSED`, running handlers see `ctx.signal` abort. */
  destroy(error?: ConverseError): void {
    const actor = this.core.actor;
    if (actor === undefined || this.core.phase === 'closed') {
      this.core.release();
      return;
    }
    actor.send({ type: 'DESTROY', error });
  }

  /** Incoming messages when no `handlers` were given: in order, backpressured. Ends when the connection closes. */
  [Symbol.asyncIterator](): AsyncIterator<IncomingMessage<Local>> {
    this.core.attachReader();
    const queue = this.core.incoming;
    return {
      next: () => queue.next() as Promise<IteratorResult<IncomingMessage<Local>>>,
      return: () => Promise.resolve({ value: undefined, done: true }),
    };
  }
}

function noop(): void {}

export type { EventFor };
