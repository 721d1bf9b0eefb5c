/**
 * The integration checks that run under every runtime the package claims: Node, Bun and Deno.
 * Plain JavaScript against the built library (dist/), real sockets, a server in a second process
 * of the same runtime; no test framework (vitest runs on Node only), so the runtime itself is
 * what is tested.
 *
 *   node test/runtimes/integration.mjs
 *   bun test/runtimes/integration.mjs
 *   deno run -A test/runtimes/integration.mjs
 *
 * Prints one line per check and a closing "N passed, N failed"; exits 1 if any failed.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as library from '../../dist/src/index.js';
import {
  ConverseError,
  connect,
  generateSocketName,
  listen,
  peerCredentialsSupported,
} from '../../dist/src/index.js';

const runtime = typeof globalThis.Deno !== 'undefined' ? `deno ${globalThis.Deno.version.deno}` : process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.versions.node}`;
const here = path.dirname(fileURLToPath(import.meta.url));
const CHECK_TIMEOUT = 20_000;

const results = [];
const cleanups = [];

async function check(name, body) {
  const started = performance.now();
  let timer;
  try {
    await Promise.race([body(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT} ms`)), CHECK_TIMEOUT)))]);
    results.push({ name, ok: true });
    console.log(`ok - ${name} (${Math.round(performance.now() - started)} ms)`);
  } catch (error) {
    results.push({ name, ok: false });
    console.log(`not ok - ${name}: ${error?.stack ?? error}`);
  } finally {
    clearTimeout(timer);
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        /* cleanup is best effort; the check's own result stands */
      }
    }
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}
function equal(actual, expected, message) {
  const a = JSON.stringify(actual, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
  const e = JSON.stringify(expected, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
  if (a !== e) throw new Error(`${message}: expected ${e}, got ${a}`);
}
async function rejects(promise, code, message) {
  try {
    await promise;
  } catch (error) {
    assert(error instanceof ConverseError, `${message}: a ConverseError (got ${error})`);
    equal(error.code, code, message);
    return error;
  }
  throw new Error(`${message}: expected a rejection with ${code}`);
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A server in this process, closed after the check. */
async function serve(options) {
  const name = generateSocketName();
  const server = await listen(name, options);
  cleanups.push(() => server.close({ timeout: 500 }));
  return { name, server };
}
async function client(name, options) {
  const connection = await connect(name, options);
  cleanups.push(() => connection.close({ timeout: 500 }));
  return connection;
}

/** Arguments that make this runtime run a script. */
function scriptArgs(script, ...rest) {
  return typeof globalThis.Deno !== 'undefined' ? ['run', '-A', script, ...rest] : [script, ...rest];
}

/** The same runtime running test/runtimes/server.mjs; resolves once it listens. */
function childServer(name) {
  const args = scriptArgs(path.join(here, 'server.mjs'), name);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      if (out.includes('READY')) resolve({ child, exited });
    });
    child.once('exit', (code) => reject(new Error(`the server process exited (${code}) before it was ready: ${out}`)));
  });
}

console.log(`# interprocess-converse integration checks on ${runtime} (${process.platform}-${process.arch})`);

await check('CommonJS require() gives the same exports as import', async () => {
  const child = spawn(process.execPath, scriptArgs(path.join(here, 'require.cjs')), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  equal(code, 0, `exit code (stderr: ${err})`);
  const required = JSON.parse(out);
  equal(required.exports, Object.keys(library).sort(), 'exports');
  equal(required.machine, 'object', 'machines');
});

await check('ask, tell and send round trips; values msgpack carries come back as they went', async () => {
  const told = [];
  const { name } = await serve({
    handlers: {
      add: ({ a, b }) => a + b,
      echo: ({ value }) => value,
      log: ({ line }) => void told.push(line),
    },
  });
  const c = await client(name);
  equal(await c.ask({ type: 'add', a: 2, b: 3 }), 5, 'add');
  const value = { big: 2n ** 60n, when: new Date(86_400_000), bytes: new Uint8Array([1, 2, 255]), map: new Map([['k', 1]]), set: new Set(['x']), nested: [null, true, 'é'] };
  const back = await c.ask({ type: 'echo', value });
  equal(back.big, 2n ** 60n, 'bigint');
  equal(back.when.getTime(), 86_400_000, 'Date');
  equal([...back.bytes], [1, 2, 255], 'bytes');
  assert(back.map instanceof Map && back.map.get('k') === 1, 'Map');
  assert(back.set instanceof Set && back.set.has('x'), 'Set');
  equal(back.nested, [null, true, 'é'], 'nested');
  await c.tell({ type: 'log', line: 'hello' });
  const { reply } = await c.send({ type: 'add', a: 40, b: 2 });
  equal(await reply, 42, 'send');
  const deadline = performance.now() + 5000;
  while (told.length === 0 && performance.now() < deadline) await sleep(5);
  equal(told, ['hello'], 'tell reached its handler');
});

await check('streamed replies: items in order, window respected, break cancels the producer', async () => {
  let cancelled = false;
  const { name } = await serve({
    handlers: {
      async *count({ n }, ctx) {
        ctx.signal.addEventListener('abort', () => (cancelled = true));
        for (let i = 0; i < n; i++) yield i;
      },
      async *forever(_e, ctx) {
        ctx.signal.addEventListener('abort', () => (cancelled = true));
        for (let i = 0; ; i++) {
          yield i;
          await sleep(1);
        }
      },
    },
  });
  const c = await client(name);
  const items = [];
  for await (const item of c.stream({ type: 'count', n: 50 }, { window: 4 })) items.push(item);
  equal(items, Array.from({ length: 50 }, (_, i) => i), 'all items');
  for await (const item of c.stream({ type: 'forever' }, { window: 2 })) if (item === 10) break;
  const deadline = performance.now() + 5000;
  while (!cancelled && performance.now() < deadline) await sleep(5);
  assert(cancelled, 'break aborted the producer');
});

await check('without handlers, messages arrive by iteration; reply and fail answer them', async () => {
  const { name, server } = await serve();
  (async () => {
    for await (const connection of server) {
      (async () => {
        for await (const message of connection) {
          if (!message.expectsReply) continue;
          if (message.event.type === 'add') await message.reply(message.event.a + message.event.b);
          else await message.fail(new Error(`cannot ${message.event.type}`));
        }
      })();
    }
  })().catch(() => {});
  const c = await client(name);
  equal(await c.ask({ type: 'add', a: 1, b: 1 }), 2, 'iterated reply');
  const error = await rejects(c.ask({ type: 'divide' }), 'REMOTE_ERROR', 'fail');
  equal(error.remote.message, 'cannot divide', 'remote message');
});

await check('errors: NO_HANDLER, REMOTE_ERROR, TIMEOUT (the handler sees the cancel), MESSAGE_TOO_LARGE', async () => {
  let aborted = false;
  const { name } = await serve({
    maxMessageSize: 64 * 1024,
    handlers: {
      boom: () => {
        throw Object.assign(new Error('kaput'), { code: 'E_KAPUT' });
      },
      slow: (_e, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            resolve(0);
          });
        }),
      echo: ({ value }) => value,
    },
  });
  const c = await client(name, { maxMessageSize: 64 * 1024 });
  await rejects(c.ask({ type: 'nothing' }), 'NO_HANDLER', 'unknown type');
  const remote = await rejects(c.ask({ type: 'boom' }), 'REMOTE_ERROR', 'throwing handler');
  equal(remote.remote, { name: 'Error', message: 'kaput', code: 'E_KAPUT' }, 'remote error');
  await rejects(c.ask({ type: 'slow' }, { timeout: 100 }), 'TIMEOUT', 'timeout');
  const deadline = performance.now() + 5000;
  while (!aborted && performance.now() < deadline) await sleep(5);
  assert(aborted, "the handler's ctx.signal aborted");
  await rejects(c.ask({ type: 'echo', value: 'x'.repeat(100 * 1024) }), 'MESSAGE_TOO_LARGE', 'too large');
  equal(await c.ask({ type: 'echo', value: 'still usable' }), 'still usable', 'usable after');
});

await check('connect to nothing fails at once with CONNECT_FAILED (errno as cause); "@" names are INVALID_NAME', async () => {
  const name = generateSocketName();
  const started = performance.now();
  const error = await rejects(connect(name, { connectTimeout: 10_000 }), 'CONNECT_FAILED', 'no server');
  equal(error.cause?.code, 'ENOENT', 'cause');
  assert(performance.now() - started < 5000, 'at once, not after connectTimeout');
  await rejects(listen('@abstract.sock'), 'INVALID_NAME', '@ name');
  assert(!fs.existsSync('@abstract.sock'), 'no file made');
});

await check('peer credentials from the kernel, both ends', async () => {
  const { name, server } = await serve({ handlers: { ping: () => 'pong' } });
  const c = await client(name);
  equal(await c.ask({ type: 'ping' }), 'pong', 'ping');
  const [accepted] = server.connections.values();
  if (peerCredentialsSupported) {
    equal(accepted.peer.pid, process.pid, 'server sees the client pid');
    equal(c.peer.pid, process.pid, 'client sees the server pid');
    if (typeof process.getuid === 'function') equal(c.peer.uid, process.getuid(), 'uid');
  } else {
    equal(accepted.peer, {}, 'no credentials: empty peer');
  }
});

await check('broadcast reaches every client; graceful close lets a running handler answer first', async () => {
  const { name, server } = await serve({
    handlers: { slow: async () => (await sleep(200), 'done') },
  });
  const heard = [0, 0, 0];
  const clients = await Promise.all(heard.map((_, i) => client(name, { handlers: { notify: () => void heard[i]++ } })));
  await server.broadcast({ type: 'notify', text: 'hi' });
  const deadline = performance.now() + 5000;
  while (heard.some((n) => n === 0) && performance.now() < deadline) await sleep(5);
  equal(heard, [1, 1, 1], 'every client heard');
  const pending = clients[0].ask({ type: 'slow' });
  await sleep(50);
  await server.close({ timeout: 3000 });
  equal(await pending, 'done', 'in-flight reply went out before close');
  await Promise.all(clients.map((c) => c.closed));
  assert(clients.every((c) => c.state === 'closed'), 'clients closed');
  assert(!fs.existsSync(name), 'socket file removed');
});

await check('a server in another process: asks work, and its death fails pending asks with CONNECTION_CLOSED at once', async () => {
  const name = generateSocketName();
  const { child } = await childServer(name);
  const c = await client(name);
  equal(await c.ask({ type: 'add', a: 20, b: 22 }), 42, 'cross-process ask');
  if (peerCredentialsSupported) equal(c.peer.pid, child.pid, "the server process's pid");
  const pending = c.ask({ type: 'hang' }, { timeout: 15_000 });
  await sleep(100);
  const started = performance.now();
  child.kill('SIGKILL');
  await rejects(pending, 'CONNECTION_CLOSED', 'pending ask');
  assert(performance.now() - started < 5000, 'at once, not at the timeout');
});

const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
