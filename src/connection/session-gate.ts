import type { AnyActorRef } from 'xstate';
import { ConverseError, type ErrorCode } from '../errors.js';
import type { ProtocolDefinition } from '../protocol.js';
import { describeThrown } from '../wire/envelope.js';
import type { HandlerContextImpl } from './contexts.js';
import type { Lifecycle } from './lifecycle.js';
import type { Handler, Responder } from './responder.js';

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

/** The event types a machine names in its transitions (exact, `prefix.*` wildcards, or `*`). */
interface NamedTypes {
  exact: Set<string>;
  prefixes: string[];
  any: boolean;
}

/** Per machine definition (shared by every connection that runs it): computed once. */
const namedByMachine = new WeakMap<object, NamedTypes>();

function namedTypesOf(session: AnyActorRef): NamedTypes | undefined {
  const machine = (session as { logic?: { events?: unknown } }).logic;
  if (machine === undefined || !Array.isArray(machine.events)) return undefined;
  let named = namedByMachine.get(machine);
  if (named === undefined) {
    named = { exact: new Set(), prefixes: [], any: false };
    for (const descriptor of machine.events as string[]) {
      if (descriptor === '*') named.any = true;
      else if (descriptor.endsWith('.*')) named.prefixes.push(descriptor.slice(0, -1));
      else named.exact.add(descriptor);
    }
    namedByMachine.set(machine, named);
  }
  return named;
}

/**
 * The session gate: every incoming message is offered to the connection's session machine
 * first. A type the machine does not name anywhere is refused NOT_ACCEPTED without asking it
 * (XState keeps an entry per event type it was asked about, on the machine definition, for good:
 * a peer sending endless distinct types would grow it without bound). One it cannot take in its
 * state is refused NOT_ACCEPTED too; the session may answer an ask itself (`answer(event,
 * value)`) while it takes it; a session that throws closes the connection gracefully.
 */
export class SessionGate {
  private actor: AnyActorRef | undefined;
  /** The message type being offered to the session right now (what moved it, for the recorder). */
  offering: string | undefined;
  private named: NamedTypes | undefined;

  constructor(
    private readonly findSession: () => AnyActorRef | undefined,
    private readonly handlers: Record<string, Handler | undefined> | undefined,
    private readonly schemas: ProtocolDefinition | undefined,
    private readonly responder: Responder,
    private readonly life: Lifecycle,
    private readonly refuse: (id: number, type: string, code: ErrorCode, message: string, held: HandlerContextImpl | undefined) => void,
  ) {}

  /** The session actor, once the connection has spawned it. */
  get session(): AnyActorRef | undefined {
    return this.actor;
  }

  /** Whether the session machine names `type` (a machine with a `*` transition names what the side serves). */
  private names(type: string): boolean {
    const named = this.named;
    if (named === undefined) return true;
    if (named.exact.has(type)) return true;
    for (const prefix of named.prefixes) if (type.startsWith(prefix)) return true;
    if (!named.any) return false;
    // A catch-all machine: bound the types it is asked about by what this side serves, when it says.
    if (this.schemas !== undefined) return Object.hasOwn(this.schemas, type);
    if (this.handlers !== undefined) return Object.hasOwn(this.handlers, type);
    return true;
  }

  offer(event: { type: string }, id: number, type: string, held?: HandlerContextImpl): number {
    let session = this.actor;
    if (session === undefined) {
      session = this.actor = this.findSession();
      if (session === undefined) return Gate.PASS;
      this.named = namedTypesOf(session);
    }
    // `xstate.*` types are XState's own (xstate.stop stops an actor): a peer never sends them to the session.
    if (type.startsWith('xstate.') || !this.names(type)) {
      this.refuse(id, type, 'NOT_ACCEPTED', `The session does not accept "${type}" in any state.`, held);
      return Gate.DONE;
    }
    const snapshot = session.getSnapshot() as { can(event: unknown): boolean; value: unknown; status: string };
    if (snapshot.status !== 'active' || !snapshot.can(event)) {
      this.refuse(id, type, 'NOT_ACCEPTED', `The session is in state ${JSON.stringify(snapshot.value)} and does not accept "${type}" there.`, held);
      return Gate.DONE;
    }
    let answered = false;
    let armed = id >= 0;
    if (armed) {
      // The session may answer the ask itself, from an action, with answer(event, value), while
      // it takes the event; after that it is too late (the handler answers).
      Object.defineProperty(event, kAnswer, {
        value: (value: unknown) => {
          if (!armed || answered) return false;
          answered = true;
          this.responder.answerFromSession(id, type, value, session, held);
          return true;
        },
      });
    }
    this.offering = type;
    try {
      session.send(event);
    } finally {
      this.offering = undefined;
      armed = false;
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
      if (id >= 0) this.responder.fail(id, type, after.error, held);
      return Gate.DONE;
    }
    return Gate.TAKEN;
  }
}
