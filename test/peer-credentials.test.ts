import { spawn, type ChildProcessWithoutNullStreams, type SpawnOptionsWithoutStdio } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { peerCredentialsSupported, readPeerCredentials } from '../src/transport/peer-credentials.js';

// Child scripts (CommonJS, `node -e`). Each prints one line once ready and
// stays alive until its stdin closes or it is killed.
const CLIENT_SCRIPT = `
const s = require('node:net').connect(process.env.PC_PATH, () => process.stdout.write('connected\\n'));
s.on('error', (e) => { process.stderr.write(e.message); process.exit(2); });
process.stdin.on('end', () => process.exit(0)).resume();
`;
const EXIT_AFTER_CONNECT_SCRIPT = `
const s = require('node:net').connect(process.env.PC_PATH, () => process.exit(0));
s.on('error', (e) => { process.stderr.write(e.message); process.exit(2); });
`;
const SERVER_SCRIPT = `
const srv = require('node:net').createServer(() => {}).listen(process.env.PC_PATH, () => process.stdout.write('listening\\n'));
srv.on('error', (e) => { process.stderr.write(e.message); process.exit(2); });
process.stdin.on('end', () => process.exit(0)).resume();
`;

const children: ChildProcessWithoutNullStreams[] = [];
const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(
    children.splice(0).map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh private directory and a socket path inside it. */
function socketPath(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pc-'));
  dirs.push(dir);
  return path.join(dir, 's.sock');
}

function spawnNode(script: string, sockPath: string, options: SpawnOptionsWithoutStdio = {}) {
  const child = spawn(process.execPath, ['-e', script], {
    cwd: path.dirname(sockPath),
    env: { ...process.env, PC_PATH: sockPath },
    ...options,
  });
  children.push(child);
  return child;
}

/** Resolves when the child prints `line`; rejects if it exits first. */
function waitForLine(child: ChildProcessWithoutNullStreams, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.split('\n').includes(line)) resolve();
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`child exited (${code ?? signal}) before "${line}": ${err.trim()}`)),
    );
  });
}

function waitForExit(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });
}

/** A listening server whose first accepted socket is `accepted`. */
async function listen(where: string | { port: number; host: string }, options: net.ServerOpts = {}) {
  let onAccept!: (socket: net.Socket) => void;
  const accepted = new Promise<net.Socket>((resolve) => (onAccept = resolve));
  const server = net.createServer(options, (socket) => {
    sockets.push(socket);
    onAccept(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => resolve());
  });
  return { server, accepted };
}

function connect(options: net.NetConnectOpts): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(options, () => resolve(socket));
    sockets.push(socket);
    socket.once('error', reject);
  });
}

const onUnix = process.platform !== 'win32';
const itNative = it.runIf(onUnix && peerCredentialsSupported);

describe('readPeerCredentials', () => {
  it.runIf(process.platform === 'linux' && process.arch === 'x64')('loads the prebuilt addon on linux-x64', () => {
    // Guards the tests below against silently skipping because the binary went missing.
    expect(peerCredentialsSupported).toBe(true);
  });

  itNative('reports the connecting child process on the accepted socket', async () => {
    const sockPath = socketPath();
    const { accepted } = await listen(sockPath);
    const child = spawnNode(CLIENT_SCRIPT, sockPath);
    const [socket] = await Promise.all([accepted, waitForLine(child, 'connected')]);

    expect(readPeerCredentials(socket)).toEqual({
      pid: child.pid,
      uid: process.getuid!(),
      gid: process.getgid!(),
    });
  });

  itNative('reports the server child process on the client socket', async () => {
    const sockPath = socketPath();
    const child = spawnNode(SERVER_SCRIPT, sockPath);
    await waitForLine(child, 'listening');
    const socket = await connect({ path: sockPath });

    expect(readPeerCredentials(socket)).toEqual({
      pid: child.pid,
      uid: process.getuid!(),
      gid: process.getgid!(),
    });
  });

  itNative('keeps the credentials captured at connect() after the peer has exited', async () => {
    const sockPath = socketPath();
    // allowHalfOpen: the peer's exit must not make Node close our end before we read it.
    const { accepted } = await listen(sockPath, { allowHalfOpen: true });
    const child = spawnNode(EXIT_AFTER_CONNECT_SCRIPT, sockPath);
    const [socket, code] = await Promise.all([accepted, waitForExit(child)]);

    expect(code).toBe(0);
    expect(readPeerCredentials(socket).pid).toBe(child.pid);
  });

  // Needs root to spawn a child as another user (nobody/nogroup, 65534). The
  // directory and the socket are opened up to everyone so that user can connect.
  it.skipIf(process.getuid?.() !== 0 || !peerCredentialsSupported)('reports the uid and gid of a peer running as another user', async () => {
    const sockPath = socketPath();
    fs.chmodSync(path.dirname(sockPath), 0o777);
    const { accepted } = await listen(sockPath);
    fs.chmodSync(sockPath, 0o777);
    const child = spawnNode(CLIENT_SCRIPT, sockPath, { uid: 65534, gid: 65534 });
    const [socket] = await Promise.all([accepted, waitForLine(child, 'connected')]);

    expect(readPeerCredentials(socket)).toEqual({ pid: child.pid, uid: 65534, gid: 65534 });
  });

  it.runIf(onUnix)('returns {} without throwing for a destroyed socket', async () => {
    const sockPath = socketPath();
    const { accepted } = await listen(sockPath);
    const client = await connect({ path: sockPath });
    const socket = await accepted;
    socket.destroy();
    client.destroy();

    expect(readPeerCredentials(socket)).toEqual({});
    expect(readPeerCredentials(client)).toEqual({});
  });

  it.runIf(process.platform === 'win32')('returns {} for a Windows named pipe', async () => {
    const pipe = `\\\\.\\pipe\\pc-${process.pid}-${Date.now()}`;
    const { accepted } = await listen(pipe);
    const client = await connect({ path: pipe });

    expect(peerCredentialsSupported).toBe(false);
    expect(readPeerCredentials(await accepted)).toEqual({});
    expect(readPeerCredentials(client)).toEqual({});
  });

  it('returns {} for a socket that was never connected', () => {
    expect(readPeerCredentials(new net.Socket())).toEqual({});
  });

  it('returns {} for a TCP socket (the kernel has no peer credentials for it)', async () => {
    const { server, accepted } = await listen({ port: 0, host: '127.0.0.1' });
    const { port } = server.address() as net.AddressInfo;
    const client = await connect({ port, host: '127.0.0.1' });
    const socket = await accepted;

    expect(readPeerCredentials(socket)).toEqual({});
    expect(readPeerCredentials(client)).toEqual({});
  });

  it.runIf(onUnix)('returns {} when disabled with INTERPROCESS_CONVERSE_NO_PEERCRED=1', async () => {
    const previous = process.env.INTERPROCESS_CONVERSE_NO_PEERCRED;
    process.env.INTERPROCESS_CONVERSE_NO_PEERCRED = '1';
    try {
      // A fresh module instance reads the variable again at load time.
      vi.resetModules();
      const fresh = await import('../src/transport/peer-credentials.js');
      expect(fresh.peerCredentialsSupported).toBe(false);

      const sockPath = socketPath();
      const { accepted } = await listen(sockPath);
      await connect({ path: sockPath });
      expect(fresh.readPeerCredentials(await accepted)).toEqual({});
    } finally {
      if (previous === undefined) delete process.env.INTERPROCESS_CONVERSE_NO_PEERCRED;
      else process.env.INTERPROCESS_CONVERSE_NO_PEERCRED = previous;
      vi.resetModules();
    }
  });
});
