/**
 * The benchmark still works: `bench/run.mjs --quick` (seconds, tiny counts) for the raw baseline
 * and this library, whose peers need nothing beyond the library's own dependencies. Every reply
 * is checked by the bench itself; no timing is asserted here (speed is measured in bench/, never
 * in tests).
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from './helpers/cleanup.js';
import { runNode } from './helpers/node-process.js';

afterEach(cleanup);

const runPath = fileURLToPath(new URL('../bench/run.mjs', import.meta.url));
const transportsPath = fileURLToPath(new URL('../bench/transports.mjs', import.meta.url));

describe('bench --quick', () => {
  it('runs every scenario for the raw baseline and this library, with every reply checked', async () => {
    const { code, stdout, stderr } = await runNode(runPath, ['--quick', '--peers', 'raw,library']);
    expect(code, stdout + stderr).toBe(0);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { ok: boolean; rr: Record<string, number> };
    expect(summary.ok).toBe(true);
    expect(summary.rr.raw).toBe(1);
    expect(summary.rr.library).toBe(1);
  }, 120_000);

  it('bench/transports.mjs --quick: S1/S2 over tcp:// and nats:// (its own nats-server), raw TCP and NATS request/reply, every reply checked', async () => {
    const { code, stdout, stderr } = await runNode(transportsPath, ['--quick']);
    expect(code, stdout + stderr).toBe(0);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { ok: boolean; reps: Record<string, number> };
    expect(summary).toMatchObject({ ok: true, reps: { 'raw@tcp': 1, 'library@tcp': 1, 'nats-request': 1, 'library@nats': 1 } });
  }, 120_000);
});
