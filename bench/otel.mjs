#!/usr/bin/env node
// What OpenTelemetry support costs (docs/OBSERVABILITY.md §9): one process, a server and a client
// over a local socket, sequential and pipelined asks, in three modes, each in a fresh process:
//
//   absent       @opentelemetry/api cannot be imported (a module hook hides it, as on a machine
//                without the package)
//   no-provider  the API is installed and loaded, no tracer provider is registered (the common
//                case for an application that has the package through some other dependency)
//   provider     a tracer provider is registered (spans made and ended, none exported), so that
//                the cost of tracing itself is on the same scale
//
// The claim for the first two is "nothing": no span, no call into the API, no byte on the wire;
// their numbers should differ by noise only. Modes run interleaved, several rounds, median kept.
//
//   node bench/otel.mjs [--rounds 3] [--sequential 5000] [--pipelined 50000] [--modes absent,no-provider,provider] [--json]
// ICV_BENCH_DIST picks another build (for example main's, to compare the code before the change).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { libraryModule } from './lib/env.mjs';

const self = fileURLToPath(import.meta.url);
const ALL_MODES = ['absent', 'no-provider', 'provider'];

/** A module hook that makes every `@opentelemetry/*` import fail as a missing package does. */
const HIDE_OPENTELEMETRY = `data:text/javascript,${encodeURIComponent(
  `import { register } from 'node:module';
   register('data:text/javascript,' + encodeURIComponent(
     'export async function resolve(specifier, context, next) {' +
     '  if (specifier.startsWith("@opentelemetry/")) throw Object.assign(new Error("Cannot find package " + specifier), { code: "ERR_MODULE_NOT_FOUND" });' +
     '  return next(specifier, context);' +
     '}'));`,
)}`;

const { values } = parseArgs({
  options: {
    mode: { type: 'string' },
    modes: { type: 'string', default: ALL_MODES.join(',') },
    rounds: { type: 'string', default: '3' },
    sequential: { type: 'string', default: '5000' },
    pipelined: { type: 'string', default: '50000' },
    json: { type: 'boolean', default: false },
  },
});
const sequential = Number(values.sequential);
const pipelined = Number(values.pipelined);
const MODES = values.modes.split(',').filter((mode) => ALL_MODES.includes(mode));

if (values.mode !== undefined) {
  process.stdout.write(`${JSON.stringify(await measure(values.mode))}\n`);
} else {
  const results = Object.fromEntries(MODES.map((mode) => [mode, { sequential: [], pipelined: [], sequentialCpu: [], pipelinedCpu: [] }]));
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const mode of round % 2 === 0 ? MODES : [...MODES].reverse()) {
      const one = await child(mode);
      for (const key of ['sequential', 'pipelined', 'sequentialCpu', 'pipelinedCpu']) results[mode][key].push(one[key]);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const summary = Object.fromEntries(
    MODES.map((mode) => [mode, Object.fromEntries(['sequential', 'pipelined', 'sequentialCpu', 'pipelinedCpu'].map((key) => [key, median(results[mode][key])]))]),
  );
  if (values.json) process.stdout.write(`${JSON.stringify({ sequential, pipelined, rounds: Number(values.rounds), summary, results })}\n`);
  else {
    console.log(`median of ${values.rounds} rounds (${sequential} sequential asks, ${pipelined} pipelined 100 at a time); CPU µs per ask is client and server together`);
    console.log('mode         sequential/s  pipelined/s  sequential CPU µs  pipelined CPU µs');
    for (const mode of MODES) {
      const m = summary[mode];
      console.log(`${mode.padEnd(12)} ${String(Math.round(m.sequential)).padStart(12)} ${String(Math.round(m.pipelined)).padStart(12)} ${m.sequentialCpu.toFixed(1).padStart(18)} ${m.pipelinedCpu.toFixed(1).padStart(17)}`);
    }
  }
}

function child(mode) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    if (mode === 'absent') env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import=${HIDE_OPENTELEMETRY}`.trim();
    const proc = spawn(process.execPath, [self, '--mode', mode, '--sequential', String(sequential), '--pipelined', String(pipelined)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${mode} exited with ${code}`))));
  });
}

async function measure(mode) {
  if (mode === 'provider') {
    const { trace, context } = await import('@opentelemetry/api');
    const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
    const { BasicTracerProvider } = await import('@opentelemetry/sdk-trace-base');
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new BasicTracerProvider());
  }
  const { listen, connect, generateSocketName } = await libraryModule('src/index.js');
  const name = generateSocketName();
  const server = await listen(name, { handlers: { add: ({ a, b }) => a + b } });
  const client = await connect(name);
  if (mode === 'absent') {
    // The point of the mode: check that the package really could not be imported.
    const importable = await import('@opentelemetry/api').then(() => true, () => false);
    if (importable) throw new Error('absent mode: @opentelemetry/api was importable');
  }
  for (let i = 0; i < 2000; i++) await client.ask({ type: 'add', a: i, b: 1 }); // warm-up
  // Wall-clock rates, and CPU time per ask (client and server are this one process): on a loaded
  // machine the CPU time is the steadier of the two.
  const cpu = () => {
    const used = process.cpuUsage();
    return used.user + used.system;
  };
  let started = performance.now();
  let cpuStarted = cpu();
  for (let i = 0; i < sequential; i++) await client.ask({ type: 'add', a: i, b: 1 });
  const sequentialRate = sequential / ((performance.now() - started) / 1000);
  const sequentialCpu = (cpu() - cpuStarted) / sequential;
  started = performance.now();
  cpuStarted = cpu();
  for (let done = 0; done < pipelined; done += 100) {
    const batch = [];
    for (let i = 0; i < 100; i++) batch.push(client.ask({ type: 'add', a: i, b: done }));
    await Promise.all(batch);
  }
  const pipelinedRate = pipelined / ((performance.now() - started) / 1000);
  const pipelinedCpu = (cpu() - cpuStarted) / pipelined;
  await client.close();
  await server.close();
  return { mode, sequential: sequentialRate, pipelined: pipelinedRate, sequentialCpu, pipelinedCpu };
}
