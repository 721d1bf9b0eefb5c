/**
 * Spawning fixture processes (test/fixtures/*.ts, compiled by `npm run build` to
 * dist/test/fixtures/*.js) and talking to them over stdio: the fixture prints one JSON object
 * per line on stdout, and takes JSON command lines on stdin. Every spawned process is killed
 * (SIGKILL) in the test's cleanup, even when the test failed.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onCleanup } from './cleanup.js';

export type Line = Record<string, any>;

export interface Fixture {
  readonly child: ChildProcessWithoutNullStreams;
  readonly pid: number;
  /** Every JSON line the fixture printed so far. */
  readonly lines: Line[];
  /** The first line (already printed or future) that matches; rejects if the process exits first or after `timeout`. */
  waitFor(predicate: (line: Line) => boolean, timeout?: number): Promise<Line>;
  /** Write one command line to the fixture's stdin. */
  send(command: Line): void;
  /** Send a command with a fresh `tag` and wait for the line carrying that tag. */
  request(command: Line, timeout?: number): Promise<Line>;
  /** Resolves once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Kill the process (default SIGKILL) and wait for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** What the fixture wrote on stderr (for failure messages). */
  stderr(): string;
}

let nextTag = 0;

export function fixturePath(name: string): string {
  // CONVERSE_TEST_DIST: an alternative build directory (the tree `npm run build` makes in dist/).
  const dist = process.env.CONVERSE_TEST_DIST;
  const file = dist ? path.join(dist, 'test', 'fixtures', `${name}.js`) : fileURLToPath(new URL(`../../dist/test/fixtures/${name}.js`, import.meta.url));
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` before the integration tests`);
  return file;
}

/**
 * Start a fixture and wait for its first line. By default the first line must say
 * `{ ready: true }`; with `expectReady: false` whatever it says is returned in `first`.
 */
export async function startFixture(
  name: string,
  args: unknown[] = [],
  options: { expectReady?: boolean; env?: NodeJS.ProcessEnv; timeout?: number; /** Kill it yourself (for a process shared by several tests, e.g. in afterAll). */ manualCleanup?: boolean } = {},
): Promise<Fixture & { first: Line }> {
  const child = spawn(process.execPath, [fixturePath(name), ...args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a)))], {
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Line[] = [];
  const waiters: Array<{ predicate: (line: Line) => boolean; resolve: (line: Line) => void }> = [];
  let stderr = '';
  let buffered = '';
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitListeners: Array<() => void> = [];

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
      for (const listener of exitListeners.splice(0)) listener();
    });
  });
  child.stdin.on('error', () => {}); // the child may be gone when we write
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (text.trim() === '') continue;
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        line = { text };
      }
      lines.push(line);
      for (let i = 0; i < waiters.length; i++) {
        const waiter = waiters[i]!;
        if (waiter.predicate(line)) {
          waiters.splice(i--, 1);
          waiter.resolve(line);
        }
      }
    }
  });

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (exitInfo === undefined) child.kill(signal);
    await exited;
  };
  if (!options.manualCleanup) onCleanup(() => kill('SIGKILL'));

  // Generous defaults: on a busy machine (2 cores, load 30) starting a process and its first
  // connections takes many seconds; a fixture that fails still fails, only later.
  const waitFor = (predicate: (line: Line) => boolean, timeout = 30_000): Promise<Line> => {
    const found = lines.find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    const waiting = new Promise<Line>((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (line: Line) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const fail = (why: string): void => {
        const at = waiters.indexOf(waiter);
        if (at < 0) return;
        waiters.splice(at, 1);
        clearTimeout(timer);
        reject(new Error(`fixture ${name} (pid ${child.pid}): ${why}\nlines: ${JSON.stringify(lines).slice(-2000)}\nstderr: ${stderr.slice(-2000)}`));
      };
      const timer = setTimeout(() => fail(`no matching line within ${timeout} ms`), timeout);
      waiters.push(waiter);
      if (exitInfo !== undefined) fail(`exited (${exitInfo.code ?? exitInfo.signal}) before a matching line`);
      else exitListeners.push(() => fail(`exited (${exitInfo!.code ?? exitInfo!.signal}) before a matching line`));
    });
    // A test that failed early leaves some of these unawaited; their rejection when the process is
    // killed in cleanup must not surface as an unhandled rejection in a later test.
    waiting.catch(() => {});
    return waiting;
  };

  const send = (command: Line): void => {
    if (exitInfo === undefined) child.stdin.write(`${JSON.stringify(command)}\n`);
  };

  const fixture: Fixture = {
    child,
    pid: child.pid!,
    lines,
    waitFor,
    send,
    request: (command, timeout) => {
      const tag = `t${++nextTag}`;
      const reply = waitFor((line) => line.tag === tag, timeout);
      send({ ...command, tag });
      return reply;
    },
    exited,
    kill,
    stderr: () => stderr,
  };
  const first = await waitFor(() => true, options.timeout ?? 60_000);
  if ((options.expectReady ?? true) && first.ready !== true) {
    throw new Error(`fixture ${name} did not start: ${JSON.stringify(first)}\nstderr: ${stderr}`);
  }
  return Object.assign(fixture, { first });
}
