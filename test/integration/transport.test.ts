/**
 * Names and sockets: path limits, stale and live socket files, file modes, connect failures,
 * bursts of connections, and connecting while the server is still starting.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConverseError, MAX_SOCKET_PATH_BYTES, connect, listen } from '../../src/index.js';
import type { ClientApi, ServerApi } from '../fixtures/protocol.js';
import { cleanup, onCleanup, rejectionOf, removeAfterTest, sleep, socketName, waitUntil } from '../helpers/cleanup.js';
import { startFixture } from '../helpers/fixture.js';
import { connectClient, serverHandlers, startServer } from '../helpers/scenario.js';

afterEach(cleanup);

describe('socket names', () => {
  it('generateSocketName() gives a fresh path in a private 0700 directory, short enough for the platform', () => {
    const a = socketName();
    const b = socketName();
    expect(a).not.toBe(b);
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(MAX_SOCKET_PATH_BYTES);
    expect(fs.statSync(path.dirname(a)).mode & 0o777).toBe(0o700);
    expect(fs.existsSync(a)).toBe(false);
  });

  it.runIf(process.platform === 'linux')('a path longer than 107 bytes is INVALID_NAME for listen and connect, and no file is created', async () => {
    const dir = path.dirname(socketName());
    const long = path.join(dir, 'x'.repeat(120 - dir.length));
    expect(Buffer.byteLength(long)).toBeGreaterThan(107);
    const listenError = await rejectionOf(listen(long));
    expect(listenError).toBeInstanceOf(ConverseError);
    expect(listenError.code).toBe('INVALID_NAME');
    const connectError = await rejectionOf(connect(long));
    expect(connectError.code).toBe('INVALID_NAME');
    expect(fs.readdirSync(dir)).toEqual([]);
    // 107 bytes exactly is fine.
    const longest = path.join(dir, 'y'.repeat(107 - dir.length - 1));
    expect(Buffer.byteLength(longest)).toBe(107);
    const { server } = await startServer({}, longest);
    const client = await connectClient(longest);
    expect(await client.ask({ type: 'add', a: 1, b: 1 })).toBe(2);
    await server.close();
  });
});

describe('listening', () => {
  it('the socket file is mode 0600 while listening and removed after close', async () => {
    const { name, server } = await startServer();
    const stat = fs.lstatSync(name);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
    await server.close();
    expect(fs.existsSync(name)).toBe(false);
  });

  it('a stale socket file left by a SIGKILLed server process is replaced by a new listen', async () => {
    const name = socketName();
    const dead = await startFixture('server', [name]);
    await dead.kill('SIGKILL');
    expect(fs.lstatSync(name).isSocket()).toBe(true); // left behind
    const { server } = await startServer({}, name);
    const client = await connectClient(name);
    expect(await client.ask({ type: 'add', a: 2, b: 2 })).toBe(4);
    expect(server.connections.size).toBe(1);
  });

  it('the name of a live server (another process) gives ADDRESS_IN_USE, and that server keeps working', async () => {
    const name = socketName();
    await startFixture('server', [name]);
    const error = await rejectionOf(listen(name));
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('ADDRESS_IN_USE');
    const client = await connectClient(name);
    expect(await client.ask({ type: 'add', a: 3, b: 3 })).toBe(6);
  });

  it('the name of a live server in this process gives ADDRESS_IN_USE', async () => {
    const { name } = await startServer();
    expect((await rejectionOf(listen(name))).code).toBe('ADDRESS_IN_USE');
    expect(fs.lstatSync(name).isSocket()).toBe(true);
    const client = await connectClient(name);
    expect(await client.ask({ type: 'add', a: 1, b: 0 })).toBe(1);
  });

  it('a regular file at the path is never deleted (ADDRESS_IN_USE)', async () => {
    const name = socketName();
    fs.writeFileSync(name, 'precious');
    const error = await rejectionOf(listen(name));
    expect(error.code).toBe('ADDRESS_IN_USE');
    expect(fs.readFileSync(name, 'utf8')).toBe('precious');
  });
});

describe('connecting', () => {
  it('connect to a path where nothing exists fails fast with CONNECT_FAILED', async () => {
    const dir = fs.mkdtempSync('/tmp/ic-missing-');
    removeAfterTest(dir);
    const missing = path.join(dir, 'gone', 'nothing.sock');
    const started = performance.now();
    const error = await rejectionOf(connect(missing));
    expect(error).toBeInstanceOf(ConverseError);
    expect(error.code).toBe('CONNECT_FAILED');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('connect to a name nobody listens on fails at once with CONNECT_FAILED, the errno as cause, and says how to wait', async () => {
    const name = socketName(); // the directory exists, the socket does not
    const started = performance.now();
    const error = await rejectionOf(connect(name, { connectTimeout: 10_000 }));
    expect(error.code).toBe('CONNECT_FAILED');
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(error.message).toContain('waitForServer');
    expect(performance.now() - started).toBeLessThan(2000); // not connectTimeout
  });

  it('connect to a stale socket file (its server killed) fails at once with CONNECT_FAILED, cause ECONNREFUSED', async () => {
    const name = socketName();
    const dead = await startFixture('server', [name]);
    await dead.kill('SIGKILL');
    expect(fs.existsSync(name)).toBe(true);
    const started = performance.now();
    const error = await rejectionOf(connect(name, { connectTimeout: 10_000 }));
    expect(error.code).toBe('CONNECT_FAILED');
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('with waitForServer, connect to a name nobody listens on fails with CONNECT_FAILED by connectTimeout, the last errno as cause', async () => {
    const name = socketName();
    const started = performance.now();
    const error = await rejectionOf(connect(name, { connectTimeout: 300, waitForServer: true }));
    expect(error.code).toBe('CONNECT_FAILED');
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('with waitForServer, connect waits while the server is starting: listen 200 ms after connect began, it succeeds', async () => {
    const name = socketName();
    const connecting = connect<ServerApi, ClientApi>(name, { connectTimeout: 5000, waitForServer: true });
    connecting.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
    onCleanup(() => connecting.then((c) => c.destroy(), () => {}));
    await sleep(200);
    const server = await listen<ServerApi, ClientApi>(name, { handlers: serverHandlers() });
    onCleanup(() => server.close({ timeout: 500 }));
    const connection = await connecting;
    expect(await connection.ask({ type: 'add', a: 4, b: 5 })).toBe(9);
  });

  it('with waitForServer, connect waits while a crashed server is restarting (stale socket file refuses), then succeeds', async () => {
    const name = socketName();
    const dead = await startFixture('server', [name]);
    await dead.kill('SIGKILL');
    const connecting = connect<ServerApi, ClientApi>(name, { connectTimeout: 5000, waitForServer: true });
    connecting.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
    onCleanup(() => connecting.then((c) => c.destroy(), () => {}));
    await sleep(200);
    const { server } = await startServer({}, name);
    const connection = await connecting;
    expect(await connection.ask({ type: 'add', a: 1, b: 2 })).toBe(3);
    expect(server.connections.size).toBe(1);
  });

  it('reconnect implies waiting for the first connect', async () => {
    const name = socketName();
    const connecting = connect<ServerApi, ClientApi>(name, { connectTimeout: 5000, reconnect: true });
    connecting.catch(() => {});
    onCleanup(() => connecting.then((c) => c.destroy(), () => {}));
    await sleep(200);
    const server = await listen<ServerApi, ClientApi>(name, { handlers: serverHandlers() });
    onCleanup(() => server.close({ timeout: 500 }));
    const connection = await connecting;
    expect(await connection.ask({ type: 'add', a: 2, b: 2 })).toBe(4);
  });

  it('a name starting with "@" (the abstract namespace elsewhere) is refused with INVALID_NAME and a hint, never made a file', async () => {
    const cwd = process.cwd();
    for (const attempt of [() => listen('@my-daemon.sock'), () => connect('@my-daemon.sock')]) {
      const error = await rejectionOf(attempt());
      expect(error.code).toBe('INVALID_NAME');
      expect(error.message).toMatch(/abstract namespace/);
      expect(error.message).toContain('./@my-daemon.sock');
    }
    expect(fs.existsSync(path.join(cwd, '@my-daemon.sock'))).toBe(false);
  });

  it('a burst of 300 clients connecting at once all get in and are served', async () => {
    const { name, server } = await startServer();
    const connections = await Promise.all(Array.from({ length: 300 }, () => connectClient(name)));
    expect(connections.every((c) => c.state === 'active')).toBe(true);
    expect(server.connections.size).toBe(300);
    const sums = await Promise.all(connections.map((c, i) => c.ask({ type: 'add', a: i, b: 1 })));
    expect(sums).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    await Promise.all(connections.map((c) => c.close()));
    await waitUntil(() => server.connections.size === 0, 'the server saw every connection close');
    await waitUntil(() => Object.keys(server.actor.getSnapshot().children).length === 0, 'every child actor is gone');
  });
});
