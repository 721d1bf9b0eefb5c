#!/usr/bin/env node
// The soak: S2 (pipelined asks, 256 in flight) against this library for 60 s, reporting the
// heap of the server and the client after GC at the start and at the end (a leak shows as
// growth), and the rate over time. Writes bench/results/soak.json and refreshes RESULTS.md.
//
//   node bench/soak.mjs [--seconds 60] [--peer library] [--no-write]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { benchDir, machine } from './lib/env.mjs';
import { runPair } from './lib/proc.mjs';
import { writeReport } from './lib/report.mjs';

const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    peer: { type: 'string', default: 'library' },
    'no-write': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
  },
});
const seconds = Number(opts.seconds);
const window = 256;
const kib = (x) => `${(x / 1024).toFixed(0)} KiB`;

const loadavg = os.loadavg();
console.error(`soak: ${opts.peer}, S2 with ${window} in flight for ${seconds} s (load ${loadavg.map((x) => x.toFixed(2)).join(' ')})`);
const result = await runPair(
  opts.peer,
  'soak',
  { seconds, window, batch: seconds >= 10 ? 50000 : 5000, warmup: seconds >= 10 ? 20000 : 2000 },
  { pin: !opts['no-pin'], timeoutMs: (seconds + 120) * 1000 },
);
const growth = (a, b) => `${kib(a)} → ${kib(b)} (${b >= a ? '+' : ''}${kib(b - a)})`;
console.error(`${result.asks.toLocaleString('en-US')} asks in ${result.seconds.toFixed(1)} s = ${Math.round(result.asksPerSec).toLocaleString('en-US')} asks/s`);
console.error(`server heapUsed after GC: ${growth(result.serverStart.heapUsed, result.serverEnd.heapUsed)}; RSS ${growth(result.serverStart.rss, result.serverEnd.rss)}`);
console.error(`client heapUsed after GC: ${growth(result.clientStart.heapUsed, result.clientEnd.heapUsed)}; RSS ${growth(result.clientStart.rss, result.clientEnd.rss)}`);
const rates = result.batches.map((b) => Math.round(b.asksPerSec));
console.error(`rate per batch: first ${rates[0]}, last ${rates[rates.length - 1]}, min ${Math.min(...rates)}, max ${Math.max(...rates)}`);

if (!opts['no-write']) {
  const dir = path.join(benchDir, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'soak.json'), JSON.stringify({ date: new Date().toISOString(), peer: opts.peer, window, loadavg, machine: machine(), result }, null, 1));
  if (fs.existsSync(path.join(dir, 'latest.json'))) console.error(`wrote ${writeReport().join(', ')}`);
}
