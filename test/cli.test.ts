/**
 * The command-line tool, run as the real binary (`node dist/src/cli.js`, what the package's
 * `bin` points at) against the example daemon (`dist/examples/dashboard.js`) in a child process.
 * `npm test` builds dist/ first.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../src/index.js';
import { cleanup, onCleanup, socketName } from './helpers/cleanup.js';
import { startFixture } from './helpers/fixture.js';
import { runNode, startNode, type RunningNode } from './helpers/node-process.js';

afterEach(cleanup);

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
const DAEMON = fileURLToPath(new URL('../dist/examples/dashboard.js', import.meta.url));
const VERSION = (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

beforeAll(() => {
  for (const file of [CLI, DAEMON]) if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm test does).`);
});

/** Run the CLI to its end. */
const cli = (...args: string[]) => runNode(CLI, args);
const start = startNode;

async function startDaemon(): Promise<{ name: string; daemon: RunningNode }> {
  const name = socketName();
  const daemon = start(DAEMON, [name, '--no-dashboard']);
  await daemon.waitFor('stdout', /^READY /m);
  return { name, daemon };
}

describe('interprocess-converse (the CLI)', () => {
  it('explains itself: --help, help <command>, --version; bad usage exits 2', async () => {
    // Independent runs, in parallel.
    const [help, callHelp, version, unknown, noSocket, badJson, noType, badTimeout] = await Promise.all([
      cli('--help'),
      cli('help', 'call'),
      cli('--version'),
      cli('frobnicate', '/tmp/x.sock'),
      cli('call'),
      cli('call', '/tmp/x.sock', '{"type":'),
      cli('call', '/tmp/x.sock', '{"a":1}'),
      cli('info', '/tmp/x.sock', '--timeout', 'soon'),
    ]);
    expect(help.code).toBe(0);
    for (const command of ['call', 'tell', 'info', 'connections', 'monitor', 'dashboard', '--json', '--timeout']) expect(help.stdout).toContain(command);
    expect(callHelp.code).toBe(0);
    expect(callHelp.stdout).toContain("call <socket> '<event as JSON>'");
    expect(version.stdout.trim()).toBe(VERSION);

    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    expect(noSocket.code).toBe(2);
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toContain('not valid JSON');
    expect(noType.code).toBe(2);
    expect(badTimeout.code).toBe(2);
  });

  it('call prints the reply as JSON; errors go to stderr with their code and exit status', async () => {
    const { name } = await startDaemon();
    const [sum, split, status, remote, missing, slow, nobody] = await Promise.all([
      cli('call', name, '{"type":"add","a":1,"b":2}'),
      cli('call', name, 'add', '{"a":20,"b":22}', '--json'),
      cli('call', name, 'status'),
      cli('call', name, 'fail', '{"message":"no luck"}'),
      cli('call', name, 'nope', '--json'),
      cli('call', name, 'sleep', '{"ms":4000}', '--timeout', '1000'), // --timeout covers the handshake too: room for a loaded machine
      cli('call', `${name}.absent`, 'add', '{"a":1,"b":1}', '--timeout', '300'),
    ]);
    expect(sum).toMatchObject({ code: 0, stdout: '3\n', stderr: '' });
    expect(split).toMatchObject({ code: 0, stdout: '42\n' });
    expect(JSON.parse(status.stdout)).toHaveProperty('uptime');
    expect(status.stdout).toContain('\n  "'); // pretty-printed without --json

    expect(remote.code).toBe(1);
    expect(remote.stderr).toMatch(/^error REMOTE_ERROR: .*no luck/);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stderr)).toMatchObject({ error: { code: 'NO_HANDLER' } });
    expect(slow.code).toBe(4);
    expect(slow.stderr).toMatch(/^error TIMEOUT: /);
    expect(nobody.code).toBe(3);
    expect(nobody.stderr).toMatch(/^error CONNECT_FAILED: /);
  });

  it('tell sends one-way', async () => {
    const { name, daemon } = await startDaemon();
    const told = await cli('tell', name, '{"type":"log","line":"hello from the shell"}');
    expect(told).toMatchObject({ code: 0, stdout: '' });
    await daemon.waitFor('stdout', /\] hello from the shell$/m);
  });

  it('tell of a type the daemon does not handle is an error and sends nothing; unchecked without introspection, it says so', async () => {
    const { name, daemon } = await startDaemon(); // introspection on
    const [unknown, unknownJson] = await Promise.all([cli('tell', name, '{"type":"lgo","line":"typo"}'), cli('tell', name, 'lgo', '--json')]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^error NO_HANDLER: The daemon does not handle "lgo" \(its message types: .*log.*\)\. Nothing was sent\./);
    expect(JSON.parse(unknownJson.stderr)).toMatchObject({ error: { code: 'NO_HANDLER' } });
    expect(daemon.stdout()).not.toContain('typo');

    const plain = socketName();
    await startFixture('server', [plain]); // handlers, no introspection
    const unchecked = await cli('tell', plain, '{"type":"lgo"}');
    expect(unchecked.code).toBe(0);
    expect(unchecked.stderr).toMatch(/^note: sent; the daemon does not answer introspection, so whether it handles "lgo" could not be checked\.$/m);
  });

  it('connecting: nothing listening fails at once (exit 3) naming the CLI\'s flags; --wait waits; --timeout running out exits 4', async () => {
    const stale = socketName();
    const dead = await startFixture('server', [stale]);
    await dead.kill('SIGKILL'); // leaves its socket file behind
    const started = performance.now();
    const [absent, refused] = await Promise.all([cli('call', `${stale}.absent`, 'status', '--timeout', '20000'), cli('call', stale, 'status', '--timeout', '20000')]);
    expect(performance.now() - started).toBeLessThan(15_000); // not --timeout
    for (const result of [absent, refused]) {
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(/^error CONNECT_FAILED: No server is listening at /);
      expect(result.stderr).toContain('pass --wait');
      expect(result.stderr).not.toMatch(/connectTimeout|waitForServer|replyTimeout/);
    }
    expect(absent.stderr).toContain('ENOENT');
    expect(refused.stderr).toContain('ECONNREFUSED');

    // --wait: the daemon starts after the CLI began; the call succeeds.
    const later = socketName();
    const waiting = start(CLI, ['call', later, 'add', '{"a":2,"b":3}', '--wait', '--timeout', '20000']);
    waiting.child.stdin.end();
    await new Promise((resolve) => setTimeout(resolve, 300));
    start(DAEMON, [later, '--no-dashboard']);
    expect(await waiting.exited).toBe(0);
    expect(waiting.stdout()).toBe('5\n');

    // A server that accepts and never finishes the handshake: --timeout runs out, exit 4.
    const silentName = socketName();
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(silentName, resolve));
    onCleanup(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const stuck = await cli('info', silentName, '--timeout', '300');
    expect(stuck.code).toBe(4);
    expect(stuck.stderr).toMatch(/^error HANDSHAKE_FAILED: /);
    expect(stuck.stderr).toContain('Gave up after --timeout 300 ms.');
  });

  it('monitor exits 1 when the daemon goes away', async () => {
    const { name, daemon } = await startDaemon();
    const monitor = start(CLI, ['monitor', name]);
    await monitor.waitFor('stderr', /Ctrl-C to stop/);
    daemon.child.kill('SIGTERM');
    expect(await monitor.exited).toBe(1);
    expect(monitor.stderr()).toMatch(/^error CONNECTION_CLOSED: The daemon closed the connection/m);
  });

  it('info and connections report what introspection knows', async () => {
    const { name } = await startDaemon();
    const other = await connect(name, { handlers: {} });
    onCleanup(() => other.close({ timeout: 300 }));

    const info = await cli('info', name, '--json');
    expect(info.code).toBe(0);
    const report = JSON.parse(info.stdout) as { server: any; connections: any[] };
    expect(report.server).toMatchObject({
      library: 'interprocess-converse',
      version: VERSION,
      protocolVersion: 1,
      socket: name,
      state: 'listening',
      live: 2,
      messageTypes: ['add', 'status', 'log', 'sleep', 'fail'],
    });
    expect(report.connections).toHaveLength(2);
    expect(report.connections.map((c) => c.id)).toContain(report.server.you);
    expect(report.connections.find((c) => c.id !== report.server.you)).toMatchObject({ state: 'active', peer: { pid: process.pid } });

    const human = await cli('info', name);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`interprocess-converse ${VERSION} · wire protocol 1`);
    expect(human.stdout).toMatch(/connections\s+2 live/);
    expect(human.stdout).toMatch(/ID\s+STATE\s+PID/);
    expect(human.stdout).toContain('(you)');

    const list = await cli('ls', name, '--json');
    expect(JSON.parse(list.stdout)).toHaveLength(2);
  });

  it('info on a daemon without introspection says how to turn it on', async () => {
    const name = socketName();
    await startFixture('server', [name]); // handlers, no introspection
    const info = await cli('info', name);
    expect(info.code).toBe(1);
    expect(info.stderr).toMatch(/^error NO_HANDLER: /);
    expect(info.stderr).toContain('introspection: true');
  });

  it('monitor streams state changes until Ctrl-C', async () => {
    const { name } = await startDaemon();
    const monitor = start(CLI, ['monitor', name, '--json']);
    await monitor.waitFor('stderr', /^monitoring .*Ctrl-C to stop\.$/m);
    const call = await cli('call', name, 'add', '{"a":1,"b":1}');
    expect(call.code).toBe(0);
    await monitor.waitFor('stdout', /"to":"closed"/);
    const events = monitor
      .stdout()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { kind: string; id: string; from: string | null; to: string });
    const id = events[0]!.id;
    expect(events.filter((e) => e.id === id).map((e) => `${e.from}→${e.to}`)).toEqual(['null→handshake', 'handshake→active', 'active→closing', 'closing→closed']);

    monitor.child.kill('SIGINT');
    expect(await monitor.exited).toBe(0);
  });

  it('monitor prints readable lines without --json', async () => {
    const { name } = await startDaemon();
    const monitor = start(CLI, ['monitor', name]);
    await monitor.waitFor('stderr', /Ctrl-C to stop/);
    const other = await connect(name, { handlers: {} });
    other.destroy();
    await monitor.waitFor('stdout', /active → closed\s+pid \d+.*CONNECTION_CLOSED/);
    expect(monitor.stdout()).toMatch(/^\d\d:\d\d:\d\d\.\d{3}  connection \S+  new → handshake  pid \d+ uid \d+$/m);
    monitor.child.kill('SIGTERM');
    expect(await monitor.exited).toBe(0);
  });

  it('dashboard serves the page for the daemon, with data over introspection', async () => {
    const { name } = await startDaemon();
    const dashboard = start(CLI, ['dashboard', name, '--port', '0']);
    const [url] = await dashboard.waitFor('stdout', /http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+/);
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('data-machine="connection"');
    const snapshot = new URL('/api/snapshot', url);
    expect((await fetch(snapshot)).status).toBe(403); // the token is needed
    snapshot.search = new URL(url).search;
    const state = (await (await fetch(snapshot)).json()) as { mode: string; server: { socket: string }; connections: Array<{ id: string }>; self: string };
    expect(state.mode).toBe('remote');
    expect(state.server.socket).toBe(name);
    expect(state.connections.map((c) => c.id)).toContain(state.self);
    dashboard.child.kill('SIGINT');
    expect(await dashboard.exited).toBe(0);
    await expect(fetch(url)).rejects.toThrow();
  });
});
