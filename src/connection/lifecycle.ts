import type { AnyActorRef } from 'xstate';
import type { ConnectionState } from '../../machines/connection.machine.js';
import { ConverseError, connectionClosedError } from '../errors.js';
import { abortedError, badMessageError, isMessage } from './failures.js';

/**
 * What the parts of a connection may know of its life, implemented by the core (which learns
 * it from the connection machine). Parts read it; they change it only by reporting to the core.
 */
export interface Lifecycle {
  readonly phase: ConnectionState;
  /** The actor stopped and everything was released. */
  readonly released: boolean;
  /** The peer said GOODBYE: it sends no new asks. */
  readonly peerSaidGoodbye: boolean;
  /** Why the connection closed, when not cleanly. */
  readonly closeReason: ConverseError | undefined;
  /** The public facade: handlers see it as `ctx.connection`, diagnostics as `connection`. */
  readonly facade: unknown;
  /** The session actor the connection machine spawned, if it has one (and has spawned it). */
  readonly sessionChild: AnyActorRef | undefined;
  /** This side waits for replies to asks of its own. */
  readonly awaitingReplies: boolean;
  /** The peer said in its handshake that it reads trace context on TELLs. */
  readonly peerReadsTraceContext: boolean;
  /** Something that held the close open has finished (a reply, an answer, a handler). */
  settled(): void;
  /** The peer broke something: close the connection with `error`. */
  fail(error: ConverseError): void;
  /** An error of this side's making that no asker can be told of, about a message of `messageType`. */
  reportLocal(error: ConverseError, messageType?: string): void;
}

/** The error for a send made while the connection cannot carry it. */
export function unavailable(life: Lifecycle): ConverseError {
  if (life.phase === 'handshake') {
    return new ConverseError('CONNECTION_CLOSED', 'The connection is still in its handshake; wait for connect() to resolve before sending.');
  }
  return connectionClosedError(life.closeReason);
}

/** Throws unless `event` may be sent now: active connection, a message, a signal not yet aborted. */
export function assertSendable(life: Lifecycle, event: unknown, signal: AbortSignal | undefined): asserts event is { type: string } {
  if (life.phase !== 'active') throw unavailable(life);
  if (!isMessage(event)) throw badMessageError();
  if (signal?.aborted) throw abortedError(event.type, signal);
}
