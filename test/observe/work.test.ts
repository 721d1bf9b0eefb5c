/**
 * Work in flight: a long-running handler shows with its type and age (in `connection.work()`,
 * introspection and `interprocess-converse info`), the asker's side shows the ask with its age and
 * timeout, and a cancelled ask whose handler goes on shows as cancelled.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, introspect, listen } from '../../src/index.js';
import { cleanup, onCleanup, sleep, socketName, waitUntil } from '../helpers/cleanup.js';

afterEach(cleanup);

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

type Api = { slow(e: { ms: number }): string; stubborn(e: { ms: number }): string };

describe('work in flight', () => {
  it('a long-running handler shows with its age; the asker shows its ask with age and timeout; a cancel shows', async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does).`);
    const name = socketName();
    const timers = new Set<NodeJS.Timeout>();
    onCleanup(() => timers.forEach(clearTimeout));
    const wait = (ms: number, signal?: AbortSignal): Promise<string> =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve('done'), ms);
        timers.add(timer);
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve('aborted');
        });
      });
    const server = await listen<Api, {}>(name, {
      handlers: { slow: ({ ms }, ctx) => wait(ms, ctx.signal), stubborn: ({ ms }) => wait(ms) },
      introspection: true,
    });
    onCleanup(() => server.close({ timeout: 500 }));
    const client = await connect<Api, {}>(name);
    onCleanup(() => client.close({ timeout: 500 }));

    const slow = client.ask({ type: 'slow', ms: 60_000 }, { timeout: 90_000 });
    slow.catch(() => undefined); // it is still running when the test closes the connection
    const controller = new AbortController();
    const stubborn = client.ask({ type: 'stubborn', ms: 60_000 }, { signal: controller.signal }).catch((error: unknown) => error);
    const serverSide = () => [...server.connections.values()].find((c) => c.id !== undefined)!;
    await waitUntil(() => serverSide()?.work().handling.length === 2, 'both handlers run', 10000);
    await sleep(300);
    controller.abort();
    await waitUntil(() => serverSide().work().handling.some((h) => h.cancelled), 'the cancel arrived', 10000);

    const work = serverSide().work();
    expect(work.handling.map(({ id, type, cancelled }) => ({ id, type, cancelled }))).toEqual([
      { id: 0, type: 'slow', cancelled: false },
      { id: 1, type: 'stubborn', cancelled: true },
    ]);
    expect(work.handling[0]!.ageMs).toBeGreaterThanOrEqual(250);
    expect(work.reading).toEqual({ paused: false, reasons: [] });
    expect(work.asking).toEqual([]);

    const asking = client.work().asking;
    expect(asking).toHaveLength(1);
    expect(asking[0]).toMatchObject({ id: 0, type: 'slow', timeoutMs: 90_000 });
    expect(asking[0]!.ageMs).toBeGreaterThanOrEqual(250);
    expect((await stubborn as { code?: string }).code).toBe('ABORTED');

    // Over introspection (what info, monitor and the dashboard read) …
    const inspector = await connect(name);
    onCleanup(() => inspector.close({ timeout: 500 }));
    const listed = await introspect(inspector).connections();
    const described = listed.find((c) => c.id === serverSide().id)!;
    expect(described.work?.handling.map((h) => h.type)).toEqual(['slow', 'stubborn']);

    // … and from the shell.
    // (Not spawnSync: the daemon runs in this process and must keep answering.)
    const info = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, 'info', name, '--timeout', '20000'], { encoding: 'utf8', timeout: 30000 }, (error, stdout, stderr) =>
        resolve({ status: error === null ? 0 : ((error as { code?: number }).code ?? null), stdout, stderr }),
      );
    });
    expect(info.stderr).toBe('');
    expect(info.status).toBe(0);
    expect(info.stdout).toMatch(new RegExp(`work in flight:\\n(.*\\n)*  ${serverSide().id}  handling #0 slow for \\d+(\\.\\d)? m?s · handling #1 stubborn for [^·]* \\(asker cancelled\\)`));

  });
});
