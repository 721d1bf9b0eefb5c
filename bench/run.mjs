#!/usr/bin/env node
// The benchmark: interprocess-converse against a raw net + msgpackr baseline and other IPC
// libraries, each as a server process and a client process over a Unix socket.
//
//   node bench/run.mjs            full run (12–18 min on a 2-core VM), writes bench/RESULTS.md,
//                                 bench/chart.svg, bench/results/latest.json and the README's
//                                 performance section
//   node bench/run.mjs --quick    a few seconds, tiny counts, every peer that installs; checks
//                                 that everything still works (exit 1 if not); writes nothing
//                                 in bench/ unless --out is given
// Options: --lean (a loaded machine: see LEAN)  --reps N  --peers raw,library,...  --only s1s3,s4,s4big,s5,micro,soak  --out FILE.json
//          --no-pin (do not pin server/client to CPUs 0/1)  --verbose
//          (with --out, nothing but that file is written: RESULTS.md and the README stay as they are)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MiB } from './lib/common.mjs';
import { availablePeers, benchDir, cpuBusy, machine, PEERS } from './lib/env.mjs';
import { runPair } from './lib/proc.mjs';
import { writeReport } from './lib/report.mjs';
import { runMicro } from './micro-codec.mjs';
import { runSoak } from './soak.mjs';

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    lean: { type: 'boolean', default: false },
    reps: { type: 'string' },
    peers: { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
});

const FULL = {
  reps: 5, // raw and this library
  otherReps: 3, // the other peers (slower: their S2/S3 alone take 20–60 s a repetition) …
  peerReps: { grpc: 2 }, // … except grpc-js, whose S2 alone takes ~90 s here (~2k asks/s)
  // grpc-js answers ~2–5k asks/s: a tenth of the S2 count keeps its repetition within minutes.
  peerRr: { grpc: { s2: 20000 } },
  rr: { warmup: 2000, s1: 20000, s2: 200000, window: 256, s3: 200, s3Window: 4, s3Bytes: MiB },
  s4: { n: 1000, reps: 3, concurrency: 128, warmupClients: 10 },
  s4big: { n: 10000, reps: 3, concurrency: 128, warmupClients: 10 },
  s5: { n: 1000, reps: 3, rounds: 20, concurrency: 128 },
  micro: { seconds: 0.6 },
  soak: { seconds: 60 },
  timeoutMs: 300000,
};
const QUICK = {
  reps: 1,
  otherReps: 1,
  rr: { warmup: 50, s1: 300, s2: 2000, window: 64, s3: 4, s3Window: 2, s3Bytes: MiB },
  s4: { n: 20, reps: 1, concurrency: 16, warmupClients: 2 },
  s4big: { n: 50, reps: 1, concurrency: 16, warmupClients: 2 },
  s5: { n: 20, reps: 1, rounds: 3, concurrency: 16 },
  micro: { seconds: 0.05 },
  soak: { seconds: 1 },
  timeoutMs: 60000,
};
// For a machine too loaded for the full run to finish in reasonable time: raw and this library
// keep their full counts (the targets are judged on them) with 3 repetitions; the other peers
// run once, with smaller counts.
const OTHER_LEAN = { s1: 5000, s2: 20000, s3: 50 };
const LEAN = {
  ...FULL,
  reps: 3,
  otherReps: 1,
  peerReps: {},
  peerRr: { 'vscode-jsonrpc': OTHER_LEAN, 'node-ipc': OTHER_LEAN, 'node-ipc-9': OTHER_LEAN, zeromq: OTHER_LEAN, grpc: { s1: 2000, s2: 5000, s3: 20 } },
  s4: { ...FULL.s4, reps: 2, otherReps: 1 },
  s4big: { ...FULL.s4big, reps: 2 },
  s5: { ...FULL.s5, reps: 1 },
  soak: { seconds: 30 },
};
const config = opts.quick ? QUICK : opts.lean ? LEAN : FULL;
if (opts.reps) {
  config.reps = config.otherReps = Number(opts.reps);
  config.peerReps = {};
  config.peerRr = {};
  config.s4.reps = config.s4big.reps = config.s5.reps = Math.max(1, Math.min(config.reps, config.s4.reps));
}
const only = new Set((opts.only ?? 's1s3,s4,s4big,s5,micro,soak').split(','));
// S3 sends 1 MiB + a few bytes of envelope.
const MAX_MESSAGE_SIZE = 2 * MiB;
// Every peer with a message limit, this library included (1 MiB by default), gets room for S3's 1 MiB payload.
const maxMessageSizeOf = () => MAX_MESSAGE_SIZE;
// Quick mode only checks that everything works: peers run side by side, unpinned.
const pin = !opts['no-pin'] && !opts.quick;
const parallel = opts.quick;
const log = (...a) => console.error(...a);
const fmt = (x, d = 0) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '–');

const rotate = (list, k) => list.map((_, i) => list[(i + k) % list.length]);
/** Run `fn` for each peer: one after another (measuring), or all at once (quick mode). */
async function forPeers(list, fn) {
  if (parallel) await Promise.all(list.map(fn));
  else for (const id of list) await fn(id);
}
const CORE = ['raw', 'library'];

/** One server process and one client process; the client runs `task`. */
// Every net-based server also reads its main thread's run-queue wait around each accept and each
// handshake (S4), for the "no accept stalls the loop" target: ~5 µs a read, the same per accept
// for every peer (the handshake's reads fall on peers that have one).
const pair = (peerId, task, args) =>
  runPair(peerId, task, args, { pin, timeoutMs: config.timeoutMs, maxMessageSize: maxMessageSizeOf(peerId), log, serverArgs: { acceptCpu: true } });

async function attempt(results, key, peerId, rep, task, args) {
  const started = performance.now();
  try {
    const value = await pair(peerId, task, args);
    (results[key][peerId] ??= []).push({ rep, ...value });
    return value;
  } catch (error) {
    const message = String(error?.message ?? error).split('\n')[0];
    log(`  ! ${peerId} ${key} rep ${rep}: ${message}`);
    if (opts.verbose && error.remoteStack) log(error.remoteStack);
    (results.errors ??= []).push({ scenario: key, peer: peerId, rep, error: message });
    return undefined;
  } finally {
    if (opts.verbose) log(`    (${peerId} ${key} took ${fmt((performance.now() - started) / 1000, 1)} s)`);
  }
}

async function main() {
  const t0 = performance.now();
  const wanted = opts.peers ? opts.peers.split(',') : PEERS;
  const peers = await availablePeers(wanted);
  for (const p of peers) if (!p.available) log(`peer ${p.id} is not available here: ${p.error}`);
  const ids = peers.filter((p) => p.available).map((p) => p.id);
  for (const required of ['raw', 'library']) {
    if (wanted.includes(required) && !ids.includes(required)) throw new Error(`the ${required} peer must load (run npm run build first?)`);
  }

  const results = {
    mode: opts.quick ? 'quick' : 'full',
    config,
    machine: machine(),
    peers,
    load: { before: { loadavg: os.loadavg(), cpu: await cpuBusy(opts.quick ? 200 : 1000) }, perRep: [] },
    rr: {},
    s4: {},
    s4big: {},
    s5: {},
    errors: [],
  };
  log(`interprocess-converse bench (${results.mode}): peers ${ids.join(', ')}; load ${results.load.before.loadavg.map((x) => x.toFixed(2)).join(' ')}`);

  if (only.has('micro')) {
    log('codec/framing micro-benchmark …');
    results.micro = await runMicro({ seconds: config.micro.seconds });
  }

  if (only.has('s1s3')) {
    for (let rep = 0; rep < config.reps; rep++) {
      results.load.perRep.push({ rep, loadavg: os.loadavg() });
      log(`S1–S3 rep ${rep + 1}/${config.reps} (load ${os.loadavg()[0].toFixed(2)})`);
      const these = rotate(ids, rep).filter((id) => CORE.includes(id) || rep < (config.peerReps?.[id] ?? config.otherReps));
      await forPeers(these, async (id) => {
        const r = await attempt(results, 'rr', id, rep, 'rr', { ...config.rr, ...config.peerRr?.[id] });
        if (r) {
          log(
            `  ${id.padEnd(15)} S1 p50 ${fmt(r.s1?.p50, 1)} µs p99 ${fmt(r.s1?.p99, 1)} µs ${fmt(r.s1?.asksPerSec)} /s | S2 ${fmt(r.s2?.asksPerSec)} /s | S3 ${fmt(r.s3?.mbPerSec)} MB/s`,
          );
        }
      });
    }
  }

  if (only.has('s4')) {
    for (let rep = 0; rep < config.s4.reps; rep++) {
      log(`S4 ${config.s4.n} clients, rep ${rep + 1}/${config.s4.reps} (load ${os.loadavg()[0].toFixed(2)})`);
      const these = rotate(ids, rep).filter((id) => CORE.includes(id) || rep < (config.s4.otherReps ?? config.s4.reps));
      await forPeers(these, async (id) => {
        const r = await attempt(results, 's4', id, rep, 'many', { ...config.s4, idleMs: opts.quick ? 100 : 500 });
        if (r) log(`  ${id.padEnd(15)} ${s4line(r)}`);
      });
    }
  }

  if (only.has('s4big')) {
    const bigPeers = CORE.filter((p) => ids.includes(p));
    for (let rep = 0; rep < config.s4big.reps; rep++) {
      log(`S4 ${config.s4big.n} clients, rep ${rep + 1}/${config.s4big.reps} (load ${os.loadavg()[0].toFixed(2)})`);
      await forPeers(rotate(bigPeers, rep), async (id) => {
        const r = await attempt(results, 's4big', id, rep, 'many', { ...config.s4big, idleMs: opts.quick ? 100 : 1000 });
        if (r) log(`  ${id.padEnd(15)} ${s4line(r)}`);
      });
    }
  }

  if (only.has('s5') && ids.includes('library')) {
    for (let rep = 0; rep < config.s5.reps; rep++) {
      const r = await attempt(results, 's5', 'library', rep, 'broadcast', config.s5);
      if (r) log(`S5 broadcast to ${r.n}: median ${fmt(r.medianMs, 2)} ms (min ${fmt(r.minMs, 2)}, max ${fmt(r.maxMs, 2)})`);
    }
  }

  if (only.has('soak')) {
    const soakPeers = CORE.filter((p) => ids.includes(p));
    try {
      results.soak = await runSoak({ seconds: config.soak.seconds, peers: soakPeers, pin, log });
    } catch (error) {
      const message = String(error?.message ?? error).split('\n')[0];
      log(`  ! soak: ${message}`);
      results.errors.push({ scenario: 'soak', peer: soakPeers.join('+'), rep: 0, error: message });
    }
  }

  results.load.after = { loadavg: os.loadavg() };
  results.elapsedSec = (performance.now() - t0) / 1000;
  log(`done in ${fmt(results.elapsedSec, 1)} s`);

  let out = opts.out;
  if (!out && !opts.quick) out = path.join(benchDir, 'results', 'latest.json');
  if (out) {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(results, null, 1));
  }
  // RESULTS.md, the chart and the README describe bench/results/latest.json: only a run that wrote it refreshes them.
  if (!opts.quick && !opts.out) {
    const written = writeReport();
    log(`wrote ${written.join(', ')}`);
  } else {
    process.stdout.write(`${JSON.stringify(summaryForQuick(results))}\n`);
  }
  const failed = results.errors.length > 0;
  if (failed) log(`${results.errors.length} failure(s): ${results.errors.map((e) => `${e.peer}/${e.scenario}`).join(', ')}`);
  process.exitCode = failed ? 1 : 0;
}

function s4line(r) {
  const s = r.server;
  const perConn = (x) => (s.after[x] - s.base[x]) / r.n / 1024;
  return `connect ${fmt(r.connectMs)} ms, asks ${fmt(r.askMs)} ms, server RSS ${fmt(perConn('rss'), 1)} KiB/conn heap ${fmt(perConn('heapUsed'), 1)} KiB/conn, loop max connecting ${fmt(s.loop.connect?.maxMs, 1)} ms (slowest accept ${fmt(s.loop.connect?.accept?.maxMs, 2)} ms wall, ${fmt(s.loop.connect?.accept?.maxCpuMs, 2)} ms run; with handshake ${fmt(s.loop.connect?.accept?.withHandshake?.maxRunMs, 2)} ms run, p50 ${fmt(s.loop.connect?.accept?.withHandshake?.p50RunMs * 1000, 0)} µs), asks ${fmt(s.loop.asks?.maxMs, 1)} ms`;
}

function summaryForQuick(results) {
  return {
    ok: results.errors.length === 0,
    peers: results.peers.map((p) => ({ id: p.id, available: p.available })),
    rr: Object.fromEntries(Object.entries(results.rr).map(([k, v]) => [k, v.length])),
    s4: Object.fromEntries(Object.entries(results.s4).map(([k, v]) => [k, v.length])),
    s4big: Object.fromEntries(Object.entries(results.s4big).map(([k, v]) => [k, v.length])),
    s5: results.s5.library?.length ?? 0,
    micro: results.micro ? Object.keys(results.micro.results ?? {}).length : 0,
    soak: Object.keys(results.soak?.results ?? {}),
    errors: results.errors,
    elapsedSec: results.elapsedSec,
  };
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
