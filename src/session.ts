import { kAnswer } from './connection/session-gate.js';

/**
 * Answer an ask from inside a session machine. Use it in an action of the machine given as
 * `session` to listen/connect; the asker gets `value` as the reply and the message's handler is
 * not called. Call it while the machine takes the event (in an action of that transition): later
 * is too late, the handler answers. Returns false for a tell (nothing to answer), an event that
 * was already answered, or a call after the transition.
 *
 * ```ts
 * on: { whoami: { actions: ({ context, event }) => answer(event, context.user) } }
 * ```
 */
export function answer(event: unknown, value: unknown): boolean {
  const reply = typeof event === 'object' && event !== null ? (event as Record<symbol, unknown>)[kAnswer] : undefined;
  if (typeof reply !== 'function') return false;
  return (reply as (value: unknown) => boolean)(value) === true;
}
