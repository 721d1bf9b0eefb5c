/**
 * Per-test cleanup for integration tests: servers, connections, raw sockets, child processes
 * and socket directories are registered as they are made and torn down in `afterEach`, even
 * when the test failed half-way.
 *
 *   import { afterEach } from 'vitest';
 *   import { cleanup, socketName } from '../helpers/cleanup.js';
 *   afterEach(cleanup);
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateSocketName } from '../../src/index.js';

type Cleanup = () => unknown;

const cleanups: Cleanup[] = [];
const socketDirs = new Set<string>();

/** Run `fn` in afterEach (most recently registered first). */
export function onCleanup(fn: Cleanup): void {
  cleanups.push(fn);
}

/** A fresh socket name (generateSocketName) whose private directory is removed after the test. */
export function socketName(): string {
  const name = generateSocketName();
  socketDirs.add(path.dirname(name));
  return name;
}

/** Remember a directory to remove after the test (for names not made by socketName()). */
export function removeAfterTest(dir: string): void {
  socketDirs.add(dir);
}

/** Cleans everything registered; never throws, never hangs for more than a few seconds per item. */
export async function cleanup(): Promise<void> {
  const errors: unknown[] = [];
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await withDeadline(Promise.resolve().then(fn), 5000);
    } catch (error) {
      errors.push(error);
    }
  }
  for (const dir of socketDirs) fs.rmSync(dir, { recursive: true, force: true });
  socketDirs.clear();
  if (errors.length > 0) {
    // Cleanup problems should not mask the test's own failure; they are logged, not thrown.
    console.warn('cleanup problems:', errors);
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Resolves after `ms` (the timer is never left behind: the promise always settles). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `predicate` until it holds; throws with `what` after `timeout` ms. */
export async function waitUntil(predicate: () => boolean, what: string, timeout = 5000): Promise<void> {
  const deadline = performance.now() + timeout;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting until ${what}`);
    await sleep(5);
  }
}

/** The error a promise rejects with (fails if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<any> {
  try {
    const value = await promise;
    throw new ResolvedInstead(value);
  } catch (error) {
    if (error instanceof ResolvedInstead) throw new Error(`expected a rejection, got ${String(error.value)}`);
    return error;
  }
}

class ResolvedInstead {
  constructor(readonly value: unknown) {}
}

/**
 * Observe a promise without ever leaving its rejection unhandled: resolves (never rejects) with
 * the outcome and the moment (performance.now()) it settled.
 */
export function settle<T>(promise: Promise<T>): Promise<{ ok: boolean; value?: T; error?: any; at: number }> {
  return promise.then(
    (value) => ({ ok: true, value, at: performance.now() }),
    (error: unknown) => ({ ok: false, error, at: performance.now() }),
  );
}
