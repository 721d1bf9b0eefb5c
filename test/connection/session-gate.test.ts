/**
 * The session gate, the bound on what a peer can make a connection do in a given state: every
 * incoming message is offered to the session machine first; one it cannot take now is refused
 * NOT_ACCEPTED (and never reaches a handler), XState's own event types are never passed on, the
 * session may answer an ask itself (once), and a session that throws taking a message fails that
 * ask and is reported. A real XState actor; the responder, sender and lifecycle record calls.
 */
import { assign, createActor, setup, type AnyActorRef } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { Lifecycle } from '../../src/connection/lifecycle.js';
import type { Responder } from '../../src/connection/responder.js';
import { Gate, kAnswer, SessionGate } from '../../src/connection/session-gate.js';
import { answer } from '../../src/session.js';

type Ev = { type: 'login' } | { type: 'query' } | { type: 'logout' } | { type: 'explode' };

/** What each answer() call from the session returned (true: it answered the ask). */
const answerResults: boolean[] = [];

/** A session: `login` first, then `query` (answered by the session itself when `selfAnswer`), then `logout`. */
const sessionMachine = setup({
  types: { context: {} as { seen: string[] }, events: {} as Ev },
  actions: {
    note: assign({ seen: ({ context, event }) => [...context.seen, event.type] }),
    answerQuery: ({ event }) => {
      answerResults.push(answer(event, 'answered by the session'));
      answerResults.push(answer(event, 'a second answer is ignored'));
    },
    explode: () => {
      throw new Error('the session broke');
    },
  },
}).createMachine({
  context: { seen: [] },
  initial: 'out',
  states: {
    out: { on: { login: { target: 'in', actions: 'note' } } },
    in: {
      on: {
        query: { actions: ['note', 'answerQuery'] },
        explode: { actions: 'explode' },
        logout: { target: 'done', actions: 'note' },
      },
    },
    done: { type: 'final' },
  },
});

function setUp(options: { session?: 'now' | 'later' | 'never' } = {}) {
  const refused: Array<[number, string, string, string]> = [];
  const answered: Array<[number, string, unknown]> = [];
  const remoteErrors: Array<[number, string, unknown]> = [];
  const reported: Array<[Error & { code?: string }, string | undefined]> = [];
  const responder = {
    answerFromSession: (id: number, type: string, value: unknown) => answered.push([id, type, value]),
    fail: (id: number, type: string, error: unknown) => remoteErrors.push([id, type, error]),
  } as unknown as Responder;
  const life = { reportLocal: (error: Error, type?: string) => reported.push([error, type]) } as unknown as Lifecycle;
  const actor = createActor(sessionMachine);
  // The connection observes the session's errors (its machine takes them); so does this test.
  actor.subscribe({ error: () => {} });
  actor.start();
  let lookups = 0;
  let available = options.session !== 'later' && options.session !== 'never';
  const gate = new SessionGate(
    () => {
      lookups++;
      return available && options.session !== 'never' ? (actor as AnyActorRef) : undefined;
    },
    undefined, // no handlers or declared protocol: the types the session names are the ones it is asked about
    undefined,
    responder,
    life,
    (id, type, code, message) => refused.push([id, type, code, message]),
  );
  return {
    gate,
    actor,
    refused,
    answered,
    remoteErrors,
    reported,
    lookups: () => lookups,
    spawnSession: () => (available = true),
  };
}

const seen = (actor: AnyActorRef): string[] => (actor.getSnapshot() as { context: { seen: string[] } }).context.seen;

describe('SessionGate', () => {
  it('without a session every message passes to its handler; the session is looked up until it exists, then kept', () => {
    const t = setUp({ session: 'later' });
    expect(t.gate.offer({ type: 'query' }, 1, 'query')).toBe(Gate.PASS);
    expect(t.gate.offer({ type: 'query' }, 2, 'query')).toBe(Gate.PASS);
    expect(t.lookups()).toBe(2);
    expect(t.gate.session).toBeUndefined();
    t.spawnSession();
    expect(t.gate.offer({ type: 'login' }, -1, 'login')).toBe(Gate.TAKEN);
    expect(t.gate.session).toBe(t.actor);
    expect(t.gate.offer({ type: 'logout' }, -1, 'logout')).toBe(Gate.TAKEN);
    expect(t.lookups()).toBe(3); // found once, not looked up again
    expect(t.refused).toEqual([]);
  });

  it('a message the session takes in its state goes to the session, then on to its handler (TAKEN)', () => {
    const t = setUp();
    let offeringDuringSend: string | undefined;
    t.actor.subscribe(() => (offeringDuringSend = t.gate.offering));
    expect(t.gate.offer({ type: 'login' }, 4, 'login')).toBe(Gate.TAKEN);
    expect(seen(t.actor)).toEqual(['login']);
    // What moved the session is known while it moves (for the flight recorder), and only then.
    expect(offeringDuringSend).toBe('login');
    expect(t.gate.offering).toBeUndefined();
    expect(t.refused).toEqual([]);
    expect(t.answered).toEqual([]);
  });

  it('a message the session cannot take in its state is refused NOT_ACCEPTED, naming the state; the session does not see it', () => {
    const t = setUp();
    expect(t.gate.offer({ type: 'query' }, 5, 'query')).toBe(Gate.DONE);
    expect(t.refused).toHaveLength(1);
    const [id, type, code, message] = t.refused[0]!;
    expect([id, type, code]).toEqual([5, 'query', 'NOT_ACCEPTED']);
    expect(message).toBe('The session is in state "out" and does not accept "query" there.');
    expect(seen(t.actor)).toEqual([]);
    // A tell is refused the same way (id -1).
    expect(t.gate.offer({ type: 'logout' }, -1, 'logout')).toBe(Gate.DONE);
    expect(t.refused[1]!.slice(0, 3)).toEqual([-1, 'logout', 'NOT_ACCEPTED']);
  });

  it('a type the session names in no state is refused NOT_ACCEPTED without asking it, and says so', () => {
    const t = setUp();
    // Types near a named one are not it: names are exact (a prefix needs a `prefix.*` transition).
    for (const type of ['status', 'logi', 'loginx', 'login.extra', 'LOGIN', '']) {
      expect(t.gate.offer({ type }, 3, type), type).toBe(Gate.DONE);
    }
    expect(t.refused.map(([, type, code, message]) => [type, code, message])).toEqual(
      ['status', 'logi', 'loginx', 'login.extra', 'LOGIN', ''].map((type) => [type, 'NOT_ACCEPTED', `The session does not accept "${type}" in any state.`]),
    );
    // A named type it cannot take now is refused for its state instead (the session is asked).
    expect(t.gate.offer({ type: 'logout' }, 4, 'logout')).toBe(Gate.DONE);
    expect(t.refused.at(-1)![3]).toBe('The session is in state "out" and does not accept "logout" there.');
    expect(t.gate.offer({ type: 'login' }, 5, 'login')).toBe(Gate.TAKEN);
  });

  // Left by mutation testing: the named prefixes starting as `['Stryker was here']` instead of
  // `[]` (only a type beginning with Stryker's own marker text would tell).
  it('a `prefix.*` transition names every type under that prefix, and only those', () => {
    const machine = setup({}).createMachine({ on: { 'user.*': { actions: () => {} }, ping: { actions: () => {} } } });
    const actor = createActor(machine).start();
    const refused: string[] = [];
    const gate = new SessionGate(() => actor, undefined, undefined, {} as Responder, {} as Lifecycle, (_id, type, _code, message) => refused.push(`${type}: ${message}`));
    for (const type of ['user.created', 'user.', 'user.a.b', 'ping']) expect(gate.offer({ type }, -1, type), type).toBe(Gate.TAKEN);
    for (const type of ['user', 'users.created', 'u', 'xuser.created', 'pingx']) expect(gate.offer({ type }, -1, type), type).toBe(Gate.DONE);
    expect(refused).toEqual(['user', 'users.created', 'u', 'xuser.created', 'pingx'].map((type) => `${type}: The session does not accept "${type}" in any state.`));
    actor.stop();
  });

  it('a catch-all (`*`) session is asked only about what this side serves: the declared protocol if any, else its handlers (own keys only)', () => {
    const machine = setup({}).createMachine({ on: { '*': { actions: () => {} } } });
    const actor = createActor(machine).start();
    const make = (handlers: Record<string, undefined> | undefined, schemas: Record<string, object> | undefined) => {
      const refused: string[] = [];
      const gate = new SessionGate(() => actor, handlers as never, schemas as never, {} as Responder, {} as Lifecycle, (_id, type, _code, message) => refused.push(`${type}: ${message}`));
      const outcome = (type: string) => gate.offer({ type }, -1, type);
      return { outcome, refused };
    };
    // The protocol decides, even where handlers say otherwise.
    const byProtocol = make({ handled: undefined }, { declared: {} });
    expect(byProtocol.outcome('declared')).toBe(Gate.TAKEN);
    expect(byProtocol.outcome('handled')).toBe(Gate.DONE);
    expect(byProtocol.outcome('toString')).toBe(Gate.DONE); // inherited keys are not served types
    expect(byProtocol.outcome('__proto__')).toBe(Gate.DONE);
    expect(byProtocol.refused).toEqual(['handled', 'toString', '__proto__'].map((type) => `${type}: The session does not accept "${type}" in any state.`));
    // No protocol: the handlers decide.
    const byHandlers = make({ handled: undefined }, undefined);
    expect(byHandlers.outcome('handled')).toBe(Gate.TAKEN);
    expect(byHandlers.outcome('declared')).toBe(Gate.DONE);
    expect(byHandlers.outcome('hasOwnProperty')).toBe(Gate.DONE);
    // Neither: the session is asked about every type (but XState's own: see below).
    const open = make(undefined, undefined);
    expect(open.outcome('anything')).toBe(Gate.TAKEN);
    actor.stop();
  });

  it('the named types are read once per machine definition, shared by every connection that runs it', () => {
    const machine = setup({}).createMachine({ on: { ping: { actions: () => {} } } });
    const events = machine.events;
    let reads = 0;
    Object.defineProperty(machine, 'events', {
      get() {
        reads++;
        return events;
      },
    });
    // The first connection reads them (and keeps what they name, for the machine) ...
    const readsFor = (): number => {
      const before = reads;
      const actor = createActor(machine).start();
      const gate = new SessionGate(() => actor, undefined, undefined, {} as Responder, {} as Lifecycle, () => {});
      expect(gate.offer({ type: 'ping' }, -1, 'ping')).toBe(Gate.TAKEN);
      expect(gate.offer({ type: 'pong' }, -1, 'pong')).toBe(Gate.DONE);
      actor.stop();
      return reads - before;
    };
    const first = readsFor();
    expect(first).toBeGreaterThan(0);
    // ... the next ones only look that it is a list: they do not walk it again.
    expect(readsFor()).toBeLessThan(first);
    expect(readsFor()).toBeLessThan(first);
  });

  it('a session actor that does not show its machine’s event types (not a state machine) is asked about every type', () => {
    for (const logic of [undefined, { events: undefined }, { events: 'ping' }]) {
      const sent: string[] = [];
      const session = {
        logic,
        getSnapshot: () => ({ status: 'active', value: 'any', can: (event: { type: string }) => event.type !== 'never' }),
        send: (event: { type: string }) => sent.push(event.type),
      } as unknown as AnyActorRef;
      const refused: string[] = [];
      const gate = new SessionGate(() => session, undefined, undefined, {} as Responder, {} as Lifecycle, (_id, type, _code, message) => refused.push(`${type}: ${message}`));
      expect(gate.offer({ type: 'ping' }, -1, 'ping')).toBe(Gate.TAKEN);
      expect(gate.offer({ type: 'whatever' }, -1, 'whatever')).toBe(Gate.TAKEN);
      expect(gate.offer({ type: 'never' }, -1, 'never')).toBe(Gate.DONE);
      expect(sent).toEqual(['ping', 'whatever']);
      expect(refused).toEqual(['never: The session is in state "any" and does not accept "never" there.']);
    }
  });

  it('once the session has finished, everything is refused NOT_ACCEPTED', () => {
    const t = setUp();
    t.gate.offer({ type: 'login' }, -1, 'login');
    t.gate.offer({ type: 'logout' }, -1, 'logout');
    expect(t.actor.getSnapshot().status).toBe('done');
    expect(t.gate.offer({ type: 'login' }, 6, 'login')).toBe(Gate.DONE);
    expect(t.refused.map((r) => r.slice(0, 3))).toEqual([[6, 'login', 'NOT_ACCEPTED']]);
    expect(t.refused[0]![3]).toMatch(/in state "done"/);
  });

  it("XState's own event types (xstate.*) are refused, never sent to the session, even where it would take any event", () => {
    const anything = setup({}).createMachine({ on: { '*': { actions: () => {} } } });
    const actor = createActor(anything).start();
    const refused: string[] = [];
    const gate = new SessionGate(() => actor, undefined, undefined, {} as Responder, {} as Lifecycle, (_id, type, code) => refused.push(`${type} ${code}`));
    expect(gate.offer({ type: 'xstate.stop' }, 1, 'xstate.stop')).toBe(Gate.DONE);
    expect(refused).toEqual(['xstate.stop NOT_ACCEPTED']);
    expect(actor.getSnapshot().status).toBe('active');
    expect(gate.offer({ type: 'hello' }, 2, 'hello')).toBe(Gate.TAKEN);
    actor.stop();
  });

  it('the session may answer an ask itself: DONE, answered once with its value, no handler runs', () => {
    const t = setUp();
    t.gate.offer({ type: 'login' }, -1, 'login');
    const event = { type: 'query' };
    answerResults.length = 0;
    expect(t.gate.offer(event, 9, 'query')).toBe(Gate.DONE);
    expect(t.answered).toEqual([[9, 'query', 'answered by the session']]);
    // answer() says whether it answered: the first call did, the second was too late.
    expect(answerResults).toEqual([true, false]);
    expect(seen(t.actor)).toEqual(['login', 'query']);
  });

  it('once the session has taken the event, answering it is too late: answer() does nothing and says so', () => {
    const t = setUp();
    t.gate.offer({ type: 'login' }, -1, 'login');
    const event = { type: 'logout' };
    expect(t.gate.offer(event, 12, 'logout')).toBe(Gate.TAKEN); // the handler answers this one
    expect(answer(event, 'late')).toBe(false);
    expect(t.answered).toEqual([]);
  });

  it('ask id 0 is an ask like any other: the session can answer it, and its failure is written to it', () => {
    const t = setUp();
    t.gate.offer({ type: 'login' }, -1, 'login');
    expect(t.gate.offer({ type: 'query' }, 0, 'query')).toBe(Gate.DONE);
    expect(t.answered).toEqual([[0, 'query', 'answered by the session']]);
    expect(t.gate.offer({ type: 'explode' }, 0, 'explode')).toBe(Gate.DONE);
    expect(t.remoteErrors.map((r) => r.slice(0, 2))).toEqual([[0, 'explode']]);
  });

  it('a session that failed takes nothing more: later messages are refused NOT_ACCEPTED, not offered to it again', () => {
    const t = setUp();
    t.gate.offer({ type: 'login' }, -1, 'login');
    t.gate.offer({ type: 'explode' }, 1, 'explode');
    expect(t.actor.getSnapshot().status).toBe('error');
    expect(t.gate.offer({ type: 'query' }, 2, 'query')).toBe(Gate.DONE);
    expect(t.refused.map((r) => r.slice(0, 3))).toEqual([[2, 'query', 'NOT_ACCEPTED']]);
    expect(t.reported).toHaveLength(1); // only the failure itself
    expect(t.remoteErrors).toHaveLength(1);
  });

  it('the answer function is under a registered symbol, so a second copy of the library (its ESM and CJS builds) finds it', () => {
    expect(kAnswer).toBe(Symbol.for('interprocess-converse.answer'));
  });

  it('a tell cannot be answered: the event carries no answer function', () => {
    const t = setUp();
    t.gate.offer({ type: 'login' }, -1, 'login');
    const event = { type: 'query' };
    expect(t.gate.offer(event, -1, 'query')).toBe(Gate.TAKEN);
    expect(kAnswer in event).toBe(false);
    expect(t.answered).toEqual([]);
  });

  it('a session that throws taking an ask: the asker gets the error, it is reported as REMOTE_ERROR naming the type and the cause; DONE', () => {
    const t = setUp();
    t.gate.offer({ type: 'login' }, -1, 'login');
    expect(t.gate.offer({ type: 'explode' }, 11, 'explode')).toBe(Gate.DONE);
    expect(t.remoteErrors).toHaveLength(1);
    expect(t.remoteErrors[0]!.slice(0, 2)).toEqual([11, 'explode']);
    expect((t.remoteErrors[0]![2] as Error).message).toBe('the session broke');
    expect(t.reported).toHaveLength(1);
    const [error, type] = t.reported[0]!;
    expect(type).toBe('explode');
    expect(error.code).toBe('REMOTE_ERROR');
    expect(error.message).toMatch(/^The session machine failed taking "explode" \(Error: the session broke\); the connection is closing\.$/);
    // What the session threw travels with the report: the error itself and its description.
    expect((error as Error & { cause?: unknown }).cause).toBe(t.remoteErrors[0]![2]);
    expect((error as Error & { remote?: unknown }).remote).toMatchObject({ name: 'Error', message: 'the session broke' });
    expect(t.gate.offering).toBeUndefined();
  });

  it('a session that throws taking a tell is reported, and nothing is written (no one to answer)', () => {
    const t = setUp();
    t.gate.offer({ type: 'login' }, -1, 'login');
    expect(t.gate.offer({ type: 'explode' }, -1, 'explode')).toBe(Gate.DONE);
    expect(t.remoteErrors).toEqual([]);
    expect(t.reported.map(([e]) => e.code)).toEqual(['REMOTE_ERROR']);
  });
});
