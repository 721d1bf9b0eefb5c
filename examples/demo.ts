/**
 * The demo: one daemon process and three client processes talking over a Unix socket.
 *
 *   npm run demo          (builds, then runs node dist/examples/demo.js)
 *
 * 1. pick a fresh socket name and start examples/daemon.js on it as a separate process;
 * 2. wait for its `READY <name>` line;
 * 3. start three examples/client.js processes at once and print their output as it comes
 *    (each line is already prefixed `[daemon]` or `[client N pid]`, so the interleaving reads
 *    like one conversation; each process writes through its own pipe, so two lines from
 *    different processes can show up a little out of their real order);
 * 4. once every client has exited 0, send the daemon SIGTERM and wait for it to exit 0;
 * 5. print a summary. Exit code 0 when all of that worked, 1 (with the reason) otherwise,
 *    including when anything takes longer than 20 s. Children are never left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { generateSocketName } from '../src/index.js';

const CLIENTS = 3;
const DEADLINE_MS = 20_000;
// The compiled demo sits next to the compiled daemon and client (dist/examples/).
const daemonPath = fileURLToPath(new URL('./daemon.js', import.meta.url));
const clientPath = fileURLToPath(new URL('./client.js', import.meta.url));

function say(line: string): void {
  console.log(`[demo] ${line}`);
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Started {
  label: string;
  child: ChildProcess;
  /** Settles once the process has exited and all of its output has been printed. */
  exited: Promise<Exit>;
  /** Lines it printed on stdout. */
  lines: string[];
}

/** Every child still running: killed if the demo fails or is interrupted. */
const running = new Set<ChildProcess>();

/** Start `node <script> ...args`, forwarding its output line by line. */
function start(label: string, script: string, args: string[], onLine?: (line: string) => boolean): Started {
  // process.execPath: the same node binary that runs this demo, whatever is on PATH.
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const lines: string[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    // onLine may swallow a line (the daemon's READY line is for machines, not for people).
    if (onLine?.(line) !== false) console.log(line);
  });
  readline.createInterface({ input: child.stderr! }).on('line', (line) => console.log(`[${label} stderr] ${line}`));
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once('error', (error) => {
      running.delete(child);
      reject(new Error(`could not start ${label}: ${error.message}`));
    });
    // 'close' (not 'exit') comes after the child's stdout/stderr have ended: no output is lost.
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  // Nobody may be awaiting `exited` yet when it rejects; the rejection still reaches whoever does.
  exited.catch(() => {});
  return { label, child, exited, lines };
}

function describe(exit: Exit): string {
  return exit.signal !== null ? `was killed by ${exit.signal}` : `exited ${exit.code}`;
}

/** The private directory generateSocketName() made for this run (Unix). */
let socketDirectory: string | undefined;

async function run(): Promise<void> {
  const startedAt = Date.now();
  const name = generateSocketName();
  if (process.platform !== 'win32') socketDirectory = path.dirname(name);
  say(`socket: ${name}`);

  try {
    // 1-2. The daemon, and its READY line.
    let onReady!: () => void;
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    const daemon = start('daemon', daemonPath, [name], (line) => {
      if (!line.startsWith('READY ')) return true;
      onReady();
      return false;
    });
    await Promise.race([
      ready,
      // If the daemon dies before it is ready, say so rather than waiting for the deadline.
      daemon.exited.then((exit) => {
        throw new Error(`the daemon ${describe(exit)} before it was ready`);
      }),
    ]);
    say(`daemon pid ${daemon.child.pid} is ready; starting ${CLIENTS} clients at once`);

    // 3. The clients, concurrently.
    const clients = Array.from({ length: CLIENTS }, (_, i) => start(`client ${i + 1}`, clientPath, [name, String(i + 1)]));
    const clientExits = await Promise.all(clients.map((client) => client.exited));
    const failures = clients.flatMap((client, i) => (clientExits[i]!.code === 0 ? [] : [`${client.label} ${describe(clientExits[i]!)}`]));
    if (failures.length > 0) throw new Error(failures.join('; '));
    say(`all ${CLIENTS} clients exited 0; sending SIGTERM to the daemon`);

    // 4. Graceful daemon shutdown.
    daemon.child.kill('SIGTERM');
    const daemonExit = await daemon.exited;
    if (daemonExit.code !== 0) throw new Error(`the daemon ${describe(daemonExit)} after SIGTERM (expected exit 0)`);
    // A graceful close removes the socket file (and the private directory it was made in).
    if (process.platform !== 'win32' && fs.existsSync(name)) throw new Error(`the daemon exited but left its socket file ${name}`);

    // 5. Summary.
    const elapsed = ((Date.now() - startedAt) / 1000).toFixed(2);
    say('summary:');
    for (const client of clients) say(`  ${client.label} (pid ${client.child.pid}): exit 0, ${client.lines.length} lines`);
    say(`  daemon (pid ${daemon.child.pid}): exit 0 after SIGTERM, ${daemon.lines.length} lines, socket file removed`);
    say(`OK: ${CLIENTS} clients and the daemon finished cleanly in ${elapsed} s`);
  } finally {
    removeSocketDirectory();
  }
}

/** Best effort, for failures (after success the daemon has already removed it): the directory is ours. */
function removeSocketDirectory(): void {
  if (socketDirectory !== undefined) fs.rmSync(socketDirectory, { recursive: true, force: true });
}

function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
}

// However the demo ends (even by a crash), take the children down with it and leave no socket
// behind. 'exit' listeners must be synchronous; child.kill() and fs.rmSync() are.
process.on('exit', () => {
  killAll();
  removeSocketDirectory();
});
// Ctrl-C or a kill of the demo: exit, which runs the listener above.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping the children`);
    process.exit(1);
  });
}

let deadline: NodeJS.Timeout | undefined;
try {
  await Promise.race([
    run(),
    new Promise<never>((_, reject) => {
      deadline = setTimeout(() => reject(new Error(`took longer than ${DEADLINE_MS / 1000} s`)), DEADLINE_MS);
    }),
  ]);
  process.exitCode = 0;
} catch (error) {
  say(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
  killAll();
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
}
