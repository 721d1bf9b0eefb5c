import { execFile } from 'node:child_process';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, onCleanup, socketName } from '../helpers/cleanup.js';
import { fixturePath, startFixture } from '../helpers/fixture.js';

/*
 * The conformance kit (docs/CONFORMANCE.md), run the way an implementer runs it: the CLI in dist/
 * against a real process over a real socket. It passes against this library in both roles, and it
 * fails against an implementation that breaks a rule.
 */

afterEach(cleanup);

const cli = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

interface Report {
  role: string;
  results: Array<{ id: string; section: string; title: string; ok: boolean; reason?: string }>;
  passed: number;
  failed: number;
}

function runKit(args: string[]): Promise<{ code: number; report: Report; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [cli, 'conformance', args[0]!, '--json', ...args.slice(1)], { timeout: 170_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      try {
        resolve({ code, report: JSON.parse(stdout) as Report, stderr });
      } catch {
        reject(new Error(`the kit printed no report (exit ${code}): ${stdout}\n${stderr}`));
      }
    });
    onCleanup(() => child.kill('SIGKILL'));
  });
}

const failures = (report: Report): string[] => report.results.filter((r) => !r.ok).map((r) => `${r.id} §${r.section} ${r.title}: ${r.reason}`);

const failedIds = (report: Report): string[] => report.results.filter((r) => !r.ok).map((r) => r.id);

describe('conformance kit against this library', () => {
  it('server role: every case passes against the reference server', async () => {
    const name = socketName();
    await startFixture('conformance-server', [name]);
    const { code, report } = await runKit(['server', name]);
    expect(failedIds(report), failures(report).join('\n')).toEqual([]);
    expect(report.results.length).toBeGreaterThanOrEqual(30);
    expect(code).toBe(0);
  }, 180_000);

  it('client role: every case passes against the reference client', async () => {
    const { code, report } = await runKit(['client', '--', process.execPath, fixturePath('conformance-client')]);
    expect(failedIds(report), failures(report).join('\n')).toEqual([]);
    expect(report.results.length).toBeGreaterThanOrEqual(21);
    expect(code).toBe(0);
  }, 180_000);
});

describe('conformance kit against broken implementations', () => {
  it('a server that answers with the wrong id fails §6.3, and the kit exits 1', async () => {
    const name = socketName();
    const server = net.createServer((socket) => {
      let buffered = Buffer.alloc(0);
      let welcomed = false;
      socket.on('error', () => {});
      socket.on('data', (chunk) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (!welcomed && buffered.length >= 14) {
          welcomed = true;
          buffered = buffered.subarray(14);
          socket.write(Buffer.from('8949435600010200001000000000', 'hex'));
        }
        // Answer any ASK [1, id, …] (small ids) with REPLY [2, id + 1, nil].
        while (welcomed && buffered.length > 0 && buffered.length >= 1 + buffered[0]!) {
          const body = buffered.subarray(1, 1 + buffered[0]!);
          buffered = buffered.subarray(1 + buffered[0]!);
          if (body[0] === 0x93 && body[1] === 0x01 && body[2]! < 0x7f) socket.write(Buffer.of(4, 0x93, 0x02, body[2]! + 1, 0xc0));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(name, resolve));
    onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { code, report } = await runKit(['server', name, '--case', 'S9', '--timeout', '1000']);
    expect(code).toBe(1);
    expect(report.results).toHaveLength(1);
    expect(report.results[0]).toMatchObject({ id: 'S9', section: '6.3', ok: false });
    expect(report.results[0]!.reason).toMatch(/REPLY 0/);
  }, 60_000);

  it('a client that never connects fails, with its output in the report', async () => {
    const { code, report } = await runKit(['client', '--case', 'C1', '--timeout', '500', '--', process.execPath, '-e', 'console.log("not connecting:", process.env.CONVERSE_SOCKET ? "have socket" : "no socket"); setTimeout(() => {}, 3000)']);
    expect(code).toBe(1);
    expect(report.results[0]!.reason).toMatch(/did not connect[\s\S]*not connecting: have socket/);
  }, 60_000);

  it('bad usage exits 2 with the help text', async () => {
    const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [cli, 'conformance', 'server'], (error, _stdout, stderr) => resolve({ code: typeof error?.code === 'number' ? error.code : 0, stderr }));
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/missing the socket name[\s\S]*conformance server <socket>/);
  });
});
