/**
 * A Node script run as a real child process with its output collected, for tests that drive a
 * binary (the CLI, example daemons, fixtures). The child is SIGKILLed after the test if it is
 * still running (registered with the per-test cleanup).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { onCleanup, waitUntil } from './cleanup.js';

export interface RunningNode {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the match once `pattern` appears on the stream. */
  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp, timeout?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

/** `node <file> <args…>` with stdin, stdout and stderr piped. */
export function startNode(file: string, args: string[]): RunningNode {
  const child = spawn(process.execPath, [file, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitFor(stream, pattern, timeout = 10_000) {
      let match: RegExpMatchArray | null = null;
      await waitUntil(() => (match = (stream === 'stdout' ? out : err).match(pattern)) !== null, `${pattern} on ${stream}; stdout: ${out.slice(-500)} stderr: ${err.slice(-500)}`, timeout);
      return match!;
    },
  };
}

/** Run `node <file> <args…>` to its end with stdin closed. */
export async function runNode(file: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = startNode(file, args);
  run.child.stdin.end();
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}
