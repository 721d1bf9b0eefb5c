/**
 * The package as a new user gets it: `npm pack` of this checkout (its built dist/), installed with
 * npm into a fresh project in a temp directory. Dependencies come from npm's cache (filled by
 * `npm ci`), falling back to the registry; nothing else is fetched. One install serves every case
 * of a test file.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const tscPath = path.join(repoRoot, 'node_modules/typescript/bin/tsc');

export interface Packed {
  /** The fresh project the tarball was installed into (package.json `"type": "module"`). */
  project: string;
  /** The tarball's file list, without the leading `package/`. */
  files: string[];
  /** Remove the temp directory. */
  dispose(): void;
}

/** The environment for child npm/node runs: without the npm_* variables of an enclosing `npm test`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key)) env[key] = value;
  return { ...env, ...extra };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to its end; never rejects for a non-zero exit (the caller asserts on it). */
export function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env ?? cleanEnv(), timeout: options.timeout ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') return reject(Object.assign(error, { stdout, stderr }));
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
      },
    );
  });
}

/** `node <repo's typescript>/bin/tsc -p <dir>`: the same compiler a user would install. */
export function tsc(dir: string): Promise<RunResult> {
  return run(process.execPath, [tscPath, '-p', dir], { cwd: dir });
}

function installedVersion(name: string): string {
  return (JSON.parse(fs.readFileSync(path.join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Pack dist/ (run `npm run build` first) and install the tarball, @types/node and zod into a fresh project. */
export async function packAndInstall(): Promise<Packed> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ic-packed-'));
  const dispose = (): void => fs.rmSync(root, { recursive: true, force: true });
  try {
    const packed = await run('npm', ['pack', '--json', '--pack-destination', root], { cwd: repoRoot });
    if (packed.code !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
    const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
    const project = path.join(root, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'first-contact', version: '1.0.0', private: true, type: 'module' }));
    const install = await run(
      'npm',
      [
        'install',
        path.join(root, info.filename),
        `@types/node@${installedVersion('@types/node')}`,
        `zod@${installedVersion('zod')}`,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
      ],
      { cwd: project, timeout: 120_000 },
    );
    if (install.code !== 0) throw new Error(`npm install of the tarball failed: ${install.stderr}`);
    return { project, files: info.files.map((f) => f.path), dispose };
  } catch (error) {
    dispose();
    throw error;
  }
}

/** Start a long-running process; resolves once a line of its stdout matches `ready`. */
export function startUntil(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; ready: RegExp; timeout?: number }): Promise<{ child: ChildProcess; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const output = (): string => out;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`not ready within ${options.timeout ?? 20_000} ms: ${out}`));
    }, options.timeout ?? 20_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (options.ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, output });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before it was ready: ${out}`));
    });
  });
}
