/**
 * A daemon you can watch: introspection on, and the live dashboard served in process.
 *
 *   node dist/examples/dashboard.js [socket-name] [--port 8080] [--demo] [--no-dashboard]
 *
 * Prints `READY <socket-name>` once clients can connect and `DASHBOARD <url>` once the page is
 * served (on 127.0.0.1 only). With `--demo` it also starts client processes that come and go
 * (some leave cleanly, some crash), so the page has something to show.
 *
 * Because it listens with `introspection: true`, the command-line tool works against it:
 *
 *   npx interprocess-converse info <socket-name>
 *   npx interprocess-converse call <socket-name> '{"type":"add","a":1,"b":2}'
 *   npx interprocess-converse monitor <socket-name>
 *   npx interprocess-converse dashboard <socket-name>      # the same page, over the socket
 *
 * (The same file runs the demo clients: `node dist/examples/dashboard.js --client <socket-name>`.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, generateSocketName, listen, serveDashboard, type Server } from '../src/index.js';

/** What the daemon serves. */
export type DemoApi = {
  add(e: { a: number; b: number }): number;
  status(): { uptime: number; clients: number };
  log(e: { line: string }): void;
  /** Replies after `ms` (to see pending asks and timeouts). */
  sleep(e: { ms: number }): string;
  /** Always fails (to see REMOTE_ERROR). */
  fail(e: { message: string }): never;
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string' },
    demo: { type: 'boolean' },
    'no-dashboard': { type: 'boolean' },
    client: { type: 'boolean' },
    lifetime: { type: 'string' },
  },
});

if (values.client) await runDemoClient(positionals[0]!, Number(values.lifetime ?? 5000));
else await runDaemon();

async function runDaemon(): Promise<void> {
  const name = positionals[0] ?? generateSocketName();
  const startedAt = Date.now();
  const server: Server<DemoApi> = await listen<DemoApi>(name, {
    handlers: {
      add: ({ a, b }) => a + b,
      status: () => ({ uptime: Date.now() - startedAt, clients: server.connections.size }),
      log: ({ line }, { connection }) => console.log(`[${connection.peer.pid ?? connection.id}] ${line}`),
      sleep: ({ ms }, { signal }) =>
        new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => resolve(`slept ${ms} ms`), ms);
          signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
        }),
      fail: ({ message }) => {
        throw new Error(message);
      },
    },
    // Answer `$converse.*`: the CLI's info / monitor / dashboard, and introspect(connection).
    introspection: true,
  });
  console.log(`READY ${name}`);

  const dashboard = values['no-dashboard'] ? undefined : await serveDashboard(server, { port: Number(values.port ?? 0), title: 'example daemon' });
  if (dashboard) console.log(`DASHBOARD ${dashboard.url}`);

  const children = new Set<ChildProcess>();
  let demoTimer: NodeJS.Timeout | undefined;
  if (values.demo) {
    const self = fileURLToPath(import.meta.url);
    const startClient = (): void => {
      if (children.size >= 4) return;
      const lifetime = 3000 + Math.floor(Math.random() * 9000);
      const child = spawn(process.execPath, [self, '--client', name, '--lifetime', String(lifetime)], { stdio: 'ignore' });
      children.add(child);
      child.once('exit', () => children.delete(child));
    };
    startClient();
    startClient();
    demoTimer = setInterval(startClient, 1500);
  }

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(demoTimer);
    for (const child of children) child.kill('SIGKILL');
    await dashboard?.close();
    await server.close({ timeout: 2000 });
    process.stdout.write('closed\n', () => process.exit(0));
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/** A client that asks a few things, then leaves: cleanly, or (one time in three) by crashing. */
async function runDemoClient(name: string, lifetime: number): Promise<void> {
  const connection = await connect<DemoApi>(name, { handlers: {} });
  const crash = Math.random() < 1 / 3;
  const until = Date.now() + lifetime;
  let i = 0;
  while (Date.now() < until) {
    i++;
    await connection.ask({ type: 'add', a: i, b: i }).catch(() => undefined);
    if (i % 4 === 0) await connection.tell({ type: 'log', line: `tick ${i}` }).catch(() => undefined);
    if (i % 7 === 0) await connection.ask({ type: 'sleep', ms: 800 }).catch(() => undefined);
    if (i % 9 === 0) await connection.ask({ type: 'fail', message: 'demo failure' }).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 150 + Math.random() * 300));
  }
  if (crash) process.exit(1); // no goodbye: the daemon sees CONNECTION_CLOSED
  await connection.close();
  process.exit(0);
}
