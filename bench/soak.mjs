#!/usr/bin/env node
// The soak: S2 (pipelined asks, 256 in flight) for 60 s against this library and, beside it, the
// raw baseline (the same minute's machine, so the rate has a yardstick), reporting the heap of the
// server and the client after GC at the start and at the end (a leak shows as growth) and the
// rate over time. Writes bench/results/soak.json and refreshes RESULTS.md. `npm run bench` runs
// the same soak as its last part.
//
//   node bench/soak.mjs [--seconds 60] [--peers raw,library] [--no-write]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchDir, machine } from './lib/env.mjs';
import { runPair } from './lib/proc.mjs';
import { writeReport } from './lib/report.mjs';

const WINDOW = 256;
const kib = (x) => `${(x / 1024).toFixed(0)} KiB`;

/** One soak per peer, one after another (raw first); returns what soak.json holds. */
export async function runSoak({ seconds = 60, peers = ['raw', 'library'], pin = true, log = console.error } = {}) {
  const loadavg = os.loadavg();
  const results = {};
  for (const peer of peers) {
    log(`soak: ${peer}, S2 with ${WINDOW} in flight for ${seconds} s (load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')})`);
    const result = await runPair(
      peer,
      'soak',
      { seconds, window: WINDOW, batch: seconds >= 10 ? 50000 : 5000, warmup: seconds >= 10 ? 20000 : 2000 },
      { pin, timeoutMs: (seconds + 120) * 1000, log },
    );
    result.loadavgAfter = os.loadavg();
    const growth = (a, b) => `${kib(a)} → ${kib(b)} (${b >= a ? '+' : ''}${kib(b - a)})`;
    log(`  ${result.asks.toLocaleString('en-US')} asks in ${result.seconds.toFixed(1)} s = ${Math.round(result.asksPerSec).toLocaleString('en-US')} asks/s`);
    log(`  server heapUsed after GC: ${growth(result.serverStart.heapUsed, result.serverEnd.heapUsed)}; RSS ${growth(result.serverStart.rss, result.serverEnd.rss)}`);
    log(`  client heapUsed after GC: ${growth(result.clientStart.heapUsed, result.clientEnd.heapUsed)}; RSS ${growth(result.clientStart.rss, result.clientEnd.rss)}`);
    results[peer] = result;
  }
  return { date: new Date().toISOString(), window: WINDOW, seconds, loadavg, machine: machine(), results };
}

export function writeSoak(soak) {
  const dir = path.join(benchDir, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'soak.json'), JSON.stringify(soak, null, 1));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values: opts } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      peers: { type: 'string', default: 'raw,library' },
      'no-write': { type: 'boolean', default: false },
      'no-pin': { type: 'boolean', default: false },
    },
  });
  const soak = await runSoak({ seconds: Number(opts.seconds), peers: opts.peers.split(','), pin: !opts['no-pin'] });
  if (!opts['no-write']) {
    writeSoak(soak);
    if (fs.existsSync(path.join(benchDir, 'results', 'latest.json'))) console.error(`wrote ${writeReport().join(', ')}`);
  }
}
