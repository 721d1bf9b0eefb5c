#!/usr/bin/env node
// S1/S2 beyond one machine (on loopback): this library over tcp:// and over nats:// (one local
// nats-server), against a raw TCP baseline (node:net + msgpackr on a TCP port) and against the
// NATS client's own request/reply, all in the same run, each as a server and a client process.
//
//   node bench/transports.mjs            3 repetitions, S1 10,000 sequential asks, S2 100,000 asks
//                                        with 256 in flight; writes bench/results/transports.json
//   node bench/transports.mjs --quick    tiny counts, once: checks that every pair works
// Options: --reps N  --out FILE.json  --no-pin (do not pin server/client to CPUs 0/1; nats-server
//          is never pinned)
//
// Needs nats-server on PATH or in /usr/sbin (Debian: apt-get install nats-server) and
// @nats-io/transport-node (a dev dependency of the repository).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { benchDir, machine } from './lib/env.mjs';
import { runPair } from './lib/proc.mjs';

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    out: { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
  },
});
const config = opts.quick
  ? { reps: 1, rr: { warmup: 50, s1: 300, s2: 2000, window: 64, s3: 0 } }
  : { reps: 3, rr: { warmup: 2000, s1: 10000, s2: 100000, window: 256, s3: 0 } };
if (opts.reps) config.reps = Number(opts.reps);
const pin = !opts['no-pin'] && !opts.quick;
const log = (...a) => console.error(...a);
const fmt = (x, d = 0) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '–');

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startNatsServer() {
  const port = await freePort();
  const binary = fs.existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
  const child = spawn(binary, ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-2000)));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const deadline = performance.now() + 15000;
  for (;;) {
    const up = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nats-server did not start on 127.0.0.1:${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Each case: a peer, and the address its server listens on (a fresh one per run). */
function cases(natsPort) {
  let service = 0;
  const tcp = async () => `tcp://127.0.0.1:${await freePort()}`;
  const nats = async () => `nats://127.0.0.1:${natsPort}/bench${process.pid}-${service++}`;
  return [
    { id: 'raw@tcp', peer: 'raw', address: tcp, label: 'raw net + msgpackr over TCP (baseline)' },
    { id: 'library@tcp', peer: 'library', address: tcp, label: 'this library over tcp://' },
    { id: 'nats-request', peer: 'nats-request', address: nats, label: 'NATS client request/reply' },
    { id: 'library@nats', peer: 'library', address: nats, label: 'this library over nats://' },
  ];
}

const median = (values) => {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

async function main() {
  const t0 = performance.now();
  const nats = await startNatsServer();
  const results = { mode: opts.quick ? 'quick' : 'full', config, machine: machine(), pin, load: { before: os.loadavg(), perRep: [] }, runs: {}, errors: [] };
  log(`transports bench (${results.mode}): load ${results.load.before.map((x) => x.toFixed(2)).join(' ')}; nats-server on 127.0.0.1:${nats.port}`);
  try {
    const all = cases(nats.port);
    for (let rep = 0; rep < config.reps; rep++) {
      results.load.perRep.push({ rep, loadavg: os.loadavg() });
      log(`rep ${rep + 1}/${config.reps} (load ${os.loadavg()[0].toFixed(2)})`);
      // Rotate the order so no case always runs first (or last) in a repetition.
      for (const c of all.map((_, i) => all[(i + rep) % all.length])) {
        const address = await c.address();
        try {
          const r = await runPair(c.peer, 'rr', config.rr, { pin, address, log, timeoutMs: 300000, maxMessageSize: null });
          (results.runs[c.id] ??= []).push({ rep, ...r });
          log(`  ${c.id.padEnd(13)} S1 p50 ${fmt(r.s1?.p50, 1)} µs p99 ${fmt(r.s1?.p99, 1)} µs ${fmt(r.s1?.asksPerSec)} /s | S2 ${fmt(r.s2?.asksPerSec)} /s`);
        } catch (error) {
          const message = String(error?.message ?? error).split('\n')[0];
          log(`  ! ${c.id} rep ${rep}: ${message}`);
          results.errors.push({ case: c.id, rep, error: message });
        }
      }
    }
  } finally {
    await nats.stop();
  }
  results.load.after = os.loadavg();
  results.elapsedSec = (performance.now() - t0) / 1000;

  // Medians over the repetitions, and ratios to the raw TCP baseline of the same run.
  const summary = {};
  for (const c of cases(0)) {
    const runs = results.runs[c.id] ?? [];
    summary[c.id] = {
      label: c.label,
      reps: runs.length,
      s1p50: median(runs.map((r) => r.s1?.p50)),
      s1p99: median(runs.map((r) => r.s1?.p99)),
      s1: median(runs.map((r) => r.s1?.asksPerSec)),
      s2: median(runs.map((r) => r.s2?.asksPerSec)),
    };
  }
  const base = summary['raw@tcp'];
  for (const s of Object.values(summary)) {
    s.s1Ratio = base?.s1 ? s.s1 / base.s1 : undefined;
    s.s2Ratio = base?.s2 ? s.s2 / base.s2 : undefined;
  }
  results.summary = summary;

  const lines = [
    `| | S1 p50 µs | S1 p99 µs | S1 asks/s | S1 vs raw TCP | S2 asks/s (256 in flight) | S2 vs raw TCP |`,
    `|---|---:|---:|---:|---:|---:|---:|`,
    ...Object.values(summary).map((s) => `| ${s.label} | ${fmt(s.s1p50, 1)} | ${fmt(s.s1p99, 1)} | ${fmt(s.s1)} | ${fmt(s.s1Ratio, 2)}× | ${fmt(s.s2)} | ${fmt(s.s2Ratio, 2)}× |`),
  ];
  log('');
  log(lines.join('\n'));
  log(`\nload average before ${results.load.before.map((x) => x.toFixed(2)).join(' ')}, after ${results.load.after.map((x) => x.toFixed(2)).join(' ')}; ${fmt(results.elapsedSec, 1)} s`);

  const out = opts.out ?? (opts.quick ? undefined : path.join(benchDir, 'results', 'transports.json'));
  if (out) {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(results, null, 1));
    log(`wrote ${out}`);
  }
  process.stdout.write(`${JSON.stringify({ ok: results.errors.length === 0, reps: Object.fromEntries(Object.entries(summary).map(([k, s]) => [k, s.reps])), errors: results.errors })}\n`);
  process.exitCode = results.errors.length === 0 ? 0 : 1;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
