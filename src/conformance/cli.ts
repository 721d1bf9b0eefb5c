import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { generateSocketName } from '../transport/names.js';
import { clientCases, type ClientContext } from './client-cases.js';
import { formatResult, runCases, summary, type CaseResult } from './runner.js';
import { serverCases, type ServerContext } from './server-cases.js';
import { CaseFailure, WirePeer } from './wire-peer.js';

/**
 * `interprocess-converse conformance …`: runs the conformance cases against another
 * implementation and prints a report (docs/CONFORMANCE.md).
 *
 *   conformance server <socket>          the kit connects to a server listening at <socket>
 *   conformance client <command …>       the kit listens, starts the command once per case with
 *                                        the socket name in CONVERSE_SOCKET (and in place of any
 *                                        argument that is exactly "{socket}"), and tests the client
 */

export const CONFORMANCE_HELP = `interprocess-converse conformance server <socket> [options]
interprocess-converse conformance client [options] -- <command> [args…]

Runs numbered cases against another implementation of the wire protocol and prints one line per
case with the docs/PROTOCOL.md section it checks. Exit status 0 when every case passed, 1 when
one failed, 2 for bad usage.

server <socket>   connect to a server listening at <socket>; it must serve the conformance
                  message types (echo, fail, count, sleep, callback, note, notes)
client <command>  listen on a fresh socket and start <command> for each case, with the socket
                  name in the environment variable CONVERSE_SOCKET (an argument that is exactly
                  "{socket}" is replaced by it too); the client must connect and follow the
                  conformance client rules (docs/CONFORMANCE.md)

Options:
  --case <id>       run only this case (repeatable: --case S3 --case S9)
  --timeout <ms>    time allowed for each expected reaction, default 3000
  --json            print the results as one JSON document
  --list            list the cases without running them
`;

export async function runConformance(argv: string[], out: (text: string) => void, err: (text: string) => void): Promise<number> {
  const role = argv[0];
  if (role === undefined || role === '-h' || role === '--help' || role === 'help') {
    out(CONFORMANCE_HELP);
    return role === undefined ? 2 : 0;
  }
  const only: string[] = [];
  let timeout = 3000;
  let json = false;
  let list = false;
  const positionals: string[] = [];
  let i = 1;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (positionals.length > 0 && role === 'client') {
      // Everything after the command's first word belongs to the command.
      positionals.push(...argv.slice(i));
      break;
    }
    if (arg === '--case') only.push(String(argv[++i] ?? ''));
    else if (arg === '--timeout') timeout = Number(argv[++i]);
    else if (arg === '--json') json = true;
    else if (arg === '--list') list = true;
    else if (arg === '-h' || arg === '--help') {
      out(CONFORMANCE_HELP);
      return 0;
    } else if (arg.startsWith('--')) return usage(err, `unknown option ${arg}`);
    else positionals.push(arg);
  }
  if (!Number.isInteger(timeout) || timeout < 1) return usage(err, '--timeout must be a positive integer (ms)');
  if (role !== 'server' && role !== 'client') return usage(err, 'the first argument must be "server" or "client"');
  const cases = role === 'server' ? serverCases : clientCases;
  const unknown = only.filter((id) => !cases.some((c) => c.id === id));
  if (unknown.length > 0) return usage(err, `no such case: ${unknown.join(', ')}`);
  if (list) {
    for (const c of cases) out(`${c.id.padEnd(4)} §${c.section.padEnd(5)} ${c.title}\n`);
    return 0;
  }
  if (positionals.length === 0) return usage(err, role === 'server' ? 'missing the socket name' : 'missing the command to start');
  if (role === 'server' && positionals.length > 1) return usage(err, `unexpected arguments: ${positionals.slice(1).join(' ')}`);

  const print = (result: CaseResult): void => {
    if (!json) out(`${formatResult(result)}\n`);
  };
  // Cases that go through every test vector wait up to `timeout` for each of them.
  const caseTimeout = timeout * 40 + 5000;
  let results: CaseResult[];
  if (role === 'server') {
    const name = positionals[0]!;
    if (!json) out(`conformance: server at ${name}\n`);
    results = await runCases<ServerContext>(serverCases, {
      only,
      caseTimeout,
      onResult: print,
      context: async () => {
        const context: ServerContext = { name, timeout, peers: [] };
        return { context, dispose: async () => context.peers.forEach((p) => p.destroy()) };
      },
    });
  } else {
    const command = positionals;
    if (!json) out(`conformance: client ${command.join(' ')}\n`);
    results = await runCases<ClientContext>(clientCases, { only, caseTimeout, onResult: print, context: () => clientContext(command, timeout) });
  }
  if (json) out(`${JSON.stringify({ role, results, passed: results.filter((r) => r.ok).length, failed: results.filter((r) => !r.ok).length })}\n`);
  else out(`${summary(results)}\n`);
  return results.every((r) => r.ok) ? 0 : 1;
}

function usage(err: (text: string) => void, message: string): number {
  err(`conformance: ${message}\n\n${CONFORMANCE_HELP}`);
  return 2;
}

/**
 * A fresh listening socket and the client command started against it. The first connection is
 * handed to the case; the process is stopped (SIGTERM, then SIGKILL) when the case ends.
 */
async function clientContext(command: string[], timeout: number): Promise<{ context: ClientContext; dispose: () => Promise<void> }> {
  const name = generateSocketName();
  const accepted: WirePeer[] = [];
  const waiting: Array<(peer: WirePeer) => void> = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const peer = new WirePeer(socket);
    accepted.push(peer);
    waiting.shift()?.(peer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(name, () => resolve());
  });
  const args = command.slice(1).map((a) => (a === '{socket}' ? name : a));
  let output = '';
  const child: ChildProcess = spawn(command[0]!, args, { env: { ...process.env, CONVERSE_SOCKET: name }, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', (error) => {
      output += `\ncould not start the command: ${error.message}`;
      resolve(null);
    });
  });
  const context: ClientContext = {
    name,
    timeout,
    exited,
    output: () => output,
    accept: () =>
      new Promise<WirePeer>((resolve, reject) => {
        const ready = accepted.find((p) => !context.handedOut.includes(p));
        if (ready) {
          context.handedOut.push(ready);
          resolve(ready);
          return;
        }
        const timer = setTimeout(() => reject(new CaseFailure(`the client did not connect within ${timeout * 3} ms${output ? `; its output:\n${output.trim()}` : ''}`)), timeout * 3);
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new CaseFailure(`the client exited (status ${code}) without connecting${output ? `; its output:\n${output.trim()}` : ''}`));
        });
        waiting.push((peer) => {
          clearTimeout(timer);
          context.handedOut.push(peer);
          resolve(peer);
        });
      }),
    handedOut: [],
  };
  return {
    context,
    dispose: async () => {
      for (const peer of accepted) peer.destroy();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (process.platform !== 'win32') fs.rmSync(path.dirname(name), { recursive: true, force: true });
    },
  };
}
