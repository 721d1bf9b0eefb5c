// Machine, load and version facts recorded with every run.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const rootDir = path.resolve(benchDir, '..');

/**
 * Import a module of the library's build: `dist/<file>` by default; ICV_BENCH_DIST names another
 * build directory (for example a snapshot, so that a rebuild during a long run cannot disturb it).
 */
export function libraryModule(file) {
  const dist = process.env.ICV_BENCH_DIST ? path.resolve(process.env.ICV_BENCH_DIST) : path.join(rootDir, 'dist');
  return import(pathToFileURL(path.join(dist, file)).href);
}

export const PEERS = ['raw', 'library', 'vscode-jsonrpc', 'node-ipc', 'node-ipc-9', 'zeromq', 'grpc'];

export function packageVersion(pkg) {
  for (const dir of [path.join(benchDir, 'node_modules'), path.join(rootDir, 'node_modules')]) {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, pkg, 'package.json'), 'utf8')).version;
    } catch {
      /* try the next */
    }
  }
  return undefined;
}

/** Which peers load here (a peer whose package is not installed is skipped, not fatal). */
export async function availablePeers(names = PEERS) {
  const out = [];
  for (const name of names) {
    try {
      const mod = await import(`../peers/${name}.mjs`);
      out.push({
        id: name,
        name: mod.name,
        label: mod.label,
        versions: Object.fromEntries(mod.packages.map((p) => [p, packageVersion(p)])),
        available: true,
      });
    } catch (error) {
      out.push({ id: name, name, available: false, error: String(error?.message ?? error).split('\n')[0] });
    }
  }
  return out;
}

/** CPU busy share over `ms`, from /proc/stat (Linux): what else is running on the box. */
export async function cpuBusy(ms = 1000) {
  const read = () => {
    try {
      const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
      const idle = line[3] + (line[4] ?? 0);
      const steal = line[7] ?? 0;
      const total = line.reduce((a, b) => a + b, 0);
      return { idle, total, steal };
    } catch {
      return undefined;
    }
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  if (!a || !b || b.total === a.total) return undefined;
  return { busy: 1 - (b.idle - a.idle) / (b.total - a.total), steal: (b.steal - a.steal) / (b.total - a.total) };
}

export function machine() {
  const cpus = os.cpus();
  let commit;
  let dirty;
  try {
    commit = execFileSync('git', ['-C', rootDir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    dirty = execFileSync('git', ['-C', rootDir, 'status', '--porcelain', '--', 'src', 'machines'], { encoding: 'utf8' }).trim() !== '';
  } catch {
    /* not a git checkout */
  }
  let library;
  try {
    library = JSON.parse(fs.readFileSync(path.join(rootDir, 'package.json'), 'utf8')).version;
  } catch {
    /* unknown */
  }
  let nofileHard;
  try {
    nofileHard = execFileSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  } catch {
    /* unknown */
  }
  return {
    date: new Date().toISOString(),
    hostname: os.hostname(),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    v8: process.versions.v8,
    library,
    commit,
    sourceDirty: dirty,
    xstate: packageVersion('xstate'),
    libraryMsgpackr: packageVersion('msgpackr'),
    nofileHard,
  };
}
