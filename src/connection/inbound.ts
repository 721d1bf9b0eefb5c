import type { AnyActorRef } from 'xstate';
import { AsyncQueue } from '../async-queue.js';
import { ConverseError, type ErrorCode } from '../errors.js';
import { describeIssues, toValidationIssues, type ProtocolDefinition, type StandardSchemaResult, type StandardSchemaV1, type ValidationIssue } from '../protocol.js';
import { IncomingMessageImpl, type HandlerContextImpl } from './contexts.js';
import { protocolError } from './failures.js';
import { PauseReason, type ReadFlow } from './flow.js';
import type { InFlightTable } from './in-flight.js';
import type { Lifecycle } from './lifecycle.js';
import type { Handler, Responder } from './responder.js';
import type { Sender } from './sender.js';
import { Gate, SessionGate } from './session-gate.js';
import type { ConnectionStats } from './stats.js';
import type { TraceCarrier } from '../otel.js';

/** The queue of a connection released before it ever queued a message (ended; nothing is ever added to it). */
const ENDED = new AsyncQueue<IncomingMessageImpl>();
ENDED.end();

/** Incoming messages queued beyond this pause reading from the peer until the reader catches up. */
const INCOMING_HIGH_WATER = 256;
const INCOMING_LOW_WATER = 64;

export interface InboundOptions {
  handlers: Record<string, Handler | undefined> | undefined;
  /** The library's own handlers for reserved `$…` message types (introspection). */
  internalHandlers?: Record<string, Handler> | undefined;
  /** Schemas of the messages this side serves: incoming messages are validated against them. */
  schemas?: ProtocolDefinition | undefined;
  /** The connection machine spawns a `session` actor: every message is offered to it first. */
  hasSession?: boolean;
  /**
   * A client's unread queue is not held forever (see `unread`); a server's connections may be
   * accepted now and iterated later, so theirs pause reading instead.
   */
  role?: 'client' | 'server';
}

/**
 * Where the peer's asks and tells go: checked against the declared protocol, offered to the
 * session, then handed to their handler, or queued for an application that iterates the
 * connection (reading pauses while that queue is long).
 */
export class Inbound {
  /** Made on first use (see `incoming`). */
  private queue: AsyncQueue<IncomingMessageImpl> | undefined;
  private readonly gate: SessionGate | undefined;
  /** The application iterates the connection (see `attachReader`). */
  private reader = false;
  /**
   * A client with no handlers whose unread queue is full while nobody iterates, and a reply it
   * waits for (or an ask of the peer) would be stuck behind it: asks are answered NO_HANDLER and
   * tells dropped, so that reading goes on. Ends when a reader attaches. (A full queue of tells
   * alone, with nothing of ours waiting, just pauses reading: the application may iterate later.)
   */
  private unread = false;

  constructor(
    private readonly options: InboundOptions,
    private readonly sender: Sender,
    private readonly life: Lifecycle,
    private readonly flow: ReadFlow,
    private readonly inFlight: InFlightTable,
    private readonly responder: Responder,
    private readonly stats: ConnectionStats,
  ) {
    if (options.hasSession === true) {
      this.gate = new SessionGate(() => life.sessionChild, options.handlers, options.schemas, responder, life, (id, type, code, message, held) => this.refuse(id, type, code, message, undefined, held));
    }
  }

  /**
   * Messages for an application that iterates the connection. Made on first use: a connection
   * whose messages all go to handlers never needs it (a queue and its hook cost ~0.2 KiB).
   */
  get incoming(): AsyncQueue<IncomingMessageImpl> {
    let queue = this.queue;
    if (queue === undefined) {
      queue = this.queue = new AsyncQueue<IncomingMessageImpl>();
      queue.onTake = () => {
        if (this.flow.isPausedFor(PauseReason.READER) && queue!.size <= INCOMING_LOW_WATER) this.flow.resume(PauseReason.READER);
      };
    }
    return queue;
  }

  /** The connection is released: iterating it ends once what is queued is taken. */
  end(): void {
    if (this.queue === undefined) this.queue = ENDED;
    else this.queue.end();
  }

  /**
   * The application started iterating the connection: from now on a long queue pauses reading
   * (backpressure) instead of being refused as unread.
   */
  attachReader(): void {
    this.reader = true;
    this.unread = false;
  }

  /**
   * This side is about to ask: if reading is paused on an unread queue nobody will read, its
   * reply would be stuck behind it.
   */
  ownAskStarting(): void {
    if (!this.reader && !this.unread && this.options.role === 'client' && this.flow.isPausedFor(PauseReason.READER)) this.stopHoldingUnread();
  }

  /** The message type being offered to the session right now, if any. */
  get offering(): string | undefined {
    return this.gate?.offering;
  }

  /** The session actor, once there is one. */
  get session(): AnyActorRef | undefined {
    return this.gate?.session;
  }

  /**
   * An incoming tell (id -1) or ask: validated against the declared protocol (if any), offered to
   * the session (if any), then to its handler or the incoming queue. `credit` ≥ 0 when the asker
   * wants a streamed reply. `carrier` is the peer's trace context, when this side traces and it sent one.
   */
  dispatch(event: unknown, id: number, credit: number, carrier?: TraceCarrier): void {
    if (typeof event !== 'object' || event === null || typeof (event as { type?: unknown }).type !== 'string') {
      this.life.fail(protocolError('a message must be a map with a string "type"'));
      return;
    }
    const type = (event as { type: string }).type;
    if (this.life.peerSaidGoodbye && id >= 0) {
      this.sender.writeError(id, 'CONNECTION_CLOSED', `The ask "${type}" was sent after GOODBYE; the connection is closing.`);
      return;
    }
    // Reserved "$…" types (introspection) go to the library's own handlers, if any.
    const internal = this.options.internalHandlers;
    if (internal !== undefined && type.charCodeAt(0) === 0x24 && Object.hasOwn(internal, type)) {
      this.responder.run(internal[type]!, event, id, type, credit, this.session);
      return;
    }
    const schemas = this.options.schemas;
    if (schemas !== undefined) {
      const declared = Object.hasOwn(schemas, type) ? schemas[type] : undefined;
      if (declared === undefined) {
        this.refuse(id, type, 'NO_HANDLER', `"${type}" is not a message of the peer's declared protocol (${Object.keys(schemas).join(', ') || 'none'}).`, undefined, undefined);
        return;
      }
      if (declared.input !== undefined) {
        const { type: _type, ...fields } = event as Record<string, unknown>;
        let result: ReturnType<StandardSchemaV1['~standard']['validate']>;
        try {
          result = declared.input['~standard'].validate(fields);
        } catch (error) {
          // A validator that throws (a bug in it) must not take the connection or the process down.
          this.refuse(id, type, 'INVALID_MESSAGE', `validating "${type}" failed: ${(error as Error)?.message ?? error}`, undefined, undefined);
          return;
        }
        if (result instanceof Promise) {
          // An async validator: the handler runs once it settles (a later sync message may
          // overtake it). Meanwhile the message holds its in-flight slot, so it counts against
          // maxInFlight and is aborted with the connection (its handler then never starts).
          const held = this.responder.context(id, type, credit, this.session);
          if (id >= 0) this.inFlight.startAsk(id, held);
          else this.inFlight.startTell(held);
          result.then(
            (settled) => this.afterValidation(settled, type, id, credit, held, carrier),
            (error) => this.refuse(id, type, 'INVALID_MESSAGE', `validating "${type}" failed: ${(error as Error)?.message ?? error}`, undefined, held),
          );
          return;
        }
        this.afterValidation(result, type, id, credit, undefined, carrier);
        return;
      }
    }
    this.deliver(event as { type: string }, id, type, credit, undefined, carrier);
  }

  private afterValidation(result: StandardSchemaResult<unknown>, type: string, id: number, credit: number, held: HandlerContextImpl | undefined, carrier: TraceCarrier | undefined): void {
    // The connection closed (or the asker cancelled) while the validator ran: nothing to start.
    if (held?.cancelled === true) {
      if (id >= 0) this.inFlight.finish(id, held);
      else this.inFlight.finishTell(held);
      return;
    }
    if (result.issues !== undefined) {
      const issues = toValidationIssues(result.issues);
      this.refuse(id, type, 'INVALID_MESSAGE', `"${type}" does not match the declared protocol: ${describeIssues(issues)}.`, issues, held);
      return;
    }
    const value = result.value;
    // The handler sees what the validator produced (it may have coerced or stripped fields).
    const event = typeof value === 'object' && value !== null ? { ...(value as object), type } : { type };
    this.deliver(event, id, type, credit, held, carrier);
  }

  /**
   * Answer an ask with an error (a tell has no one to answer: it is counted and reported).
   * `held`: the message's in-flight slot, when it has one (it waited for an async validator).
   */
  private refuse(id: number, type: string, code: ErrorCode, message: string, issues: ValidationIssue[] | undefined, held: HandlerContextImpl | undefined): void {
    if (id >= 0) {
      this.responder.refuse(id, type, code, message, issues, held);
      return;
    }
    if (held !== undefined) this.inFlight.finishTell(held);
    this.stats.unhandledTells++;
    this.life.reportLocal(new ConverseError(code, `A tell was dropped: ${message}`, issues ? { issues } : undefined), type);
  }

  private deliver(event: { type: string }, id: number, type: string, credit: number, held: HandlerContextImpl | undefined, carrier: TraceCarrier | undefined): void {
    let gated: number = Gate.PASS;
    if (this.gate !== undefined) {
      gated = this.gate.offer(event, id, type, held);
      if (gated === Gate.DONE) {
        if (id < 0 && held !== undefined) this.inFlight.finishTell(held);
        return;
      }
    }
    const handlers = this.options.handlers;
    if (handlers !== undefined) {
      const handler = Object.hasOwn(handlers, type) ? handlers[type] : undefined;
      if (typeof handler !== 'function') {
        if (gated === Gate.TAKEN && id < 0) {
          // a tell the session took is handled
          if (held !== undefined) this.inFlight.finishTell(held);
          return;
        }
        this.refuse(id, type, 'NO_HANDLER', `The peer has no handler for "${type}". Check that both sides use the same protocol (message types: ${Object.keys(handlers).join(', ') || 'none'}).`, undefined, held);
        return;
      }
      this.responder.run(handler, event, id, type, credit, this.session, held, carrier);
      return;
    }
    if (this.unread) {
      this.refuseUnread(id, type);
      return;
    }
    const message = new IncomingMessageImpl(this.responder, this.life, event, id);
    if (id >= 0) {
      if (held === undefined) this.inFlight.startAsk(id, message);
      else this.inFlight.handOver(id, held, message);
    } else if (held !== undefined) {
      this.inFlight.finishTell(held);
    }
    this.incoming.push(message);
    if (this.incoming.size >= INCOMING_HIGH_WATER) {
      if (!this.reader && this.options.role === 'client' && (this.life.awaitingReplies || this.queuedAsk())) this.stopHoldingUnread();
      else this.flow.pause(PauseReason.READER);
    }
  }

  /**
   * Neither handlers nor a reader, and the queue is full: pausing now would stall this side's own
   * replies behind messages nobody reads. Answer what waits, and what comes, as unhandled.
   */
  private stopHoldingUnread(): void {
    this.unread = true;
    this.life.reportLocal(
      new ConverseError(
        'NO_HANDLER',
        `${this.incoming.size} messages wait unread on a connection that has no handlers and that nobody iterates, and replies are stuck behind them; its asks are now answered NO_HANDLER and its tells dropped, until the application iterates it. Give the connection handlers, or iterate it (for await … of connection).`,
      ),
      '$unread',
    );
    for (const message of this.incoming.takeAll()) {
      if (message.id >= 0) {
        if (this.inFlight.get(message.id) !== message) continue; // cancelled meanwhile
        this.refuseUnread(message.id, message.event.type);
        this.inFlight.finish(message.id, message); // after the answer: closing may complete
      } else this.refuseUnread(-1, message.event.type);
    }
    this.flow.resume(PauseReason.READER); // delivers what was held back: refused the same way
  }

  private queuedAsk(): boolean {
    if (this.queue === undefined) return false;
    for (const message of this.queue.buffered()) if (message.id >= 0) return true;
    return false;
  }

  private refuseUnread(id: number, type: string): void {
    this.refuse(id, type, 'NO_HANDLER', `"${type}" arrived on a connection with no handlers that nobody iterates.`, undefined, undefined);
  }
}
