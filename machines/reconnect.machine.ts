import { assign, fromPromise, setup, type ActorRefFrom } from 'xstate';
import { ConverseError } from '../src/errors.js';

/**
 * A reconnecting client's logical connection: active → reconnecting → active … → closed.
 *
 * Each physical connection is a `connection` machine of its own; this machine sits above them
 * and decides when to try again: exponential backoff with jitter, capped, for a limited number
 * of attempts. What happens to messages meanwhile is plain code (src/reconnect.ts): asks pending
 * on the lost connection fail with CONNECTION_CLOSED (never resent: the user decides), and asks
 * made while disconnected wait in a bounded queue or fail at once.
 */

export interface ReconnectPolicy {
  /** First delay before reconnecting, ms. @default 100 */
  initialDelay: number;
  /** Longest delay between attempts, ms. @default 5000 */
  maxDelay: number;
  /** Each failed attempt multiplies the delay by this. @default 2 */
  factor: number;
  /** ± this fraction of random jitter on every delay (spreads a herd of clients). @default 0.2 */
  jitter: number;
  /** Give up (and close) after this many failed attempts in a row. @default Infinity */
  maxAttempts: number;
}

export interface ReconnectInput {
  policy: ReconnectPolicy;
  /** Makes one new physical connection; resolves when its handshake is done. */
  reconnect: () => Promise<unknown>;
  /** Called with the new connection's core when an attempt succeeds. */
  adopt: (established: unknown) => void;
  /** Called once when the logical connection ends (closed by the user, or attempts exhausted). */
  finish: (error: ConverseError | undefined) => void;
}

export interface ReconnectContext extends ReconnectInput {
  /** Failed attempts since the connection was lost. */
  attempt: number;
  /** The backoff chosen for the current (or last) wait before an attempt, ms: jitter included. */
  delay: number;
  /** Times the connection has been re-established. */
  reconnects: number;
  lastError: ConverseError | undefined;
}

export type ReconnectEvent = { type: 'CONNECTION.LOST'; error?: ConverseError } | { type: 'CLOSE' };

export const reconnectMachine = setup({
  types: {
    context: {} as ReconnectContext,
    events: {} as ReconnectEvent,
    input: {} as ReconnectInput,
  },
  actors: {
    reconnect: fromPromise<unknown, { reconnect: () => Promise<unknown> }>(({ input }) => input.reconnect()),
  },
  delays: {
    // Chosen once on entering `waiting` (chooseDelay), so what was chosen can be read back.
    backoff: ({ context }) => context.delay,
  },
  guards: {
    attemptsLeft: ({ context }) => context.attempt + 1 < context.policy.maxAttempts,
  },
  actions: {
    chooseDelay: assign({
      delay: ({ context }) => {
        const { initialDelay, maxDelay, factor, jitter } = context.policy;
        const base = Math.min(maxDelay, initialDelay * factor ** context.attempt);
        // Node's timers turn a delay above 2^31-1 ms into 1 ms.
        return Math.min(2 ** 31 - 1, Math.max(0, base * (1 + jitter * (2 * Math.random() - 1))));
      },
    }),
    recordLoss: assign({
      attempt: 0,
      lastError: ({ event }) => (event.type === 'CONNECTION.LOST' ? event.error : undefined),
    }),
    countFailedAttempt: assign({
      attempt: ({ context }) => context.attempt + 1,
      lastError: ({ event }) => {
        const error = (event as { error?: unknown }).error;
        return error instanceof ConverseError ? error : new ConverseError('CONNECT_FAILED', String((error as Error)?.message ?? error), { cause: error });
      },
    }),
    adoptConnection: ({ context, event }) => context.adopt((event as unknown as { output: unknown }).output),
    countReconnect: assign({ reconnects: ({ context }) => context.reconnects + 1, attempt: 0 }),
    recordGiveUp: assign({
      lastError: ({ context, event }) =>
        new ConverseError(
          'CONNECTION_CLOSED',
          `Gave up reconnecting after ${context.policy.maxAttempts} attempts: ${(((event as { error?: Error }).error ?? context.lastError)?.message ?? 'the server did not come back').replace(/\.$/, '')}.`,
          { cause: (event as { error?: unknown }).error },
        ),
    }),
    finish: ({ context }) => context.finish(context.lastError),
  },
}).createMachine({
  id: 'reconnectingConnection',
  context: ({ input }) => ({ ...input, attempt: 0, delay: 0, reconnects: 0, lastError: undefined }),
  initial: 'active',
  states: {
    active: {
      on: {
        'CONNECTION.LOST': { target: 'reconnecting', actions: 'recordLoss' },
        CLOSE: { target: 'closed', actions: assign({ lastError: undefined }) },
      },
    },
    reconnecting: {
      initial: 'waiting',
      on: {
        CLOSE: { target: 'closed', actions: assign({ lastError: undefined }) },
      },
      states: {
        waiting: {
          entry: 'chooseDelay',
          after: { backoff: 'connecting' },
        },
        connecting: {
          invoke: {
            src: 'reconnect',
            input: ({ context }) => ({ reconnect: context.reconnect }),
            onDone: { target: '#reconnectingConnection.active', actions: ['adoptConnection', 'countReconnect'] },
            onError: [
              { guard: 'attemptsLeft', target: 'waiting', actions: 'countFailedAttempt' },
              { target: '#reconnectingConnection.closed', actions: 'recordGiveUp' },
            ],
          },
        },
      },
    },
    closed: {
      type: 'final',
      entry: 'finish',
    },
  },
});

export type ReconnectMachine = typeof reconnectMachine;
export type ReconnectActorRef = ActorRefFrom<ReconnectMachine>;
