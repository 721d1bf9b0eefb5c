// RESULTS.md and chart.svg from the JSON the runs leave in bench/results/ (latest.json from
// run.mjs, soak.json from soak.mjs). Regenerated after every full run and every soak.
import fs from 'node:fs';
import path from 'node:path';
import { renderChart } from './chart.mjs';
import { summarize } from './common.mjs';
import { benchDir } from './env.mjs';

const MD = path.join(benchDir, 'RESULTS.md');
const SVG = path.join(benchDir, 'chart.svg');
const RESULTS = path.join(benchDir, 'results');

const readJson = (file) => {
  try {
    return JSON.parse(fs.readFileSync(path.join(RESULTS, file), 'utf8'));
  } catch {
    return undefined;
  }
};

// ── formatting ──────────────────────────────────────────────────────────────────────────────
const num = (x, d = 0) =>
  typeof x === 'number' && Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '–';
const cell = (s, d = 0) => (s ? `${num(s.median, d)} (${num(s.min, d)}–${num(s.max, d)})` : '–');
const ratioCell = (s) => (s ? `${num(s.median, 2)}× (${num(s.min, 2)}–${num(s.max, 2)})` : '–');

function verdict(s, target, direction) {
  if (!s) return 'not measured';
  const ok = direction === 'max' ? s.median <= target : s.median >= target;
  const allOk = direction === 'max' ? s.max <= target : s.min >= target;
  if (ok) return allOk ? '**holds**' : '**holds** (median; some repetitions miss)';
  const by = direction === 'max' ? s.median / target - 1 : 1 - s.median / target;
  return `**misses** by ${num(by * 100, 0)}%`;
}

/** Per-repetition values of `get(entry)` for one peer. */
const series = (entries, get) => (entries ?? []).map((e) => ({ rep: e.rep, v: get(e) })).filter((x) => typeof x.v === 'number' && Number.isFinite(x.v));
const stat = (entries, get) => summarize(series(entries, get).map((x) => x.v));
/** Ratio of a peer to raw, paired within each repetition, summarized over repetitions. */
function ratio(entries, rawEntries, get) {
  const raw = new Map(series(rawEntries, get).map((x) => [x.rep, x.v]));
  return summarize(series(entries, get).filter((x) => raw.has(x.rep)).map((x) => x.v / raw.get(x.rep)));
}

const perConn = (e, key) => (e.server.after[key] - e.server.base[key]) / e.n / 1024;

export function writeReport() {
  const r = readJson('latest.json');
  const soak = readJson('soak.json');
  if (!r) throw new Error('bench/results/latest.json is missing: run the benchmark first');
  const peers = r.peers.filter((p) => p.available);
  const label = (id) => peers.find((p) => p.id === id)?.name ?? id;
  const m = r.machine;
  const lines = [];
  const L = (s = '') => lines.push(s);

  L('# Benchmark results');
  L();
  L(`Measured ${m.date.slice(0, 10)} (${m.date}) by \`npm run bench\` (bench/run.mjs); this file and chart.svg are generated from bench/results/latest.json${soak ? ' and bench/results/soak.json' : ''}. Re-run to refresh; do not edit by hand.`);
  L();
  L('## Machine, load and versions');
  L();
  L('| | |');
  L('|---|---|');
  L(`| CPU | ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB |`);
  L(`| OS | ${m.platform} |`);
  L(`| Node | ${m.node} (V8 ${m.v8}) |`);
  L(`| interprocess-converse | ${m.library} at commit ${m.commit ?? '?'}${m.sourceDirty ? ' (with uncommitted changes to src/ or machines/)' : ''}; xstate ${m.xstate}, msgpackr ${m.libraryMsgpackr} |`);
  L(`| Background load before the run | loadavg ${r.load.before.loadavg.map((x) => x.toFixed(2)).join(' / ')} (1/5/15 min); ${r.load.before.cpu ? `${num(r.load.before.cpu.busy * 100, 0)}% of all CPU busy in the second before the run, steal ${num(r.load.before.cpu.steal * 100, 1)}%` : 'CPU share unknown'} |`);
  L(`| Load during the run | loadavg (1 min) at the start of each S1–S3 repetition: ${r.load.perRep.map((x) => x.loadavg[0].toFixed(2)).join(', ') || '–'}; at the end ${r.load.after?.loadavg.map((x) => x.toFixed(2)).join(' / ') ?? '–'} (the benchmark itself keeps ~2 processes busy) |`);
  L(`| Run time | ${num(r.elapsedSec / 60, 1)} min |`);
  L();
  L('| Peer | Packages (exact versions, bench/package.json) | Wire format |');
  L('|---|---|---|');
  const wire = {
    raw: '4-byte length prefix + msgpackr; writes coalesced per tick into one buffer, no handshake or checks',
    library: "1/3/5/9-byte length prefix + msgpackr envelope [kind, id, message], validated on both ends (prepare() + MessagePack scan), after a handshake",
    'vscode-jsonrpc': 'JSON-RPC 2.0 with Content-Length headers; S3 payload as base64',
    'node-ipc': "JSON events with a '\\f' delimiter (id in the event); S3 payload as base64",
    zeromq: 'ZMTP over ipc://, ROUTER/DEALER, msgpackr bodies',
    grpc: 'HTTP/2 over unix:, unary method with msgpackr (de)serializers instead of protobuf',
  };
  for (const p of peers) {
    const v = Object.entries(p.versions).map(([k, ver]) => `${k} ${ver}`).join(', ') || '(this repository)';
    L(`| ${p.name} | ${v} | ${wire[p.id] ?? ''} |`);
  }
  const missing = r.peers.filter((p) => !p.available);
  if (missing.length) L(`\nNot available in this run: ${missing.map((p) => `${p.id} (${p.error})`).join('; ')}.`);
  L();
  L('## Method');
  L();
  const c = r.config;
  L(`* Every peer runs as a **server process and a client process** on one Unix socket, the server pinned to CPU 0 and the client to CPU 1 (taskset), each a fresh \`node --expose-gc\`. The parent only coordinates over Node's IPC channel (a separate fd).`);
  L(`* The request is \`{ type: 'add', a, b }\`, the reply \`a + b\`; **every reply is checked**, and a wrong or missing one fails the run.`);
  L(`* **S1** sequential: ${num(c.rr.warmup)} warm-up asks, then ${num(c.rr.s1)} asks one after another; per-ask latency (performance.now), p50/p99 and asks/s.`);
  L(`* **S2** pipelined: ${num(c.rr.s2)} asks with ${c.rr.window} in flight (a new ask as each reply arrives); asks/s.`);
  L(`* **S3** large: ${c.rr.s3} asks each carrying a ${num(c.rr.s3Bytes / 1048576)} MiB Uint8Array (${c.rr.s3Window} in flight; the server checks length and a byte before answering \`a + b\`); MB/s = payload bytes / 10⁶ / s. maxMessageSize is 2 MiB on both sides. JSON peers carry the bytes as base64 (their cost).`);
  L(`* **S4** many clients: one client process opens ${num(c.s4.n)} connections (at most ${c.s4.concurrency} connects outstanding), then every client asks once, then they stay idle. The server's RSS and heapUsed (after forced GC) before and after, divided by the number of clients, give the cost per idle connection. ${c.s4.warmupClients} short-lived clients warm the server first. The server's event loop is watched with perf_hooks.monitorEventLoopDelay (1 ms resolution) and the synchronous work of each 'connection' listener is timed (net-based peers). Also at ${num(c.s4big.n)} clients for the raw baseline and this library (open-file limit raised with \`ulimit -n\` in the spawning shell, up to the hard limit ${m.nofileHard}; maxConnections ${num(100000)}).`);
  L(`* **S5** (this library only): ${num(c.s5.n)} connected clients; a control ask makes the server \`broadcast()\` one small event; time from the ask until every client's handler has run (one process clock), ${c.s5.rounds} rounds per repetition.`);
  L(`* **Repetitions, interleaved:** S1–S3 ${c.reps}× for raw and this library${c.otherReps !== undefined && c.otherReps !== c.reps ? ` (the other peers in the first ${c.otherReps} of them${Object.entries(c.peerReps ?? {}).map(([k, n]) => `, ${label(k)} in the first ${n}`).join('')}: their S2 and S3 are slow)` : ''}, S4 ${c.s4.reps}×, S4 at ${num(c.s4big.n)} ${c.s4big.reps}×, S5 ${c.s5.reps}×; within a repetition the peers run one after another, the order rotated each repetition. Tables show the **median of the repetitions (min–max)**. Ratios to raw are paired within each repetition (same minute, same load), then summarized the same way.`);
  L();
  L('![S1 latency percentiles and S2 throughput per peer](chart.svg)');
  L();

  // ── S1–S3 ──
  const rr = r.rr ?? {};
  if (Object.keys(rr).length) {
    L('## S1–S3: latency, pipelined throughput, large messages');
    L();
    L('| Peer | S1 p50 µs | S1 p99 µs | S1 asks/s | S2 asks/s | S3 MB/s |');
    L('|---|---:|---:|---:|---:|---:|');
    for (const p of peers) {
      const e = rr[p.id];
      if (!e) continue;
      L(`| ${p.name} | ${cell(stat(e, (x) => x.s1?.p50), 1)} | ${cell(stat(e, (x) => x.s1?.p99), 1)} | ${cell(stat(e, (x) => x.s1?.asksPerSec))} | ${cell(stat(e, (x) => x.s2?.asksPerSec))} | ${cell(stat(e, (x) => x.s3?.mbPerSec))} |`);
    }
    L();
    L('Ratios to the raw baseline (paired per repetition; for latency lower is better, for throughput higher is better):');
    L();
    L('| Peer | S1 p50 | S1 p99 | S2 | S3 |');
    L('|---|---:|---:|---:|---:|');
    for (const p of peers) {
      const e = rr[p.id];
      if (!e || p.id === 'raw') continue;
      L(`| ${p.name} | ${ratioCell(ratio(e, rr.raw, (x) => x.s1?.p50))} | ${ratioCell(ratio(e, rr.raw, (x) => x.s1?.p99))} | ${ratioCell(ratio(e, rr.raw, (x) => x.s2?.asksPerSec))} | ${ratioCell(ratio(e, rr.raw, (x) => x.s3?.mbPerSec))} |`);
    }
    L();
    L('S1 tail, µs (median of repetitions): ');
    L();
    L('| Peer | p90 | p99.9 | max |');
    L('|---|---:|---:|---:|');
    for (const p of peers) {
      const e = rr[p.id];
      if (!e) continue;
      L(`| ${p.name} | ${num(stat(e, (x) => x.s1?.p90)?.median, 1)} | ${num(stat(e, (x) => x.s1?.p999)?.median, 1)} | ${num(stat(e, (x) => x.s1?.max)?.median, 0)} |`);
    }
    L();
  }

  // ── S4 ──
  const s4Table = (entries, title, n) => {
    L(`## ${title}`);
    L();
    L('| Peer | connect all, ms | one ask each, ms | server RSS KiB/conn | server heap KiB/conn | loop delay max while connecting, ms | slowest accept, wall ms | slowest accept, run ms (p99) | client heap KiB/conn |');
    L('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const p of peers) {
      const e = entries[p.id];
      if (!e) continue;
      const acc = stat(e, (x) => x.server.loop.connect?.accept?.maxMs);
      const run = stat(e, (x) => x.server.loop.connect?.accept?.maxCpuMs);
      const run99 = stat(e, (x) => x.server.loop.connect?.accept?.p99CpuMs);
      L(
        `| ${p.name} | ${cell(stat(e, (x) => x.connectMs))} | ${cell(stat(e, (x) => x.askMs))} | ${cell(stat(e, (x) => perConn(x, 'rss')), 1)} | ${cell(stat(e, (x) => perConn(x, 'heapUsed')), 1)} | ${cell(stat(e, (x) => x.server.loop.connect?.maxMs), 1)} | ${acc ? cell(acc, 2) : 'n/a'} | ${run ? `${cell(run, 2)} (${num(run99?.median, 2)})` : '–'} | ${num(stat(e, (x) => x.clientHeapPerConnKiB)?.median, 1)} |`,
      );
    }
    L();
    L('"Slowest accept" times the synchronous work of the server\'s \'connection\' listener (net-based peers). Wall time on this shared VM includes preemption (other processes on the same CPU); "run" is wall time less the growth of the thread\'s run-queue wait (/proc/thread-self/schedstat), measured for this library only (it costs ~8 µs an accept, counted against it). zeromq and grpc-js accept in native code or without a net.Server \'connection\' listener: n/a.');
    L();
    const growth = (e, key) => stat(e, (x) => (x.server.after[key] - x.server.base[key]) / 1048576);
    const heapNotes = peers
      .filter((p) => entries[p.id])
      .map((p) => `${p.name} ${num(growth(entries[p.id], 'heapTotal')?.median, 1)} / ${num(growth(entries[p.id], 'heapUsed')?.median, 1)} MiB`);
    L(`Server heap reserved (heapTotal) / used (heapUsed) growth over the ${num(n)} connections, after GC: ${heapNotes.join('; ')}. RSS per connection includes what V8 keeps reserved after the connect burst (mostly a grown young generation), which weighs most at 1,000 clients; heapUsed is the marginal cost of an idle connection.`);
    L();
    if (entries.raw) {
      L(`Ratios to raw at ${num(n)} clients (paired per repetition):`);
      L();
      L('| Peer | RSS per idle connection | heap per idle connection | time to connect all |');
      L('|---|---:|---:|---:|');
      for (const p of peers) {
        const e = entries[p.id];
        if (!e || p.id === 'raw') continue;
        L(`| ${p.name} | ${ratioCell(ratio(e, entries.raw, (x) => perConn(x, 'rss')))} | ${ratioCell(ratio(e, entries.raw, (x) => perConn(x, 'heapUsed')))} | ${ratioCell(ratio(e, entries.raw, (x) => x.connectMs))} |`);
      }
      L();
    }
  };
  if (Object.keys(r.s4 ?? {}).length) s4Table(r.s4, `S4: ${num(c.s4.n)} clients on one server`, c.s4.n);
  if (Object.keys(r.s4big ?? {}).length) s4Table(r.s4big, `S4 at ${num(c.s4big.n)} clients (raw and this library)`, c.s4big.n);

  // ── S5 ──
  if (r.s5?.library?.length) {
    const e = r.s5.library;
    L(`## S5: broadcast to ${num(c.s5.n)} clients (this library)`);
    L();
    L(`Time from the triggering ask until all ${num(c.s5.n)} clients have the event: median of each repetition's ${c.s5.rounds} rounds ${cell(stat(e, (x) => x.medianMs), 2)} ms; fastest round ${num(Math.min(...e.map((x) => x.minMs)), 2)} ms, slowest ${num(Math.max(...e.map((x) => x.maxMs)), 2)} ms.`);
    L();
  }

  // ── Targets ──
  L('## Targets (this library against the raw baseline of the same run)');
  L();
  L('| Target | Measured | Verdict |');
  L('|---|---|---|');
  const lib = 'library';
  const t = [];
  if (rr[lib] && rr.raw) {
    t.push(['S1 p50 ≤ 1.15× raw', ratio(rr[lib], rr.raw, (x) => x.s1?.p50), 1.15, 'max']);
    t.push(['S1 p99 ≤ 1.5× raw', ratio(rr[lib], rr.raw, (x) => x.s1?.p99), 1.5, 'max']);
    t.push(['S2 ≥ 0.70× raw', ratio(rr[lib], rr.raw, (x) => x.s2?.asksPerSec), 0.7, 'min']);
    t.push(['S3 ≥ 0.85× raw', ratio(rr[lib], rr.raw, (x) => x.s3?.mbPerSec), 0.85, 'min']);
  }
  if (r.s4?.[lib] && r.s4.raw) t.push([`S4 RSS per idle connection ≤ 2× raw (${num(c.s4.n)} clients)`, ratio(r.s4[lib], r.s4.raw, (x) => perConn(x, 'rss')), 2, 'max']);
  if (r.s4big?.[lib] && r.s4big.raw) {
    t.push([`S4 RSS per idle connection ≤ 2× raw (${num(c.s4big.n)} clients)`, ratio(r.s4big[lib], r.s4big.raw, (x) => perConn(x, 'rss')), 2, 'max']);
    t.push([`${num(c.s4big.n)} clients connect in < 2× raw's time`, ratio(r.s4big[lib], r.s4big.raw, (x) => x.connectMs), 2, 'max']);
  }
  for (const [name, s, target, dir] of t) L(`| ${name} | ${ratioCell(s)} | ${verdict(s, target, dir)} |`);
  if (r.s4big?.[lib]) {
    const e = r.s4big[lib];
    const acc = stat(e, (x) => x.server.loop.connect?.accept?.maxMs);
    const run = stat(e, (x) => x.server.loop.connect?.accept?.maxCpuMs);
    const run99 = stat(e, (x) => x.server.loop.connect?.accept?.p99CpuMs);
    const loop = stat(e, (x) => x.server.loop.connect?.maxMs);
    const rawAcc = stat(r.s4big.raw, (x) => x.server.loop.connect?.accept?.maxMs);
    const rawLoop = stat(r.s4big.raw, (x) => x.server.loop.connect?.maxMs);
    const judged = run ?? acc;
    L(
      `| No single accept stalls the event loop > 5 ms (${num(c.s4big.n)} clients) | slowest accept ${run ? `${cell(run, 2)} ms run time (p99 ${num(run99?.median, 2)} ms), ` : ''}${cell(acc, 2)} ms wall; event-loop delay max while connecting ${cell(loop, 1)} ms (raw: slowest accept ${cell(rawAcc, 2)} ms wall, loop max ${cell(rawLoop, 1)} ms) | ${judged ? (judged.median <= 5 ? (judged.max <= 5 ? '**holds**' : '**holds** (median; some repetitions miss)') : `**misses**: ${num(judged.median, 1)} ms`) : 'not measured'} |`,
    );
  }
  L();
  L('"Measured" is the median of the per-repetition ratios (min–max). A verdict on a noisy 2-core VM is only as good as its spread: see the load rows above.');
  L();

  // ── micro ──
  if (r.micro) {
    L('## Codec and framing alone (src/wire/codec.ts, src/wire/framing.ts)');
    L();
    L(`Frames of ${r.micro.sizes.small} B (an ASK of \`{ type: 'add', a, b }\`) and ${num(r.micro.sizes.large)} B (the same with a 1 MiB Uint8Array). One process, no sockets; median of 5 slices. "reference" rows are plain msgpackr with the same options, for the cost of the library's checks (prepare() on encode, the MessagePack scan on decode). FrameDecoder small pushes 64 KiB reads of back-to-back frames; 1 MiB frames arrive as 64 KiB reads.`);
    L();
    L('| Operation | frames/s |');
    L('|---|---:|');
    for (const [k, v] of Object.entries(r.micro.results)) L(`| ${k} | ${num(v)} |`);
    L();
  }

  // ── soak ──
  if (soak) {
    L(`## Soak: S2 for ${num(soak.result.seconds, 0)} s (this library, \`npm run bench:soak\`, ${soak.date.slice(0, 10)})`);
    L();
    const s = soak.result;
    const kib = (x) => num(x / 1024, 0);
    L(`${num(s.asks)} asks at ${num(s.asksPerSec)} asks/s (${soak.window} in flight); first ${s.batches.length ? `batch ${num(s.batches[0].asksPerSec)}/s, last ${num(s.batches[s.batches.length - 1].asksPerSec)}/s` : ''}. Load before: ${soak.loadavg.map((x) => x.toFixed(2)).join(' / ')}.`);
    L();
    L('| After GC | heapUsed at start, KiB | heapUsed at end, KiB | RSS at start, KiB | RSS at end, KiB |');
    L('|---|---:|---:|---:|---:|');
    L(`| server | ${kib(s.serverStart.heapUsed)} | ${kib(s.serverEnd.heapUsed)} | ${kib(s.serverStart.rss)} | ${kib(s.serverEnd.rss)} |`);
    L(`| client | ${kib(s.clientStart.heapUsed)} | ${kib(s.clientEnd.heapUsed)} | ${kib(s.clientStart.rss)} | ${kib(s.clientEnd.rss)} |`);
    L();
  }

  if (r.errors?.length) {
    L('## Failures in this run');
    L();
    for (const e of r.errors) L(`* ${label(e.peer)} ${e.scenario} repetition ${e.rep}: ${e.error}`);
    L();
  }

  // ── chart ──
  const rows = peers
    .filter((p) => rr[p.id])
    .map((p) => ({
      label: p.name,
      highlight: p.id === 'library',
      s1: Object.fromEntries(['p50', 'p90', 'p99', 'p999'].map((k) => [k, stat(rr[p.id], (x) => x.s1?.[k])?.median])),
      s2: stat(rr[p.id], (x) => x.s2?.asksPerSec),
    }));
  const written = [MD];
  if (rows.length) {
    fs.writeFileSync(SVG, renderChart(rows, { subtitle: `${m.date.slice(0, 10)} · ${m.cpu} (${m.cores} cores) · Node ${m.node} · medians of ${c.reps} interleaved repetitions`, window: c.rr.window }));
    written.push(SVG);
  }
  fs.writeFileSync(MD, `${lines.join('\n')}\n`);
  return written;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.join(benchDir, 'lib', 'report.mjs')) {
  console.log(`wrote ${writeReport().join(', ')}`);
}
