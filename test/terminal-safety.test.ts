/**
 * Peer strings never reach a terminal raw: the unit (src/terminal-safe.ts), and the real CLI
 * (`node dist/src/cli.js`) run against a hostile daemon (test/fixtures/hostile-daemon.ts) whose
 * socket path, protocol name and version, message types, error messages and codes, replies and
 * refusal reasons all carry ESC sequences, BEL, CR, LF, C1 controls, DEL and bidi overrides.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { terminalSafe, terminalSafeDeep, terminalSafeOutput } from '../src/terminal-safe.js';
import { cleanup, removeAfterTest, waitUntil } from './helpers/cleanup.js';
import { fixturePath } from './helpers/fixture.js';
import { runNode, startNode, type RunningNode } from './helpers/node-process.js';

afterEach(cleanup);

const CLI = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
/** Anything a terminal would act on; newline and tab are our own layout. */
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe('terminalSafe', () => {
  it('escapes C0 (ESC, BEL, CR, LF, NUL), DEL, C1, line separators and bidi controls as \\uXXXX; leaves other text alone', () => {
    expect(terminalSafe('\u001b]0;title\u0007')).toBe('\\u001b]0;title\\u0007');
    expect(terminalSafe('a\rb\nc\u0000d\td')).toBe('a\\u000db\\u000ac\\u0000d\\u0009d');
    expect(terminalSafe('\u007f\u0080\u009b\u009f')).toBe('\\u007f\\u0080\\u009b\\u009f');
    expect(terminalSafe('\u2028\u2029\u202a\u202e\u2066\u2069')).toBe('\\u2028\\u2029\\u202a\\u202e\\u2066\\u2069');
    expect(terminalSafe('héllo wörld — ok ✓ 日本 🎉')).toBe('héllo wörld — ok ✓ 日本 🎉');
    expect(terminalSafe(42)).toBe('42');
    // Every code point below U+00A0 that is not printable ASCII is escaped.
    for (let c = 0; c < 0xa0; c++) {
      const char = String.fromCharCode(c);
      const printable = c >= 0x20 && c < 0x7f;
      expect(terminalSafe(char) === char, `U+${c.toString(16)}`).toBe(printable);
    }
  });

  it('terminalSafeOutput keeps newlines and tabs; the escapes are valid inside JSON strings', () => {
    expect(terminalSafeOutput('a\n\tb\u001b[2J\r')).toBe('a\n\tb\\u001b[2J\\u000d');
    const json = JSON.stringify({ text: 'x\u007f\u0085\u202e' });
    expect(JSON.parse(terminalSafeOutput(json))).toEqual({ text: 'x\u007f\u0085\u202e' });
  });

  it('terminalSafeDeep escapes every string of plain data, keys included', () => {
    expect(terminalSafeDeep({ '\u001bk': ['\u0007', { v: '\r' }], n: 1, u: undefined })).toEqual({ '\\u001bk': ['\\u0007', { v: '\\u000d' }], n: 1, u: undefined });
  });
});

const cli = (...args: string[]) => runNode(CLI, args);
const start = startNode;

async function hostileDaemon(): Promise<{ name: string; daemon: RunningNode }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ic-hostile-'));
  removeAfterTest(dir);
  const daemon = start(fixturePath('hostile-daemon'), [dir]);
  await waitUntil(() => /^READY /m.test(daemon.stdout()), `the hostile daemon is ready: ${daemon.stderr()}`, 10_000);
  const name = JSON.parse(/^READY (.*)$/m.exec(daemon.stdout())![1]!) as string;
  return { name, daemon };
}

function expectNeutralised(text: string): void {
  expect(text).not.toMatch(RAW_CONTROL);
}

describe('the CLI against a hostile daemon', () => {
  it('call: a remote error’s message and code, and a reply’s keys and values, arrive escaped (text and --json)', async () => {
    const { name } = await hostileDaemon();
    expect(name).toMatch(RAW_CONTROL); // the socket path itself is hostile

    const failed = await cli('call', name, 'fail');
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/^error REMOTE_ERROR \(remote code \\u001b\]0;pwned\\u0007/m);
    expect(failed.stderr).toContain('bad things \\u001b]0;pwned\\u0007\\u001b[2J\\u000d\\u009b31m\\u007f\\u202e\\u000aFORGED');
    expectNeutralised(failed.stderr);
    // The daemon told us a message type we have no handler for: the CLI has none by design
    // (warnUnobservedErrors: false), so nothing about it is printed, hostile or not.
    expect(failed.stderr).not.toContain('A tell was dropped');
    const lines = failed.stderr.trimEnd().split('\n');
    expect(lines.filter((line) => line.startsWith('error '))).toHaveLength(1);
    expect(lines.every((line) => line.startsWith('error ') || line.startsWith('(node:'))).toBe(true); // no forged line

    const failedJson = await cli('call', name, 'fail', '--json');
    expectNeutralised(failedJson.stderr);
    const document = failedJson.stderr.trimEnd().split('\n').find((line) => line.startsWith('{'))!;
    expect(JSON.parse(document).error.remote.message).toContain('\u001b]0;pwned'); // JSON keeps the data, escaped

    for (const args of [['reply'], ['reply', '--json']]) {
      const reply = await cli('call', name, ...args);
      expect(reply.code).toBe(0);
      expectNeutralised(reply.stdout);
      const value = JSON.parse(reply.stdout) as Record<string, unknown>;
      expect(Object.values(value)[0]).toMatch(/^\u001b\]0;pwned\u0007\u001b\[2J\r\u009b31m\u007f\u202e\nFORGED$/);
    }
  });

  it('info and connections: socket path, protocol name and version, message types are escaped; --json stays JSON', async () => {
    const { name } = await hostileDaemon();
    const info = await cli('info', name);
    expect(info.code).toBe(0);
    expectNeutralised(info.stdout + info.stderr);
    expect(info.stdout).toContain('\\u001b]0;pwned\\u0007');
    expect(info.stdout).not.toMatch(/^FORGED/m);

    const infoJson = await cli('info', name, '--json');
    expectNeutralised(infoJson.stdout + infoJson.stderr);
    const parsed = JSON.parse(infoJson.stdout) as { server: { socket: string; protocol: { name: string }; messageTypes: string[] } };
    expect(parsed.server.socket).toBe(name);
    expect(parsed.server.protocol.name).toContain('\u001b]0;pwned');

    const connections = await cli('connections', name);
    expect(connections.code).toBe(0);
    expectNeutralised(connections.stdout + connections.stderr);
  });

  it('monitor: state changes, a refused peer’s error quoting its protocol name, the daemon’s hostile tells — nothing raw', async () => {
    const { name, daemon } = await hostileDaemon();
    const monitor = start(CLI, ['monitor', name]);
    await waitUntil(() => monitor.stderr().includes('Ctrl-C to stop'), `monitor started: ${monitor.stderr()}`, 10_000);
    daemon.child.stdin.write('poke\n');
    await waitUntil(() => /→ closed/.test(monitor.stdout()), `the poked connection closed: ${monitor.stdout()}`, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 300)); // a few hostile tells arrive meanwhile
    monitor.child.kill('SIGINT');
    expect(await monitor.exited).toBe(0);
    expectNeutralised(monitor.stdout() + monitor.stderr());
    expect(monitor.stderr()).toContain('monitoring ');
    expect(monitor.stderr()).toContain('\\u001b]0;pwned'); // the socket path, escaped
    expect(monitor.stdout()).toContain('peer\\u001b[31m\\u0085\\u2028'); // the refused peer's protocol name, escaped
  });
});
