#!/usr/bin/env node
// CPU profiles of S1 and S2 for one peer (default: this library), server and client: the V8 CPU
// profiler (what `node --cpu-prof` runs), started over the inspector around the measured part
// only, so start-up and warm-up stay out. Prints the top self-time functions and a breakdown by
// package; the .cpuprofile files open in Chrome DevTools.
//
//   node bench/profile.mjs [--peer library] [--scenario s1|s2|both|s3|s4] [--n 10000] [--dir /tmp/icv-prof] [--top 25]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runPair } from './lib/proc.mjs';

const { values: opts } = parseArgs({
  options: {
    peer: { type: 'string', default: 'library' },
    scenario: { type: 'string', default: 'both' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'icv-prof') },
    top: { type: 'string', default: '25' },
    s1: { type: 'string', default: '20000' },
    s2: { type: 'string', default: '200000' },
    heap: { type: 'boolean', default: false },
    n: { type: 'string', default: '10000' },
    survivors: { type: 'boolean', default: false },
  },
});
const top = Number(opts.top);

/** Self time per function and per package from a .cpuprofile. */
export function analyze(file) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  // The first delta runs from Profiler.start's call to the first sample (the inspector's own
  // dispatch): not part of the workload.
  for (let i = 1; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  let total = 0;
  const fns = new Map();
  const groups = new Map();
  for (const [id, us] of self) {
    const { callFrame: f } = byId.get(id);
    total += us;
    const where = shortUrl(f.url);
    const key = `${f.functionName || '(anonymous)'} ${where ? `${where}:${f.lineNumber + 1}` : ''}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + us);
    const g = group(f);
    groups.set(g, (groups.get(g) ?? 0) + us);
  }
  const sortDesc = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { totalMs: total / 1000, functions: sortDesc(fns), groups: sortDesc(groups) };
}

function shortUrl(url) {
  if (!url) return '';
  const u = url.replace(/^file:\/\//, '');
  for (const marker of ['/dist/src/', '/dist/machines/', '/node_modules/', '/bench/']) {
    const i = u.lastIndexOf(marker);
    if (i >= 0) return u.slice(i + 1);
  }
  return u;
}

function group(f) {
  const u = f.url;
  if (!u) return f.functionName.startsWith('(') ? f.functionName : '(native / VM)';
  if (u.includes('/dist/src/')) return 'library src/';
  if (u.includes('/dist/machines/')) return 'library machines/';
  if (u.includes('/node_modules/xstate/')) return 'xstate';
  if (u.includes('/node_modules/msgpackr')) return 'msgpackr';
  if (u.includes('/node_modules/')) return u.replace(/.*\/node_modules\/((@[^/]+\/)?[^/]+).*/, '$1');
  if (u.startsWith('node:')) return `node internals (${u.replace(/^node:(internal\/)?/, '').split('/')[0]})`;
  if (u.includes('/bench/')) return 'bench harness';
  return 'other';
}

function print(title, result) {
  const idle = (result.groups.find(([g]) => g === '(idle)')?.[1] ?? 0) / 1000;
  const busy = result.totalMs - idle;
  const pct = (us) => `${((us / 1000 / busy) * 100).toFixed(1).padStart(5)}%`;
  console.log(`\n### ${title} — ${result.totalMs.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms busy (${((busy / result.totalMs) * 100).toFixed(0)}%); shares below are of the busy time`);
  console.log('\nBy package:');
  for (const [g, us] of result.groups.filter(([g]) => g !== '(idle)').slice(0, 14)) console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${g}`);
  console.log(`\nTop ${top} self-time functions:`);
  for (const [k, us] of result.functions.filter(([k]) => k !== '(idle)').slice(0, top)) console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
}

/** Allocation sampling: bytes allocated per function (self), per ask. */
function printHeap(title, file, asks) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const self = new Map();
  let total = 0;
  const walk = (node) => {
    const f = node.callFrame;
    const bytes = node.selfSize ?? 0;
    const key = `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + bytes);
    total += bytes;
    for (const c of node.children ?? []) walk(c);
  };
  walk(profile.head);
  console.log(`\n### ${title} — ${opts.survivors ? 'allocations that survived a scavenge' : 'allocation'} (sampled): ~${(total / asks).toFixed(0)} B per ask`);
  for (const [k, b] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`  ${((b / total) * 100).toFixed(1).padStart(5)}%  ${(b / asks).toFixed(1).padStart(7)} B/ask  ${k}`);
  }
}

async function profileScenario(name, args, asks = args.s1 || args.s2) {
  const dir = path.join(opts.dir, `${opts.peer}-${name}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const { task = 'rr', ...rest } = args;
  const result = await runPair(opts.peer, task, { ...rest, profile: dir, profileHeap: opts.heap || opts.survivors, profileSurvivors: opts.survivors });
  const { server: _server, ...shown } = result;
  console.log(`\n## ${opts.peer} ${name}: ${JSON.stringify(shown)}`);
  for (const side of ['server', 'client']) {
    if (opts.heap || opts.survivors) {
      printHeap(`${name} ${side}`, path.join(dir, `${name.toLowerCase()}-${side}.heapprofile`), asks);
      continue;
    }
    const file = path.join(dir, `${name.toLowerCase()}-${side}.cpuprofile`);
    if (!fs.existsSync(file)) {
      console.log(`(no ${side} profile written)`);
      continue;
    }
    print(`${name} ${side}`, analyze(file));
  }
  console.log(`\n(profiles in ${dir}; open them in Chrome DevTools → Performance)`);
}

if (opts.scenario === 's4') {
  // The connect phase of S4: n clients connecting (at most 128 at once) to one server.
  const n = Number(opts.n ?? 10000);
  await profileScenario('S4', { task: 'many', n, concurrency: 128, warmupClients: 10, idleMs: 200 }, n);
}
if (opts.scenario === 's3') {
  await profileScenario('S3', { warmup: 200, s1: 0, s2: 0, window: 256, s3: 200, s3Window: 4 }, 200);
}
if (opts.scenario === 's1' || opts.scenario === 'both') {
  await profileScenario('S1', { warmup: 2000, s1: Number(opts.s1), s2: 0, window: 256, s3: 0, s3Window: 1 });
}
if (opts.scenario === 's2' || opts.scenario === 'both') {
  await profileScenario('S2', { warmup: 2000, s1: 0, s2: Number(opts.s2), window: 256, s3: 0, s3Window: 1 });
}
