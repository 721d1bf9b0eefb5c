/**
 * The README's first command: `npm run demo` runs a daemon and three clients as separate
 * processes. This runs the built demo and checks the conversation it prints.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const demoPath = fileURLToPath(new URL('../dist/examples/demo.js', import.meta.url));

function runDemo(): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [demoPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}

describe('npm run demo', () => {
  it('runs a daemon and three clients that talk, and exits 0', async () => {
    const { code, signal, stdout, stderr, ms } = await runDemo();
    const lines = stdout.trim().split('\n');
    expect({ code, signal }, stdout + stderr).toEqual({ code: 0, signal: null });
    expect(ms).toBeLessThan(20_000);
    expect(stderr).toBe('');
    expect(lines.at(-1)).toMatch(/^\[demo\] OK: 3 clients and the daemon finished cleanly in [\d.]+ s$/);
    expect(stdout).not.toMatch(/FAILED| stderr\]/);

    const daemonPid = /\[demo\] daemon pid (\d+) is ready/.exec(stdout)?.[1];
    expect(daemonPid).toBeDefined();
    for (let n = 1; n <= 3; n++) {
      const pids = new Set([...stdout.matchAll(new RegExp(`^\\[client ${n} (\\d+)\\]`, 'gm'))].map((m) => m[1]));
      expect(pids.size, `one pid for client ${n}`).toBe(1);
      const pid = [...pids][0]!;
      const mine = lines.filter((l) => l.startsWith(`[client ${n} ${pid}]`)).join('\n');
      // Replies, server-to-client asks (confirm), and a graceful close.
      expect(mine).toContain(`add(${n}, 10) = ${n + 10}, add(${n * 100}, 1) = ${n * 100 + 1}`);
      expect(mine).toContain('daemon asks: Subscribe to "news"? -> yes');
      expect(mine).toContain('subscribe("news") -> true');
      expect(mine).toContain('daemon asks: Subscribe to "spam"? -> no');
      expect(mine).toContain('subscribe("spam") -> false');
      expect(mine).toContain('closed; bye');
      // Broadcasts reach the clients.
      expect(mine).toMatch(/notified: /);
      if (process.platform === 'linux') {
        // Peer credentials across real processes, from the kernel.
        expect(mine).toContain(`connected to daemon pid ${daemonPid}`);
        expect(stdout).toContain(`[daemon] pid ${pid} connected`);
      }
    }
    expect(stdout.match(/\[daemon\] pid \d+ disconnected cleanly/g)).toHaveLength(3);
    expect(stdout).not.toContain('disconnected with');
    expect(stdout).toMatch(/\[daemon\] SIGTERM: closing[\s\S]*\[daemon\] closed; socket file removed; bye/);

    const socketPath = /\[demo\] socket: (.*)/.exec(stdout)?.[1];
    expect(socketPath).toBeDefined();
    expect(fs.existsSync(socketPath!)).toBe(false);
  }, 30_000);
});
