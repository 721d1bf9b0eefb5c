import type { AnyActorRef } from 'xstate';
import { ConverseError, type ErrorCode } from '../errors.js';
import { describeThrown } from '../wire/envelope.js';
import type { Lifecycle } from './lifecycle.js';
import type { Responder } from './responder.js';
import type { Sender } from './sender.js';

/** Where a session event carries the function that answers its ask (see `answer()` in session.ts). */
export const kAnswer = Symbol.for('interprocess-converse.answer');

/** What the gate did with a message. */
export const Gate = {
  /** No session: the message goes on to its handler. */
  PASS: 0,
  /** The session took it: the message goes on to its handler, if it has one. */
  TAKEN: 1,
  /** Refused, answered by the session, or the session failed taking it: nothing more to do. */
  DONE: 2,
} as const;

/**
 * The session gate: every incoming message is offered to the connection's session machine
 * first. One it cannot take in its state is refused NOT_ACCEPTED; the session may answer an
 * ask itself (`answer(event, value)`); a session that throws closes the connection gracefully.
 */
export class SessionGate {
  private actor: AnyActorRef | undefined;
  /** The message type being offered to the session right now (what moved it, for the recorder). */
  offering: string | undefined;

  constructor(
    private readonly findSession: () => AnyActorRef | undefined,
    private readonly responder: Responder,
    private readonly sender: Sender,
    private readonly life: Lifecycle,
    private readonly refuse: (id: number, type: string, code: ErrorCode, message: string) => void,
  ) {}

  /** The session actor, once the connection has spawned it. */
  get session(): AnyActorRef | undefined {
    return this.actor;
  }

  offer(event: { type: string }, id: number, type: string): number {
    const session = (this.actor ??= this.findSession());
    if (session === undefined) return Gate.PASS;
    const snapshot = session.getSnapshot() as { can(event: unknown): boolean; value: unknown; status: string };
    // `xstate.*` types are XState's own (xstate.stop stops an actor): a peer never sends them to the session.
    if (snapshot.status !== 'active' || type.startsWith('xstate.') || !snapshot.can(event)) {
      this.refuse(id, type, 'NOT_ACCEPTED', `The session is in state ${JSON.stringify(snapshot.value)} and does not accept "${type}" there.`);
      return Gate.DONE;
    }
    let answered = false;
    if (id >= 0) {
      // The session may answer the ask itself, from an action, with answer(event, value).
      Object.defineProperty(event, kAnswer, {
        value: (value: unknown) => {
          if (answered) return;
          answered = true;
          this.responder.answerFromSession(id, type, value, session);
        },
      });
    }
    this.offering = type;
    try {
      session.send(event);
    } finally {
      this.offering = undefined;
    }
    if (answered) return Gate.DONE;
    const after = session.getSnapshot() as { status: string; error?: unknown };
    if (after.status === 'error') {
      // The machine threw while taking the event: the asker is told, the connection closes
      // gracefully (the connection machine takes the session's error event), the handler never runs.
      const remote = describeThrown(after.error);
      this.life.reportLocal(
        new ConverseError('REMOTE_ERROR', `The session machine failed taking "${type}" (${remote.name}: ${remote.message}); the connection is closing.`, { cause: after.error, remote }),
        type,
      );
      if (id >= 0) this.sender.writeRemoteError(id, type, after.error);
      return Gate.DONE;
    }
    return Gate.TAKEN;
  }
}
