// Shared helpers for the benchmark: statistics, the request/reply of every scenario, sockets, GC.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

export const now = () => performance.now();
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const MiB = 1024 * 1024;

/** The request every scenario sends: `{ type: 'add', a, b }` (S3 adds `data` and its length). */
export function addRequest(i) {
  return { type: 'add', a: i, b: (i * 7919) % 100003 };
}
export function expected(i) {
  return i + ((i * 7919) % 100003);
}

/** The one handler every server runs. A large ask is answered only if its payload arrived whole. */
export function handleAdd(msg) {
  if (msg.data !== undefined) {
    const data = msg.data;
    if (data.byteLength !== msg.len || data[msg.len - 1] !== (msg.len - 1) % 251) return -1;
  }
  return msg.a + msg.b;
}

/** The S3 payload: 1 MiB with a pattern the server spot-checks. */
export function largePayload(bytes = MiB) {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = i % 251;
  return data;
}

export class CheckError extends Error {}
export function check(got, want, what) {
  if (got !== want) throw new CheckError(`${what}: wrong reply ${JSON.stringify(got)}, expected ${want}`);
}

// ── statistics ──────────────────────────────────────────────────────────────────────────────

export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  return quantile(v, 0.5);
}

/** median with spread (min, max) of the repetitions. */
export function summarize(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  return { median: quantile(v, 0.5), min: v[0], max: v[v.length - 1], n: v.length, values };
}

// ── sockets ─────────────────────────────────────────────────────────────────────────────────

let socketCounter = 0;
/** A fresh Unix socket path (well under the 107-byte sun_path limit). */
export function socketPath(tag) {
  const dir = path.join(os.tmpdir(), 'icv-bench');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = path.join(dir, `${tag}-${process.pid}-${socketCounter++}.sock`);
  try {
    fs.unlinkSync(p);
  } catch {
    /* not there */
  }
  return p;
}

// ── memory ──────────────────────────────────────────────────────────────────────────────────

export async function gcMemory() {
  if (typeof globalThis.gc === 'function') {
    for (let i = 0; i < 4; i++) {
      globalThis.gc();
      await sleep(5);
    }
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** Run `task(i)` for i in [0, n) with at most `limit` running at once. */
export async function pool(n, limit, task) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

/** base64 for the JSON peers, which cannot carry bytes. */
export const toBase64 = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('base64');
export const fromBase64 = (s) => {
  const b = Buffer.from(s, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
};
