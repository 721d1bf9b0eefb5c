/**
 * Shared set-ups of test/reliability and test/stress, on top of test/helpers: the rel-* fixture
 * processes, stopping processes with SIGSTOP (always continued before they are killed), a
 * server's connection errors, and opening a socket to another user.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect, type Connection, type ConnectOptions, type ConverseError, type Server } from '../../src/index.js';
import type { RelClientApi, RelServerApi } from '../fixtures/rel-protocol.js';
import { onCleanup, socketName, waitUntil } from '../helpers/cleanup.js';
import { startFixture, type Fixture, type Line } from '../helpers/fixture.js';
import { transportConnectOptions, transportListenOptions, transportName } from '../helpers/transport.js';

export type RelConnection = Connection<RelClientApi, RelServerApi>;

/** An in-process client of RelServerApi; destroyed after the test. */
export async function relConnect(name: string, options: ConnectOptions<RelClientApi, RelServerApi> = {}): Promise<RelConnection> {
  const url = isUrl(name);
  const connection = await connect<RelServerApi, RelClientApi>(name, {
    ...(url ? transportConnectOptions() : {}),
    ...options,
    // A network connect (a TLS handshake, the first NATS connection) takes longer than a local one;
    // "nothing listens" still fails at once, so a reconnect attempt is no slower for it.
    ...(url && options.connectTimeout !== undefined ? { connectTimeout: Math.max(options.connectTimeout, 3000) } : {}),
  });
  onCleanup(() => connection.destroy());
  return connection;
}

/**
 * Start `count` rel-victim processes (each: an ask in flight, half a frame, half a handshake),
 * `parallel` at a time, and SIGKILL each as soon as it is in that state.
 */
export async function killVictims(name: string, count: number, parallel = 4): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      const victim = await startFixture('rel-victim', [name], { manualCleanup: true });
      await victim.kill('SIGKILL');
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

export type Proc = Fixture & { first: Line };

/** A rel-server process (test/fixtures/rel-server.ts) at `name`. */
export async function relServer(options: Record<string, unknown> = {}, name?: string): Promise<{ name: string; server: Proc }> {
  name ??= await testName();
  const server = await startFixture('rel-server', [name, { ...(isUrl(name) ? transportListenOptions() : {}), ...options }]);
  return { name, server };
}

/** A fresh name on the test transport (helpers/transport.ts), known before any server listens there. */
export async function testName(): Promise<string> {
  return (await transportName(true)) ?? socketName();
}

function isUrl(name: string): boolean {
  return /^[a-z]+:\/\//.test(name);
}

/**
 * A rel-client process with `options.connections` connections (default 1); `readyWithin` ms for
 * its first line (all connected), generous where a busy machine makes many connects slow.
 */
export function relClient(name: string, options: Record<string, unknown> = {}, readyWithin?: number): Promise<Proc> {
  return startFixture('rel-client', [name, { ...(isUrl(name) ? transportConnectOptions() : {}), ...options }], readyWithin === undefined ? {} : { timeout: readyWithin });
}

export interface ServerStats {
  heap: number;
  fds: number;
  connections: number;
  children: number;
  live: number;
  cores: number;
  perUid: number;
  hangStarted: number;
  hangAborted: number;
  errors: Record<string, number>;
}

export async function statsOf(server: Proc): Promise<ServerStats> {
  return (await server.request({ op: 'stats' }, 20_000)) as unknown as ServerStats;
}

/** Poll a rel-server's stats until `predicate` holds; returns the last stats. */
export async function statsUntil(server: Proc, predicate: (stats: ServerStats) => boolean, what: string, timeout = 10_000): Promise<ServerStats> {
  let last = await statsOf(server);
  const deadline = performance.now() + timeout;
  while (!predicate(last)) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}; last stats: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    last = await statsOf(server);
  }
  return last;
}

/**
 * Stop a process with SIGSTOP. Cleanup continues it (SIGCONT) before the fixture's own cleanup
 * kills it (cleanups run most recent first), so no stopped process is ever left behind.
 */
export function stopProcess(fixture: Proc): void {
  process.kill(fixture.pid, 'SIGSTOP');
  onCleanup(() => continueProcess(fixture));
}

export function continueProcess(fixture: Proc): void {
  try {
    process.kill(fixture.pid, 'SIGCONT');
  } catch {
    /* already gone */
  }
}

/** Every `connectionError` of an in-process server, in order. */
export function connectionErrors(server: Server): ConverseError[] {
  const errors: ConverseError[] = [];
  server.on('connectionError', (error) => errors.push(error));
  return errors;
}

/** Open a socket name's private directory to other users (0755), for the tests with a second uid. */
export function openDirectory(name: string): void {
  fs.chmodSync(path.dirname(name), 0o755);
}

export const NOBODY = 65534;

/** True when the tests may switch to a second uid (they run as root, and peer credentials load). */
export function canSwitchUser(): boolean {
  return process.platform === 'linux' && process.getuid?.() === 0;
}

/** The time `fn` takes, in ms. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

/** Ask `ask` repeatedly until `stop()`; returns the latencies (ms). Used to show others are still served. */
export async function latencies(ask: () => Promise<unknown>, stop: () => boolean, pauseMs = 20): Promise<number[]> {
  const samples: number[] = [];
  while (!stop()) {
    const started = performance.now();
    await ask();
    samples.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  return samples;
}

export { waitUntil };
