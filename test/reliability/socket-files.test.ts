/**
 * Socket files: two servers starting at once on one name — exactly one wins, the other gets
 * ADDRESS_IN_USE, and the winner is the one reachable (with and without a stale file to clear,
 * in one process and in two); a symlink is never followed or removed; generated names never sit
 * directly in a shared, world-writable directory.
 *
 * Covered in test/integration/transport.test.ts: a stale socket of ours is replaced, a live
 * server's name is ADDRESS_IN_USE, a regular file is never deleted, the socket is 0600 in a 0700
 * directory. Another user's stale socket: test/reliability/access.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connect, ConverseError, generateSocketName, listen, peerCredentialsSupported, type Server } from '../../src/index.js';
import { cleanup, onCleanup, removeAfterTest, settle, socketName } from '../helpers/cleanup.js';
import { startFixture } from '../helpers/fixture.js';
import { canSwitchUser, NOBODY } from './support.js';

afterEach(cleanup);

/** A socket file with no server behind it (its server was SIGKILLed), to hard-link into place as a stale file. */
async function staleSocket(): Promise<string> {
  const name = socketName();
  const dead = await startFixture('rel-raw', ['listen', name]);
  await dead.kill('SIGKILL');
  expect(fs.lstatSync(name).isSocket()).toBe(true);
  return name;
}

describe('two servers starting at once on one name', () => {
  for (const stale of [false, true]) {
    it(`in one process, 20 times${stale ? ', over a stale socket file' : ''}: exactly one wins, the other gets ADDRESS_IN_USE, and the winner is reachable`, async () => {
      const leftover = stale ? await staleSocket() : undefined;
      for (let round = 0; round < 20; round++) {
        const name = socketName();
        if (leftover !== undefined) fs.linkSync(leftover, name); // the same dead socket, at this name
        const outcomes = await Promise.allSettled([listen(name), listen(name)]);
        const winners = outcomes.filter((o): o is PromiseFulfilledResult<Server> => o.status === 'fulfilled').map((o) => o.value);
        const losers = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as { code?: string });
        expect(winners, `round ${round}`).toHaveLength(1);
        expect(losers.map((l) => l.code)).toEqual(['ADDRESS_IN_USE']);
        const winner = winners[0]!;
        onCleanup(() => winner.close({ timeout: 200 }));
        const client = await connect(name, { connectTimeout: 1000 });
        await winner.accept();
        expect(winner.connections.size).toBe(1);
        client.destroy();
        await winner.close({ timeout: 200 });
        expect(fs.existsSync(name)).toBe(false);
      }
    });
  }

  it('in two processes started together, 6 times (half over a stale file): one is ready, the other says ADDRESS_IN_USE, clients reach the winner', async () => {
    const leftover = await staleSocket();
    for (let round = 0; round < 6; round++) {
      const name = socketName();
      if (round % 2 === 1) fs.linkSync(leftover, name);
      const [a, b] = await Promise.all([0, 1].map(() => startFixture('rel-server', [name], { expectReady: false })));
      const ready = [a!, b!].filter((p) => p.first.ready === true);
      const refused = [a!, b!].filter((p) => p.first.ready !== true);
      expect(ready, `round ${round}: ${JSON.stringify([a!.first, b!.first])}`).toHaveLength(1);
      expect(refused[0]!.first).toMatchObject({ ready: false, code: 'ADDRESS_IN_USE' });
      const client = await connect(name, { connectTimeout: 1000 });
      if (peerCredentialsSupported) expect(client.peer.pid).toBe(ready[0]!.pid);
      expect(await client.ask({ type: 'add', a: round, b: 1 })).toBe(round + 1);
      client.destroy();
      await ready[0]!.kill('SIGKILL');
    }
  });
});

describe('what is at the name', () => {
  it('a symlink (even to a stale socket of ours) is neither followed nor removed: ADDRESS_IN_USE', async () => {
    const target = await staleSocket();
    const name = socketName();
    fs.symlinkSync(target, name);
    const error = (await settle(listen(name))).error;
    expect(error?.code).toBe('ADDRESS_IN_USE');
    expect(fs.lstatSync(name).isSymbolicLink()).toBe(true);
    expect(fs.lstatSync(target).isSocket()).toBe(true);
  });
});

describe('generated names', () => {
  function withRuntimeDir<T>(dir: string | undefined, fn: () => T): T {
    const saved = process.env.XDG_RUNTIME_DIR;
    if (dir === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = dir;
    try {
      return fn();
    } finally {
      if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = saved;
    }
  }

  function expectPrivate(name: string): void {
    removeAfterTest(path.dirname(name));
    const dir = fs.statSync(path.dirname(name));
    expect(dir.mode & 0o777).toBe(0o700);
    expect(dir.uid).toBe(process.getuid!());
    expect(path.dirname(name)).not.toBe(os.tmpdir());
  }

  it('never a fixed name in a shared directory: each is a fresh 0700 directory of ours, even when XDG_RUNTIME_DIR points at /tmp', () => {
    const names = [generateSocketName(), withRuntimeDir('/tmp', generateSocketName), withRuntimeDir(undefined, generateSocketName)];
    for (const name of names) expectPrivate(name);
    expect(new Set(names).size).toBe(3);
    // /tmp is world-writable and sticky: it is never used as the runtime directory itself.
    expect(path.dirname(path.dirname(names[1]!))).toBe(os.tmpdir());
  });

  it('XDG_RUNTIME_DIR is used only when it is ours and private', () => {
    const mine = fs.mkdtempSync(path.join(os.tmpdir(), 'ic-xdg-'));
    removeAfterTest(mine);
    fs.chmodSync(mine, 0o700);
    expect(path.dirname(path.dirname(withRuntimeDir(mine, generateSocketName)))).toBe(mine);
    fs.chmodSync(mine, 0o755); // not private any more
    expect(path.dirname(path.dirname(withRuntimeDir(mine, generateSocketName)))).not.toBe(mine);
    if (canSwitchUser()) {
      fs.chmodSync(mine, 0o700);
      fs.chownSync(mine, NOBODY, NOBODY); // private, but someone else's
      expect(path.dirname(path.dirname(withRuntimeDir(mine, generateSocketName)))).not.toBe(mine);
    }
  });
});

/** A shared, world-writable sticky directory like /tmp, removed after the test. */
function stickyDirectory(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ic-shared-'));
  fs.chmodSync(dir, 0o1777);
  removeAfterTest(dir);
  return dir;
}

/** Run a short script as `nobody` (a second local user), synchronously. */
function asNobody(script: string, ...args: string[]): string {
  return execFileSync(process.execPath, ['-e', script, ...args], { uid: NOBODY, gid: NOBODY, encoding: 'utf8' });
}

/** Does a plain connect to `name` succeed? */
function reachable(name: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(name);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('closing never removes a socket that is not ours', () => {
  it('A.close() leaves B’s socket at the same name alone (A’s file was removed and B bound the name)', async () => {
    const name = socketName();
    const a = await listen(name);
    onCleanup(() => a.close({ timeout: 200 }));
    fs.unlinkSync(name);
    const b = await listen(name);
    onCleanup(() => b.close({ timeout: 200 }));
    const bInode = fs.lstatSync(name).ino;
    await a.close({ timeout: 200 });
    expect(fs.lstatSync(name).ino).toBe(bInode);
    const client = await connect(name, { connectTimeout: 1000 });
    await b.accept();
    client.destroy();
    await b.close({ timeout: 200 });
    expect(fs.existsSync(name)).toBe(false);
    expect(fs.readdirSync(path.dirname(name))).toEqual([]); // no private directory left behind
  });

  it.runIf(canSwitchUser())('as root, closing never deletes another user’s socket that took the name in a shared sticky directory', async () => {
    const dir = stickyDirectory();
    const name = path.join(dir, 's.sock');
    const a = await listen(name);
    onCleanup(() => a.close({ timeout: 200 }));
    fs.unlinkSync(name); // removed by a cleanup job, an admin …
    const b = await startFixture('rel-raw', ['listen', name, { dropTo: NOBODY, socketMode: 0o666 }]);
    expect(fs.lstatSync(name).uid).toBe(NOBODY);
    await a.close({ timeout: 200 });
    expect(fs.lstatSync(name)).toMatchObject({ uid: NOBODY });
    expect(await reachable(name)).toBe(true);
    expect((await b.request({ op: 'received' })).connections).toBe(1);
    expect(fs.readdirSync(dir)).toEqual(['s.sock']);
  });
});

describe('the process umask is never changed', () => {
  it('listen() never calls process.umask, and the socket gets exactly socketMode whatever the umask', async () => {
    const saved = process.umask(0o077);
    const spy = vi.spyOn(process, 'umask');
    try {
      for (const [umask, mode] of [[0o077, 0o666], [0o000, 0o600], [0o022, 0o660]] as const) {
        process.umask(umask);
        spy.mockClear();
        const name = socketName();
        const server = await listen(name, { socketMode: mode });
        onCleanup(() => server.close({ timeout: 200 }));
        expect(spy).not.toHaveBeenCalled();
        expect(fs.lstatSync(name).mode & 0o777).toBe(mode);
        await server.close({ timeout: 200 });
      }
    } finally {
      spy.mockRestore();
      process.umask(saved);
    }
  });

  it('files another thread creates while servers start keep their modes (the umask covered them before)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ic-umask-'));
    removeAfterTest(dir);
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `const fs = require('node:fs'); const { workerData } = require('node:worker_threads');
       let i = 0; while (Atomics.load(workerData.stop, 0) === 0 && i < 20000) {
         fs.writeFileSync(workerData.dir + '/f' + i++, '', { mode: 0o644 });
         if (i === 1) require('node:worker_threads').parentPort.postMessage('writing');
       }`,
      { eval: true, workerData: { dir, stop } },
    );
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    onCleanup(() => worker.terminate());
    await new Promise((resolve) => worker.once('message', resolve));
    for (let i = 0; i < 30; i++) {
      const server = await listen(socketName());
      await server.close({ timeout: 200 });
    }
    Atomics.store(stop, 0, 1);
    await exited;
    const files = fs.readdirSync(dir);
    expect(files.length).toBeGreaterThan(0);
    const expected = 0o644 & ~process.umask();
    const wrong = files.filter((f) => (fs.statSync(path.join(dir, f)).mode & 0o777) !== expected);
    expect(wrong).toEqual([]);
  });
});

describe('starting over a stale socket cannot be blocked or misled', () => {
  it('binds in a private 0700 directory next to the name and links the socket into place; nothing else is left there', async () => {
    const name = socketName();
    const server = await listen(name);
    onCleanup(() => server.close({ timeout: 200 }));
    const entries = fs.readdirSync(path.dirname(name)).sort();
    expect(entries).toHaveLength(2);
    const privateDir = path.join(path.dirname(name), entries.find((e) => e.startsWith('.ic-'))!);
    expect(fs.lstatSync(privateDir).mode & 0o7777).toBe(0o700);
    // The kernel still names the socket by its private bind path; that path is gone (unlinked after linking).
    const unix = fs.readFileSync('/proc/net/unix', 'utf8');
    expect(unix).toContain(path.join(privateDir, 's'));
    expect(fs.readdirSync(privateDir)).toEqual([]);
    await server.close({ timeout: 200 });
    expect(fs.readdirSync(path.dirname(name))).toEqual([]);
  });

  it.runIf(canSwitchUser())('another user planting the old predictable temporary names in a shared sticky directory cannot stop the restart', async () => {
    const dir = stickyDirectory();
    const name = path.join(dir, 's.sock');
    const dead = await startFixture('rel-raw', ['listen', name]);
    await dead.kill('SIGKILL');
    expect(fs.lstatSync(name).isSocket()).toBe(true);
    // The old code moved the stale file to `<name>.stale-<pid>-<Date.now() in base 36>`: with the clock
    // held still, nobody takes exactly those names (and the neighbouring ones) first.
    const now = Date.now();
    asNobody(
      `const fs = require('node:fs'); const [name, pid, now] = process.argv.slice(1);
       for (let ms = Number(now) - 50; ms < Number(now) + 50; ms++) fs.writeFileSync(name + '.stale-' + pid + '-' + ms.toString(36), '');`,
      name,
      String(process.pid),
      String(now),
    );
    const decoys = fs.readdirSync(dir).filter((e) => e.includes('.stale-'));
    expect(decoys).toHaveLength(100);
    const clock = vi.spyOn(Date, 'now').mockReturnValue(now);
    let server: Server;
    try {
      server = await listen(name);
    } finally {
      clock.mockRestore();
    }
    onCleanup(() => server.close({ timeout: 200 }));
    const client = await connect(name, { connectTimeout: 1000 });
    await server.accept();
    client.destroy();
    await server.close({ timeout: 200 });
    expect(fs.readdirSync(dir).sort()).toEqual(decoys.sort()); // the decoys untouched, nothing of ours left
  });

  it.runIf(canSwitchUser())('every failure is a ConverseError with a stable code, never a raw errno Error', async () => {
    // A directory this user may not write to (a server running as nobody in root's 0755 directory).
    const closedDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ic-closed-'));
    fs.chmodSync(closedDir, 0o755);
    removeAfterTest(closedDir);
    const denied = await startFixture('rel-server', [path.join(closedDir, 's.sock'), { dropTo: NOBODY }], { expectReady: false });
    expect(denied.first).toMatchObject({ ready: false, code: 'ACCESS_DENIED', name: 'ConverseError' });
    expect(fs.readdirSync(closedDir)).toEqual([]);

    // A stale socket of nobody's own that nobody cannot move aside: the sticky directory belongs to root, the file to a third user.
    const dir = stickyDirectory();
    const name = path.join(dir, 's.sock');
    const other = await startFixture('rel-raw', ['listen', name, { dropTo: 65533 }]);
    await other.kill('SIGKILL');
    const refused = await startFixture('rel-server', [name, { dropTo: NOBODY }], { expectReady: false });
    expect(refused.first).toMatchObject({ ready: false, code: 'ADDRESS_IN_USE', name: 'ConverseError' });
    expect(fs.lstatSync(name)).toMatchObject({ uid: 65533 });
    expect(fs.readdirSync(dir)).toEqual(['s.sock']);

    // The name's directory does not exist.
    const missing = await settle(listen(path.join(closedDir, 'nope', 's.sock')));
    expect(missing.error).toBeInstanceOf(ConverseError);
    expect(missing.error.code).toBe('INVALID_NAME');
  });
});

describe('what is at the name (more)', () => {
  it('a directory at the name is refused (ADDRESS_IN_USE) and left alone', async () => {
    const name = socketName();
    fs.mkdirSync(name);
    fs.writeFileSync(path.join(name, 'keep'), 'x');
    const error = (await settle(listen(name))).error;
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('ADDRESS_IN_USE');
    expect(fs.readFileSync(path.join(name, 'keep'), 'utf8')).toBe('x');
    expect(fs.readdirSync(path.dirname(name))).toEqual(['s.sock']);
  });
});

/**
 * Filesystem calls that fail where they normally cannot (root passes every permission check here,
 * so the failure is injected into node:fs for the one path concerned; the socket stays real).
 */
describe('filesystem failures while publishing the name', () => {
  const fsModule = createRequire(import.meta.url)('node:fs') as typeof fs;
  const realUnlinkSync = fsModule.unlinkSync;

  /** Make unlinkSync fail with `code` for paths `matches` picks, until the test ends. */
  function failUnlink(matches: (p: string) => boolean, code: string): string[] {
    const refused: string[] = [];
    fsModule.unlinkSync = ((p: fs.PathLike) => {
      if (matches(String(p))) {
        refused.push(String(p));
        throw Object.assign(new Error(`${code}: injected, unlink '${String(p)}'`), { code });
      }
      return realUnlinkSync(p);
    }) as typeof fs.unlinkSync;
    syncBuiltinESMExports();
    onCleanup(() => {
      fsModule.unlinkSync = realUnlinkSync;
      syncBuiltinESMExports();
    });
    return refused;
  }

  it('a failed unlink of the private bind path after the link does not fail listen(): the name is served and removed on close', async () => {
    const name = socketName();
    const refused = failUnlink((p) => p.endsWith(`${path.sep}s`) && path.basename(path.dirname(p)).startsWith('.ic-'), 'EPERM');
    const server = await listen(name);
    onCleanup(() => server.close({ timeout: 200 }));
    expect(refused).toHaveLength(1);
    const client = await connect(name, { connectTimeout: 2000 });
    await server.accept();
    client.destroy();
    await server.close({ timeout: 200 });
    expect(fs.existsSync(name)).toBe(false);
    expect(fs.readdirSync(path.dirname(name))).toEqual([]); // the private directory went too
  });

  it('a stale socket that cannot be removed once moved aside is a ConverseError (ACCESS_DENIED), not a raw errno error', async () => {
    const name = socketName();
    const dead = await startFixture('rel-raw', ['listen', name]);
    await dead.kill('SIGKILL');
    const refused = failUnlink((p) => p.endsWith(`${path.sep}x`) && path.basename(path.dirname(p)).startsWith('.ic-'), 'EPERM');
    const error = (await settle(listen(name))).error;
    expect(refused).toHaveLength(1);
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('ACCESS_DENIED');
    expect(error.message).toContain('cannot remove the stale socket file');
    expect(fs.readdirSync(path.dirname(name)).filter((f) => f.startsWith('.ic-'))).toEqual([]); // nothing of ours left behind
  });
});
