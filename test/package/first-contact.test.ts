/**
 * First contact: the packed tarball installed into a fresh project works the first time, the
 * ways a new user tries it — ESM import, CommonJS require(), TypeScript compiled to ESM and to
 * CommonJS, the README's code as pasted, the CLI from node_modules/.bin. Needs `npm run build`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, packAndInstall, repoRoot, run, startUntil, tsc, type Packed } from './packed.js';
import { readmeBlocks, writeReadmeProject } from './readme.js';

let packed: Packed;
beforeAll(async () => {
  packed = await packAndInstall();
}, 180_000);
afterAll(() => packed?.dispose());

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as Record<string, any>;

/** One round trip over a real socket, and the machines subpath; prints what it saw as JSON. */
const ROUND_TRIP = `
const name = ic.generateSocketName();
const server = await ic.listen(name, { handlers: { add: ({ a, b }) => a + b } });
const connection = await ic.connect(name);
const sum = await connection.ask({ type: 'add', a: 2, b: 3 });
await connection.close();
await server.close();
console.log(JSON.stringify({ sum, machine: typeof machines.connectionMachine, error: new ic.ConverseError('TIMEOUT', 'x') instanceof Error }));
`;
const EXPECTED = { sum: 5, machine: 'object', error: true };

function write(file: string, text: string): string {
  const full = path.join(packed.project, file);
  fs.mkdirSync(path.dirname(full), { recursive: true });
  fs.writeFileSync(full, text);
  return full;
}

async function runNode(file: string): Promise<unknown> {
  const result = await run(process.execPath, [file], { cwd: path.dirname(file) });
  expect(result, result.stderr).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!);
}

describe('the packed tarball', () => {
  it('holds the built library, its types and addon, and no source maps or screenshots', () => {
    const files = packed.files;
    for (const needed of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli.js', 'dist/machines/index.js', 'prebuilds/linux-x64/peercred.node', 'README.md', 'LICENSE-MIT', 'LICENSE-APACHE', 'CHANGELOG.md']) {
      expect(files).toContain(needed);
    }
    // Maps would point at src/*.ts, which is not shipped.
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => /\.(png|jpe?g|gif)$/.test(f))).toEqual([]);
    expect(files.filter((f) => /^(test|bench|examples|src)\//.test(f))).toEqual([]);
  });

  it('links only to files it ships, or to the repository; says where the repository is', () => {
    expect(pkg.repository?.url).toMatch(/^git\+https:\/\/github\.com\/.+\.git$/);
    expect(pkg.homepage).toMatch(/^https:\/\//);
    expect(pkg.bugs?.url).toMatch(/^https:\/\//);
    const repo = (pkg.repository.url as string).replace(/^git\+/, '').replace(/\.git$/, '');
    const markdown = packed.files.filter((f) => f.endsWith('.md'));
    const broken: string[] = [];
    for (const file of markdown) {
      const text = fs.readFileSync(path.join(packed.project, 'node_modules/interprocess-converse', file), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (target!.startsWith('#') || target!.startsWith('mailto:')) continue;
        if (/^https?:\/\//.test(target!)) {
          // Links into the project's own repository must use its real address.
          if (/github\.com\/[^/]+\/interprocess-converse|raw\.githubusercontent\.com/.test(target!) && !target!.includes(repo.replace('https://github.com/', ''))) broken.push(`${file}: ${target}`);
          continue;
        }
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(file), target!.split('#')[0]!));
        if (!packed.files.includes(resolved)) broken.push(`${file}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('imports as ESM', async () => {
    const file = write('esm/main.mjs', `import * as ic from 'interprocess-converse';\nimport * as machines from 'interprocess-converse/machines';\n${ROUND_TRIP}`);
    expect(await runNode(file)).toEqual(EXPECTED);
  });

  // The NATS client is an optional peer dependency: npm does not install it, so this project,
  // like a new user's, has none. nats:// must then fail with a ConverseError that says what to
  // install, from listen() and from connect(), and nothing else may need the package.
  it('nats:// without the optional @nats-io/transport-node fails with MISSING_DEPENDENCY saying what to install', async () => {
    expect(fs.existsSync(path.join(packed.project, 'node_modules/@nats-io/transport-node'))).toBe(false);
    const file = write(
      'no-nats/main.mjs',
      `import * as ic from 'interprocess-converse';
const outcome = async (promise) => promise.then(() => ({ ok: true }), (e) => ({ ok: false, converse: e instanceof ic.ConverseError, code: e.code, message: e.message }));
const listened = await outcome(ic.listen('nats://127.0.0.1:4222/calc'));
const connected = await outcome(ic.connect('nats://127.0.0.1:4222/calc', { connectTimeout: 2000 }));
// Local sockets are untouched by the missing package.
const name = ic.generateSocketName();
const server = await ic.listen(name, { handlers: { add: ({ a, b }) => a + b } });
const client = await ic.connect(name);
const sum = await client.ask({ type: 'add', a: 2, b: 3 });
await client.close();
await server.close();
console.log(JSON.stringify({ listened, connected, sum }));
`,
    );
    const seen = (await runNode(file)) as Record<string, { ok: boolean; converse: boolean; code: string; message: string }> & { sum: number };
    for (const outcome of [seen.listened, seen.connected]) {
      expect(outcome).toMatchObject({ ok: false, converse: true, code: 'MISSING_DEPENDENCY' });
      expect(outcome.message).toContain('npm install @nats-io/transport-node');
    }
    expect(seen.sum).toBe(5);
  });

  it('loads with CommonJS require() (Node >= 20.19), the same exports as import', async () => {
    const file = write(
      'cjs/main.cjs',
      `const ic = require('interprocess-converse');\nconst machines = require('interprocess-converse/machines');\n` +
        `(async () => {\n${ROUND_TRIP}\n})().catch((e) => { console.error(e); process.exit(1); });\n` +
        `import('interprocess-converse').then((esm) => { if (Object.keys(esm).sort().join() !== Object.keys(ic).filter((k) => k !== '__esModule' && k !== 'module.exports').sort().join()) { console.error('exports differ'); process.exit(1); } });\n`,
    );
    expect(await runNode(file)).toEqual(EXPECTED);
  });

  const TS_PROGRAM = `import * as ic from 'interprocess-converse';
import * as machines from 'interprocess-converse/machines';
type Api = { add(e: { a: number; b: number }): number };
async function main(): Promise<void> {
  const name: string = ic.generateSocketName();
  const server = await ic.listen<Api>(name, { handlers: { add: ({ a, b }) => a + b } });
  const connection = await ic.connect<Api>(name);
  const sum: number = await connection.ask({ type: 'add', a: 2, b: 3 });
  await connection.close();
  await server.close();
  console.log(JSON.stringify({ sum, machine: typeof machines.connectionMachine, error: new ic.ConverseError('TIMEOUT', 'x') instanceof Error }));
}
void main();
`;

  const variants = [
    { dir: 'ts-esm', type: 'module', module: 'nodenext', moduleResolution: 'nodenext' },
    { dir: 'ts-cjs-nodenext', type: 'commonjs', module: 'nodenext', moduleResolution: 'nodenext' },
    { dir: 'ts-cjs-commonjs', type: 'commonjs', module: 'commonjs', moduleResolution: 'node10' },
  ];
  for (const v of variants) {
    it(`compiles from TypeScript (module ${v.module}, ${v.type} output) under strict, and runs`, { timeout: 120_000 }, async () => {
      write(`${v.dir}/package.json`, JSON.stringify({ type: v.type }));
      write(
        `${v.dir}/tsconfig.json`,
        JSON.stringify({ compilerOptions: { module: v.module, moduleResolution: v.moduleResolution, target: 'es2022', strict: true, skipLibCheck: true, outDir: 'out' }, files: ['main.ts'] }),
      );
      write(`${v.dir}/main.ts`, TS_PROGRAM);
      const compiled = await tsc(path.join(packed.project, v.dir));
      expect(compiled.code, compiled.stdout + compiled.stderr).toBe(0);
      const out = fs.readFileSync(path.join(packed.project, v.dir, 'out/main.js'), 'utf8');
      expect(out.includes('require(')).toBe(v.type === 'commonjs');
      expect(await runNode(path.join(packed.project, v.dir, 'out/main.js'))).toEqual(EXPECTED);
    });
  }

  it('runs its CLI from node_modules/.bin', async () => {
    const result = await run(path.join(packed.project, 'node_modules/.bin/interprocess-converse'), ['--version'], { cwd: packed.project });
    expect(result).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });
});

describe('the README', () => {
  it('starts with the install line, and keeps its Quick start for contributors', () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const blocks = readmeBlocks(readme);
    expect(blocks[0]!.code.trim()).toBe('npm install interprocess-converse');
    expect(readme).toContain('npm install && npm run demo');
    expect(readme).toContain('npm pkg set type=module');
  });

  /** All the README's TypeScript, compiled once with the README's own tsconfig (plus the snippets). */
  let built: Promise<{ dir: string; files: string[] }> | undefined;
  const buildReadme = (): Promise<{ dir: string; files: string[] }> =>
    (built ??= (async () => {
      const dir = path.join(packed.project, 'readme');
      const { files, tsconfig } = writeReadmeProject(dir);
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), tsconfig);
      const compiled = await tsc(dir);
      expect(compiled.code, compiled.stdout + compiled.stderr).toBe(0);
      return { dir, files };
    })());

  it('type-checks every TypeScript block under strict against the installed package', { timeout: 120_000 }, async () => {
    const { files } = await buildReadme();
    expect(files).toEqual(expect.arrayContaining(['protocol.ts', 'daemon.ts', 'client.ts']));
    expect(files.length).toBeGreaterThan(6);
    const tsconfig = readmeBlocks().find((b) => b.file === 'tsconfig.json')!.code;
    expect(tsconfig).toMatch(/"strict": true/);
  });

  it('runs the first program as pasted: the daemon, then the client', { timeout: 120_000 }, async () => {
    const { dir } = await buildReadme();
    const socketDir = fs.mkdtempSync(path.join(packed.project, 's-'));
    const env = cleanEnv({ ADDER_SOCKET: path.join(socketDir, 'adder.sock') });
    const daemon = await startUntil(process.execPath, ['dist/daemon.js'], { cwd: dir, env, ready: /listening on .*adder\.sock\n/ });
    try {
      const client = await run(process.execPath, ['dist/client.js'], { cwd: dir, env });
      expect(client, client.stderr).toMatchObject({ code: 0, stderr: '' });
      expect(client.stdout).toContain('1 + 2 = 3\n');
      expect(client.stdout).toMatch(/status \{ uptime: \d+, clients: 1 \}/);
      await expect.poll(() => daemon.output(), { timeout: 10_000 }).toMatch(/\[pid \d+\] hello\n/);
      const exited = new Promise<number | null>((resolve) => daemon.child.once('exit', resolve));
      daemon.child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(fs.existsSync(path.join(socketDir, 'adder.sock'))).toBe(false);
    } finally {
      daemon.child.kill('SIGKILL');
    }
  });
});
