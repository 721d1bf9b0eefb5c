// Entry point of every server and client process: `node child.mjs <server|client> <peer>`.
// Driven by the parent over the IPC channel (see proc.mjs).
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { gcMemory, quantile } from './common.mjs';
import { Channel } from './proc.mjs';
import * as tasks from './tasks.mjs';

const [role, peerName] = process.argv.slice(2);
const peer = await import(`../peers/${peerName}.mjs`);

let parent;
if (role === 'server') {
  let server;
  let base;
  let eld;
  const loop = {};
  parent = new Channel(process, {
    start: async (args) => {
      server = await peer.serve(args.path, args);
      // Run time (wall less waiting for a CPU) per accept only where asked (it costs ~8 µs an accept).
      if (args.acceptCpu === true) enableRunQueueWait();
      if (typeof server.acceptHook === 'function') server.acceptHook(timedAccept);
      else instrumentAccepts(server.netServer?.());
      return { pid: process.pid };
    },
    mem: () => gcMemory(),
    baseline: async () => {
      base = await gcMemory();
      eld = monitorEventLoopDelay({ resolution: 1 });
      eld.enable();
      accepts.length = 0;
      connecting = true;
      watchGc(true);
      return base;
    },
    /** Event-loop delay since the baseline or the previous mark, under a phase name; restarts the histogram. */
    mark: ({ phase }) => {
      connecting = false;
      loop[phase] = { maxMs: eld.max / 1e6, p99Ms: eld.percentile(99) / 1e6, meanMs: eld.mean / 1e6, count: eld.count, accept: acceptStats() };
      eld.reset();
      return loop[phase];
    },
    measure: async () => {
      eld.disable();
      watchGc(false);
      loop.idle = { maxMs: eld.max / 1e6, p99Ms: eld.percentile(99) / 1e6, meanMs: eld.mean / 1e6, count: eld.count, accept: acceptStats() };
      const after = await gcMemory();
      return { base, after, loop, connections: server.connections() };
    },
    stop: async () => {
      const closing = Promise.resolve(server?.close()).catch(() => {});
      await Promise.race([closing, new Promise((r) => setTimeout(r, 2000))]);
      setTimeout(() => process.exit(0), 10);
      return true;
    },
  });
} else {
  parent = new Channel(process, {
    run: async ({ task, ...args }) => {
      const result = await tasks[task](peer, args, parent);
      return result;
    },
    exit: () => {
      setTimeout(() => process.exit(0), 10);
      return true;
    },
  });
}

/**
 * The V8 CPU profiler (what --cpu-prof uses), started and stopped around the measured part only,
 * so start-up and warm-up do not dilute the profile.
 */
let session;
const profiling = {
  profileStart: async ({ intervalUs = 100, heap = false, survivors = false } = {}) => {
    session = new Session();
    session.connect();
    if (heap) {
      // Allocation sampling instead: where the garbage comes from.
      await session.post('HeapProfiler.enable');
      await session.post('HeapProfiler.startSampling', { samplingInterval: survivors ? 8192 : 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !survivors });
      session.heap = true;
      return true;
    }
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await session.post('Profiler.start');
    return true;
  },
  profileStop: async ({ file }) => {
    const { profile } = await session.post(session.heap ? 'HeapProfiler.stopSampling' : 'Profiler.stop');
    session.disconnect();
    fs.writeFileSync(session.heap ? file.replace(/\.cpuprofile$/, '.heapprofile') : file, JSON.stringify(profile));
    return file;
  },
};
Object.assign(parent.handlers, profiling);
export { profiling };

/**
 * Time the synchronous work of every 'connection' listener of the peer's net.Server (where it
 * has one): the part of an accept that blocks the event loop at once.
 */
const accepts = [];
let acceptCount = 0;
/** Between the baseline and the first mark: S4's clients are connecting. */
let connecting = false;
const gcs = [];
/**
 * How long this (main) thread has waited for a CPU, in ns: the second field of
 * /proc/thread-self/schedstat (Linux; one pread, ~4 µs), updated each time the thread is put
 * back on a CPU. An accept's wall time minus the growth of this wait is the time it actually
 * ran: preemption on a busy machine is left out. (The first field, time on the CPU, is only
 * brought up to date at scheduler ticks — 4 ms here — so it cannot time one accept.)
 */
let runQueueWait;
function enableRunQueueWait() {
  try {
    const fd = fs.openSync('/proc/thread-self/schedstat', 'r');
    const buf = Buffer.alloc(64);
    runQueueWait = () => {
      const n = fs.readSync(fd, buf, 0, 64, 0);
      let i = 0;
      while (i < n && buf[i] !== 32) i++; // skip the first field
      let v = 0;
      for (i++; i < n; i++) {
        const c = buf[i];
        if (c < 48 || c > 57) break;
        v = v * 10 + (c - 48);
      }
      return v;
    };
    runQueueWait();
  } catch {
    runQueueWait = undefined;
  }
}

function instrumentAccepts(netServer) {
  if (!netServer) return;
  const listeners = netServer.listeners('connection');
  netServer.removeAllListeners('connection');
  for (const listener of listeners) netServer.on('connection', timedAccept(listener, (socket) => socket));
}

/**
 * `accept` (a peer's function that takes one accepted connection, synchronously), timed;
 * `socketOf` finds the socket in its argument, for the handshake's half (see timeHandshake).
 */
function timedAccept(accept, socketOf) {
  return function timed(arg) {
    const t = performance.now();
    const wait0 = runQueueWait !== undefined ? runQueueWait() : 0;
    const result = accept.call(this, arg);
    const ms = performance.now() - t;
    const cpuMs = runQueueWait !== undefined ? Math.max(0, ms - (runQueueWait() - wait0) / 1e6) : undefined;
    const record = { t, ms, cpuMs, hsMs: 0, hsCpuMs: 0, i: acceptCount++ };
    accepts.push(record);
    timeHandshake(socketOf(arg), record);
    return result;
  };
}

/**
 * The other half of an accept: the synchronous handling of the socket's first 'data' event if it
 * arrives while clients are still connecting. For a peer with a handshake (this library) that is
 * the HELLO, answered with a WELCOME: a client is not connected before it, so it is part of the
 * accept. Peers without a handshake receive nothing until the first ask (after the connect phase),
 * so nothing is added for them.
 */
function timeHandshake(socket, accept) {
  const emit = socket.emit;
  socket.emit = function timedEmit(event, ...args) {
    if (event !== 'data') return emit.call(this, event, ...args);
    socket.emit = emit; // once
    if (!connecting) return emit.call(this, event, ...args);
    const t = performance.now();
    const wait0 = runQueueWait !== undefined ? runQueueWait() : 0;
    const result = emit.call(this, event, ...args);
    const ms = performance.now() - t;
    accept.hsMs = ms;
    accept.hsCpuMs = runQueueWait !== undefined ? Math.max(0, ms - (runQueueWait() - wait0) / 1e6) : 0;
    return result;
  };
}

/** GC pauses (S4 only, between baseline and measure), to tell a slow accept from a collection inside it. */
let gcObserver;
function watchGc(on) {
  if (on && gcObserver === undefined) {
    gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcs.push({ t: e.startTime, ms: e.duration });
      if (gcs.length > 100000) gcs.splice(0, 50000);
    });
    gcObserver.observe({ entryTypes: ['gc'] });
  } else if (!on && gcObserver !== undefined) {
    gcObserver.disconnect();
    gcObserver = undefined;
  }
}
function acceptStats() {
  if (accepts.length === 0) return undefined;
  const all = accepts.splice(0);
  const sorted = all.map((a) => a.ms).sort((a, b) => a - b);
  const gcInside = (a) => gcs.filter((g) => g.t < a.t + a.ms && g.t + g.ms > a.t).reduce((sum, g) => sum + g.ms, 0);
  const withRun = runQueueWait !== undefined;
  // An accept's whole cost: the 'connection' listener plus its handshake (see timeHandshake).
  const total = (a) => a.ms + a.hsMs;
  const totalRun = (a) => a.cpuMs + a.hsCpuMs;
  // The accepts that cost the most main-thread time (wall time on a busy machine includes preemption).
  const slowest = [...all]
    .sort((a, b) => (withRun ? totalRun(b) - totalRun(a) : total(b) - total(a)))
    .slice(0, 5)
    .map((a) => ({ ms: a.ms, cpuMs: a.cpuMs, hsMs: a.hsMs, hsCpuMs: a.hsCpuMs, gcMs: gcInside(a), nth: a.i }));
  const withoutGc = all.map((a) => a.ms - gcInside(a)).sort((a, b) => a - b);
  const cpu = withRun ? all.map((a) => a.cpuMs).sort((a, b) => a - b) : [];
  const totals = all.map(total).sort((a, b) => a - b);
  const totalsRun = withRun ? all.map(totalRun).sort((a, b) => a - b) : [];
  const handshakes = all.map((a) => a.hsMs).sort((a, b) => a - b);
  return {
    n: sorted.length,
    maxMs: sorted[sorted.length - 1],
    p99Ms: quantile(sorted, 0.99),
    p50Ms: quantile(sorted, 0.5),
    maxWithoutGcMs: withoutGc[withoutGc.length - 1],
    maxCpuMs: cpu[cpu.length - 1],
    p99CpuMs: quantile(cpu, 0.99),
    // With the handshake.
    withHandshake: {
      maxMs: totals[totals.length - 1],
      p99Ms: quantile(totals, 0.99),
      p50Ms: quantile(totals, 0.5),
      maxRunMs: totalsRun[totalsRun.length - 1],
      p99RunMs: quantile(totalsRun, 0.99),
      p50RunMs: quantile(totalsRun, 0.5),
      handshakeP50Ms: quantile(handshakes, 0.5),
      handshakeMaxMs: handshakes[handshakes.length - 1],
    },
    slowest,
  };
}

process.send({ kind: 'ready' });
