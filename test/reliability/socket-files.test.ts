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
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, generateSocketName, listen, peerCredentialsSupported, type Server } from '../../src/index.js';
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
