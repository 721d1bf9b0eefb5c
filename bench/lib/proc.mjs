// Child processes of the benchmark and a tiny request/response channel over Node's IPC pipe
// (the control channel is a separate fd, so it never shares the socket being measured).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { socketPath } from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CHILD = path.join(here, 'child.mjs');

export class Channel {
  constructor(endpoint, handlers = {}) {
    this.endpoint = endpoint;
    this.handlers = handlers;
    this.nextId = 0;
    this.pending = new Map();
    endpoint.on('message', (msg) => this.onMessage(msg));
  }
  call(cmd, args) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.endpoint.connected === false) return reject(new Error(`${cmd}: the process is gone`));
      this.pending.set(id, { resolve, reject, cmd });
      this.endpoint.send({ kind: 'req', id, cmd, args }, (error) => {
        if (error && this.pending.delete(id)) reject(error);
      });
    });
  }
  reply(msg) {
    if (this.endpoint.connected !== false) this.endpoint.send(msg, () => {});
  }
  failAll(error) {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }
  async onMessage(msg) {
    if (msg === null || typeof msg !== 'object') return;
    if (msg.kind === 'res') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(Object.assign(new Error(`${p.cmd}: ${msg.error}`), { remoteStack: msg.stack }));
      return;
    }
    if (msg.kind === 'req') {
      const handler = this.handlers[msg.cmd];
      try {
        if (!handler) throw new Error(`no handler for ${msg.cmd}`);
        const value = await handler(msg.args);
        this.reply({ kind: 'res', id: msg.id, ok: true, value });
      } catch (error) {
        this.reply({ kind: 'res', id: msg.id, ok: false, error: String(error?.message ?? error), stack: error?.stack });
      }
    }
  }
}

let tasksetAvailable;
function hasTaskset() {
  if (tasksetAvailable === undefined) {
    tasksetAvailable = process.platform === 'linux' && spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0;
  }
  return tasksetAvailable;
}

/**
 * Start `node child.mjs <role> <peer>` through a shell that raises the open-file limit (as far
 * as the hard limit allows) and, if asked and possible, pins it to one CPU.
 */
export function spawnChild(role, peer, { cpu, nodeFlags = [], nofile = 65536, handlers = {}, env } = {}) {
  const pin = cpu !== undefined && hasTaskset() ? `taskset -c ${cpu} ` : '';
  const script = `ulimit -n ${nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec ${pin}"$0" "$@"`;
  const proc = spawn('/bin/sh', ['-c', script, process.execPath, '--expose-gc', ...nodeFlags, CHILD, role, peer], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  });
  const channel = new Channel(proc, handlers);
  let onReady;
  const ready = new Promise((resolve, reject) => (onReady = { resolve, reject }));
  proc.on('message', (msg) => {
    if (msg?.kind === 'ready') onReady.resolve();
  });
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      const error = new Error(`${role} ${peer} exited (code ${code}, signal ${signal})`);
      channel.failAll(error);
      onReady.reject(error);
      resolve({ code, signal });
    });
  });
  ready.catch(() => {});
  return {
    proc,
    channel,
    ready,
    exited,
    call: (cmd, args) => channel.call(cmd, args),
    kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}

/**
 * One server process (CPU 0) and one client process (CPU 1) of `peerId` on a fresh socket (or at
 * `address`: a tcp:// or nats:// name, for bench/transports.mjs); the client runs `task` and may
 * query the server through the parent. Both are torn down after.
 * `maxMessageSize` null leaves the peer at its own default; by default every peer gets 2 MiB, room for S3.
 */
export async function runPair(peerId, task, args, { pin = true, timeoutMs = 300000, maxMessageSize = 2 * 1024 * 1024, log = console.error, nodeFlags = {}, serverArgs = {}, address } = {}) {
  const sockPath = address ?? socketPath(peerId.replace(/[^a-z]/g, '').slice(0, 8));
  const server = spawnChild('server', peerId, { cpu: pin ? 0 : undefined, nodeFlags: nodeFlags.server });
  let client;
  const timeout = setTimeout(() => {
    log(`  ! ${peerId} ${task} timed out after ${timeoutMs} ms; killing it`);
    server.kill();
    client?.kill();
  }, timeoutMs);
  try {
    await server.ready;
    await server.call('start', { path: sockPath, maxMessageSize, maxConnections: 100000, ...serverArgs });
    client = spawnChild('client', peerId, {
      cpu: pin ? 1 : undefined,
      nodeFlags: nodeFlags.client,
      handlers: { server: ({ cmd, args: a }) => server.call(cmd, a) },
    });
    await client.ready;
    // A server that dies (an uncaught error in a peer) fails the pair at once.
    const serverDied = server.exited.then(({ code, signal }) => {
      throw new Error(`the ${peerId} server process exited during ${task} (code ${code}, signal ${signal})`);
    });
    return await Promise.race([client.call('run', { task, path: sockPath, maxMessageSize, ...args }), serverDied]);
  } finally {
    clearTimeout(timeout);
    // A profiled process needs time to write its profile on exit.
    const slow = nodeFlags.server?.length || nodeFlags.client?.length ? 10 : 1;
    const grace = (ms) => new Promise((r) => setTimeout(r, ms * slow));
    if (client) {
      await Promise.race([client.call('exit').catch(() => {}), grace(1000)]);
      await Promise.race([client.exited, grace(2000)]);
      client.kill();
    }
    await Promise.race([server.call('stop').catch(() => {}), grace(3000)]);
    await Promise.race([server.exited, grace(3000)]);
    server.kill();
    try {
      if (address === undefined) fs.unlinkSync(sockPath);
    } catch {
      /* gone */
    }
  }
}
