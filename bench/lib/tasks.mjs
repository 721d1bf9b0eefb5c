// What a client process does in each scenario. Every reply is checked against the expected sum.
import { addRequest, check, expected, gcMemory, largePayload, MiB, now, pool, quantile, sleep } from './common.mjs';

/** `total` asks with `window` in flight; resolves with the elapsed ms. */
export function pipelined(client, total, window, makeRequest = addRequest, want = expected) {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let done = 0;
    let failed = false;
    const t0 = now();
    const fail = (error) => {
      if (!failed) {
        failed = true;
        reject(error);
      }
    };
    const issue = () => {
      const i = sent++;
      let reply;
      try {
        reply = client.ask(makeRequest(i));
      } catch (error) {
        fail(error);
        return;
      }
      reply.then((value) => {
        if (failed) return;
        if (value !== want(i)) return fail(new Error(`wrong reply ${JSON.stringify(value)} to ask ${i}, expected ${want(i)}`));
        done++;
        if (sent < total) issue();
        else if (done === total) resolve(now() - t0);
      }, fail);
    };
    for (let k = 0; k < Math.min(window, total); k++) issue();
  });
}

/** With args.profile: the CPU profiler runs on both sides around each measured scenario. */
async function profiled(args, parent, name, body) {
  if (!args.profile) return body();
  const { profiling } = await import('./child.mjs');
  const heap = args.profileHeap === true;
  const survivors = args.profileSurvivors === true;
  await parent.call('server', { cmd: 'profileStart', args: { heap, survivors } });
  await profiling.profileStart({ heap, survivors });
  try {
    return await body();
  } finally {
    await profiling.profileStop({ file: `${args.profile}/${name}-client.cpuprofile` });
    await parent.call('server', { cmd: 'profileStop', args: { file: `${args.profile}/${name}-server.cpuprofile` } });
  }
}

/** S1, S2, S3 on one connection. */
export async function rr(peer, args, parent) {
  const client = await peer.connect(args.path, { maxMessageSize: args.maxMessageSize });
  const out = {};
  try {
    // Warm-up (JIT, buffers), not measured.
    for (let i = 0; i < args.warmup; i++) check(await client.ask(addRequest(i)), expected(i), 'warm-up');
    await pipelined(client, args.warmup, 16);

    if (args.s1 > 0) {
      const n = args.s1;
      const lat = new Float64Array(n);
      let elapsed;
      await profiled(args, parent, 's1', async () => {
        const t0 = now();
        for (let i = 0; i < n; i++) {
          const t = now();
          const reply = await client.ask(addRequest(i));
          lat[i] = now() - t;
          check(reply, expected(i), 'S1');
        }
        elapsed = now() - t0;
      });
      lat.sort();
      const us = (q) => quantile(lat, q) * 1000;
      out.s1 = {
        n,
        p50: us(0.5),
        p90: us(0.9),
        p99: us(0.99),
        p999: us(0.999),
        max: lat[n - 1] * 1000,
        asksPerSec: n / (elapsed / 1000),
      };
    }

    if (args.s2 > 0) {
      const ms = await profiled(args, parent, 's2', () => pipelined(client, args.s2, args.window));
      out.s2 = { n: args.s2, window: args.window, asksPerSec: args.s2 / (ms / 1000) };
    }

    if (args.s3 > 0) {
      const bytes = args.s3Bytes ?? MiB;
      const data = largePayload(bytes);
      const make = (i) => ({ type: 'add', a: i, b: i + 1, data, len: bytes });
      const want = (i) => 2 * i + 1;
      await pipelined(client, Math.min(4, args.s3), 1, make, want); // warm the large path
      const ms = await profiled(args, parent, 's3', () => pipelined(client, args.s3, args.s3Window, make, want));
      out.s3 = { n: args.s3, window: args.s3Window, bytes, mbPerSec: (args.s3 * bytes) / 1e6 / (ms / 1000) };
    }
  } finally {
    await client.close();
  }
  return out;
}

/** S4: many idle clients. The server is measured (through the parent) before and after. */
export async function many(peer, args, parent) {
  const opts = { maxMessageSize: args.maxMessageSize };
  // Warm the server's accept path with a few short-lived clients, then take its baseline.
  for (let i = 0; i < args.warmupClients; i++) {
    const c = await peer.connect(args.path, opts);
    check(await c.ask(addRequest(i)), expected(i), 'S4 warm-up');
    await c.close();
  }
  await sleep(200);
  await parent.call('server', { cmd: 'baseline' });
  const clientBase = await gcMemory();

  const clients = new Array(args.n);
  let connectMs;
  await profiled(args, parent, 's4', async () => {
    const t0 = now();
    await pool(args.n, args.concurrency, async (i) => {
      clients[i] = await peer.connect(args.path, opts);
    });
    connectMs = now() - t0;
  });
  await parent.call('server', { cmd: 'mark', args: { phase: 'connect' } });
  const t1 = now();
  const replies = await Promise.all(clients.map((c, i) => c.ask(addRequest(i))));
  const askMs = now() - t1;
  await parent.call('server', { cmd: 'mark', args: { phase: 'asks' } });
  replies.forEach((r, i) => check(r, expected(i), 'S4'));

  await sleep(args.idleMs ?? 500);
  const server = await parent.call('server', { cmd: 'measure' });
  const clientNow = await gcMemory();
  for (const c of clients) {
    try {
      await c.close();
    } catch {
      /* closing is not measured */
    }
  }
  return {
    n: args.n,
    connectMs,
    askMs,
    server,
    clientHeapPerConnKiB: (clientNow.heapUsed - clientBase.heapUsed) / args.n / 1024,
    clientRssPerConnKiB: (clientNow.rss - clientBase.rss) / args.n / 1024,
  };
}

/** S5 (this library only): one small event broadcast to n clients; time until every one has it. */
export async function broadcast(peer, args) {
  let round = -1;
  let received = 0;
  let wrong = 0;
  let resolveRound;
  const last = new Int32Array(args.n).fill(-1);
  const clients = new Array(args.n);
  await pool(args.n, args.concurrency, async (i) => {
    clients[i] = await peer.connect(args.path, {
      maxMessageSize: args.maxMessageSize,
      onEvent: (event) => {
        if (event.seq !== round || last[i] === round) wrong++;
        last[i] = event.seq;
        if (++received === args.n) resolveRound();
      },
    });
  });
  const times = [];
  for (let r = 0; r < args.rounds; r++) {
    round = r;
    received = 0;
    const all = new Promise((resolve) => (resolveRound = resolve));
    const t0 = now();
    const told = await clients[0].ask({ type: 'broadcast', seq: r });
    await all;
    times.push(now() - t0);
    check(told, args.n, 'S5 connections reached');
    await sleep(20);
  }
  if (wrong > 0) throw new Error(`S5: ${wrong} events arrived twice or out of round`);
  for (const c of clients) await c.close();
  const sorted = [...times].sort((a, b) => a - b);
  return { n: args.n, rounds: args.rounds, medianMs: quantile(sorted, 0.5), minMs: sorted[0], maxMs: sorted[sorted.length - 1], times };
}

/** The soak: S2 for `seconds`, heap after GC at the start and at the end, both processes. */
export async function soak(peer, args, parent) {
  const client = await peer.connect(args.path, { maxMessageSize: args.maxMessageSize });
  await pipelined(client, args.warmup, args.window);
  const serverStart = await parent.call('server', { cmd: 'mem' });
  const clientStart = await gcMemory();
  const batches = [];
  const t0 = now();
  let total = 0;
  while (now() - t0 < args.seconds * 1000) {
    const ms = await pipelined(client, args.batch, args.window);
    total += args.batch;
    batches.push({ atSec: (now() - t0) / 1000, asksPerSec: args.batch / (ms / 1000) });
  }
  const elapsed = (now() - t0) / 1000;
  const serverEnd = await parent.call('server', { cmd: 'mem' });
  const clientEnd = await gcMemory();
  await client.close();
  return { seconds: elapsed, asks: total, asksPerSec: total / elapsed, batches, serverStart, serverEnd, clientStart, clientEnd };
}
