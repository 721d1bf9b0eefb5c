import type { AnyActorRef } from 'xstate';

/**
 * Give back what XState 5 keeps of every actor without further use (together about 0.55 KiB of
 * an idle connection's heap). Each is left exactly as it is unless it looks as expected (another
 * XState version keeps its own shape).
 */
const OPTION_KEYS = ['clock', 'logger', 'devTools', 'id', 'src', 'parent', 'syncSnapshot', 'systemId', 'input'] as const;

type ActorOptions = Record<(typeof OPTION_KEYS)[number], unknown>;

/** Whether a spawned actor's options had exactly OPTION_KEYS (checked on the first one). */
let spawnedShapeChecked: boolean | undefined;

/**
 * `actor.options` is made as `{ ...defaultOptions, ...options }`. On the V8 of Node 20, an object
 * made by spreading a non-empty object and then given more properties gets a hidden class of its
 * own (a map and a descriptor array, ~0.3 KiB) instead of sharing one, so every actor held its
 * own. XState reads `options` only while it creates and starts the actor: once it has started,
 * the same properties written as one literal share a single hidden class across all connections,
 * and the input (read once, for the initial context) is let go. Only when the keys are exactly
 * these.
 */
export function compactActorOptions(actor: AnyActorRef): void {
  const internals = actor as unknown as { options?: unknown };
  const options = internals.options;
  // Only a spawned actor's (a server's connections): a client's root actor has options of its own.
  if (typeof options !== 'object' || options === null || !('syncSnapshot' in options)) return;
  // XState spawns every child with the same keys, so they are checked once (each object has a
  // hidden class of its own, which makes walking its keys slow: ~10 µs an accept).
  spawnedShapeChecked ??= hasExactly(options, OPTION_KEYS);
  if (spawnedShapeChecked) {
    const o = options as ActorOptions;
    internals.options = {
      clock: o.clock,
      logger: o.logger,
      devTools: o.devTools,
      id: o.id,
      src: o.src,
      parent: o.parent,
      syncSnapshot: o.syncSnapshot,
      systemId: o.systemId,
      input: undefined,
    };
  }
}

/**
 * `actor._deferred` queues the effects of XState's own actions (timers, spawns, sends) during a
 * transition and is emptied with `shift()` after it; optimised code keeps the emptied array's
 * backing store (17 slots, 152 B). Setting the length of the empty array to 0 releases it. Call
 * after each transition (a new snapshot): only an empty queue is touched.
 */
export function releaseEmptiedQueue(actor: AnyActorRef): void {
  const deferred = (actor as unknown as { _deferred?: unknown })._deferred;
  if (Array.isArray(deferred) && deferred.length === 0) deferred.length = 0;
}

/** The object's own enumerable keys are exactly `keys`, in order (without making an array of them). */
function hasExactly(object: object, keys: readonly string[]): boolean {
  let i = 0;
  for (const key in object) {
    if (!Object.hasOwn(object, key) || key !== keys[i]) return false;
    i++;
  }
  return i === keys.length;
}
