/**
 * The server the bounds tests attack (test/reliability/bounds.test.ts at small scale,
 * test/stress/attacks.test.ts at the scale), with handlers that make it hold things,
 * counters of the handlers started and running, and the lookup of an attacker's connection.
 */
import { listen, type Connection, type Server } from '../../src/index.js';
import { onCleanup, sleep, socketName, waitUntil } from './cleanup.js';

const KiB = 1024;
/** What `big` answers and `endless` streams. */
export const BIG = 'x'.repeat(64 * KiB);
/** What `medium` answers: over a 1 KiB budget, under Node's 16 KiB high-water mark. */
export const MEDIUM = 'm'.repeat(4 * KiB);

export interface Counters {
  /** Handlers started so far. */
  started: number;
  /** Handlers running now. */
  running: number;
  /** The most ever running at once. */
  most: number;
}

/** Listen on a fresh name with `options` (spread last, so they may replace the handlers too); closed after the test. */
export async function startAttackedServer(options: Record<string, unknown>): Promise<{ name: string; server: Server; counters: Counters }> {
  const name = socketName();
  const counters: Counters = { started: 0, running: 0, most: 0 };
  const track = async <T>(work: () => Promise<T>): Promise<T> => {
    counters.started++;
    counters.most = Math.max(counters.most, ++counters.running);
    try {
      return await work();
    } finally {
      counters.running--;
    }
  };
  const server = await listen(name, {
    handlers: {
      add: (e: { a: number; b: number }) => e.a + e.b,
      /** Never answers (until the connection goes). */
      hang: (_e: unknown, ctx: { signal: AbortSignal }) => track(() => new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))),
      /** Answers `value` after `ms`. */
      slow: (e: { ms: number; value: unknown }) => track(() => sleep(e.ms).then(() => e.value)),
      /** Answers 4 KiB at once. */
      medium: () => MEDIUM,
      /** Answers 64 KiB, asynchronously. */
      big: () => track(() => Promise.resolve(BIG)),
      /** Streams 64 KiB items for ever. */
      endless: async function* () {
        for (;;) yield BIG;
      },
    },
    ...options,
  } as never);
  onCleanup(() => server.close({ timeout: 300 }));
  return { name, server, counters };
}

/** The server's connection from the attacker process `pid`. */
export async function connectionOf(server: Server, pid: number, timeout?: number): Promise<Connection> {
  const find = (): Connection | undefined => [...server.connections.values()].find((c) => c.peer.pid === pid);
  await waitUntil(() => find() !== undefined, 'the server registered the attacker', timeout);
  return find()!;
}
