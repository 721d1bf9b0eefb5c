/**
 * Connection actors share their hidden classes (src/connection/actor-shape.ts): the built library
 * (dist/, so `npm run build` first) in a child process with V8's natives. Here, not beside the
 * in-process idle-connection tests, because the mutation run has no dist/.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('an idle server connection (built library)', () => {
  it.runIf(process.platform === 'linux')('has actor options of the same hidden class as every other connection (V8 natives, dist/)', async () => {
    const library = new URL('../../dist/src/index.js', import.meta.url).href;
    // Past the first few, V8 gave each spread-made options object a hidden class of its own.
    const script = `
      import { connect, listen, generateSocketName } from ${JSON.stringify(library)};
      const name = generateSocketName();
      const server = await listen(name, { handlers: { add: (e) => e.a + e.b } });
      const clients = [];
      for (let i = 0; i < 40; i++) { const c = await connect(name); await c.ask({ type: 'add', a: i, b: 1 }); clients.push(c); }
      const actors = [...server.connections.values()].map((c) => c.actor);
      const shared = actors.every((a) => %HaveSameMap(a.options, actors[0].options));
      for (const c of clients) c.destroy();
      await server.close({ timeout: 100 });
      console.log(JSON.stringify({ connections: actors.length, shared }));
    `;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--allow-natives-syntax', '--input-type=module', '-e', script],
        { timeout: 60_000, cwd: fileURLToPath(new URL('../..', import.meta.url)) },
        (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
      ),
    );
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({ connections: 40, shared: true });
  });
});
