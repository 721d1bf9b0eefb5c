/**
 * The message trace: a short dialogue traced on both sides matches the expected lines; field
 * values appear only at `verbose`, after `redact`; peer strings are neutralised on the terminal.
 */
import { spawn } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, listen } from '../../src/index.js';
import { formatTraceRecord, type TraceRecord } from '../../src/trace.js';
import { encodeFrame } from '../../src/wire/codec.js';
import { cleanup, onCleanup, socketName, waitUntil } from '../helpers/cleanup.js';

afterEach(cleanup);

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

type ServerApi = { login(e: { user: string; password: string }): boolean; add(e: { a: number; b: number }): number; log(e: { line: string }): void };

/** A line without what changes from run to run: the time, the connection id and the round-trip time. */
function stable(record: TraceRecord): string {
  return formatTraceRecord(record)
    .replace(/^\d\d:\d\d:\d\d\.\d{3} \S+ /, '')
    .replace(/ \d+\.\d\d ms/, ' <t> ms');
}

/** A frame body's size as the codec encodes it (the frame less its 1-byte length prefix). */
function size(envelope: unknown[]): number {
  return encodeFrame(envelope, false, 1 << 20).length - 1;
}

describe('message trace', () => {
  it('traces a short dialogue on both sides, fields only at verbose and redacted', async () => {
    const name = socketName();
    const serverRecords: TraceRecord[] = [];
    const server = await listen<ServerApi, {}>(name, {
      handlers: { login: ({ password }) => password === 'hunter2', add: ({ a, b }) => a + b, log: () => {} },
      trace: {
        level: 'verbose',
        log: (record) => serverRecords.push(record),
        redact: ({ type, fields }) => (type === 'login' && typeof fields === 'object' && fields !== null ? { ...fields, password: '***' } : fields),
      },
    });
    onCleanup(() => server.close({ timeout: 1000 }));
    const clientRecords: TraceRecord[] = [];
    const client = await connect<ServerApi, {}>(name, { trace: { level: 'messages', log: (record) => clientRecords.push(record) } });
    onCleanup(() => client.close({ timeout: 1000 }));

    expect(await client.ask({ type: 'login', user: 'ann', password: 'hunter2' })).toBe(true);
    expect(await client.ask({ type: 'add', a: 2, b: 3 })).toBe(5);
    await client.tell({ type: 'log', line: 'done' });
    await waitUntil(() => serverRecords.length >= 5, 'the server traced the tell', 10000);

    const login = size([1, 0, { type: 'login', user: 'ann', password: 'hunter2' }]);
    const add = size([1, 1, { type: 'add', a: 2, b: 3 }]);
    const log = size([0, { type: 'log', line: 'done' }]);
    expect(serverRecords.map(stable)).toEqual([
      `← ASK #0 login ${login} B {"user":"ann","password":"***"}`,
      `→ REPLY #0 login 4 B <t> ms true`,
      `← ASK #1 add ${add} B {"a":2,"b":3}`,
      `→ REPLY #1 add 4 B <t> ms 5`,
      `← TELL log ${log} B {"line":"done"}`,
    ]);
    expect(clientRecords.map(stable)).toEqual([
      `→ ASK #0 login ${login} B`,
      `← REPLY #0 login 4 B <t> ms`,
      `→ ASK #1 add ${add} B`,
      `← REPLY #1 add 4 B <t> ms`,
      `→ TELL log ${log} B`,
    ]);
    for (const record of [...serverRecords, ...clientRecords]) {
      expect(record.connection).toBe(record === clientRecords[0] || clientRecords.includes(record) ? client.id : [...server.connections.values()][0]!.id);
    }
    expect(serverRecords[1]!.elapsed).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(serverRecords)).not.toContain('hunter2');
  });

  it('publishes on the message channel, and neutralises control characters a peer put in a type', async () => {
    const name = socketName();
    const server = await listen<Record<string, (e: object) => void>, {}>(name, { handlers: {}, trace: { level: 'verbose', log: () => {} } });
    onCleanup(() => server.close({ timeout: 1000 }));
    const published: TraceRecord[] = [];
    const onMessage = (message: unknown): void => void published.push((message as { record: TraceRecord }).record);
    diagnosticsChannel.subscribe('interprocess-converse:message', onMessage);
    onCleanup(() => diagnosticsChannel.unsubscribe('interprocess-converse:message', onMessage));
    const client = await connect<Record<string, (e: object) => void>, {}>(name);
    onCleanup(() => client.close({ timeout: 1000 }));
    await client.tell({ type: '\u001b]0;owned\u0007x', secret: '\u001b[2J' } as never);
    await waitUntil(() => published.some((r) => r.dir === 'in'), 'the tell was traced', 10000);
    const line = formatTraceRecord(published.find((r) => r.dir === 'in')!);
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(line).toContain('\\u001b]0;owned\\u0007x');
  });

  it('an untraced connection has no tracer', async () => {
    const name = socketName();
    const server = await listen<ServerApi, {}>(name, { handlers: { login: () => true, add: ({ a, b }) => a + b, log: () => {} } });
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect<ServerApi, {}>(name, { trace: 'off' });
    onCleanup(() => client.close({ timeout: 1000 }));
    expect(client.core.recorder.tracer).toBeUndefined();
    await expect(connect<ServerApi, {}>(name, { trace: 'loud' as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('monitor --messages shows every message of the other connections, and stops tracing when it leaves', async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does).`);
    const name = socketName();
    const server = await listen<ServerApi, {}>(name, { handlers: { login: () => true, add: ({ a, b }) => a + b, log: () => {} }, introspection: true });
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect<ServerApi, {}>(name);
    onCleanup(() => client.close({ timeout: 1000 }));
    const monitor = spawn(process.execPath, [CLI, 'monitor', name, '--messages'], { stdio: ['ignore', 'pipe', 'pipe'] });
    onCleanup(() => void monitor.kill('SIGKILL'));
    let out = '';
    let err = '';
    monitor.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    monitor.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const exited = new Promise<number | null>((resolve) => monitor.once('exit', resolve));
    await waitUntil(() => /Ctrl-C to stop/.test(err), 'the monitor is watching', 20000);
    const serverSide = [...server.connections.values()].find((c) => c.id !== undefined && c.core.recorder.tracer !== undefined)!;
    expect(serverSide).toBeDefined();

    expect(await client.ask({ type: 'add', a: 2, b: 3 })).toBe(5);
    await client.tell({ type: 'log', line: 'secret stays unseen' });
    await waitUntil(() => out.includes('TELL log'), 'the monitor printed the tell', 20000);
    const lines = out.split('\n').filter((line) => / [←→] /.test(line)).map((line) => line.replace(/^\d\d:\d\d:\d\d\.\d{3} /, '').replace(/ \d+\.\d\d ms/, ' <t> ms'));
    const id = serverSide.id.slice(0, 8);
    expect(lines).toEqual([
      `${id} ← ASK #0 add ${size([1, 0, { type: 'add', a: 2, b: 3 }])} B`,
      `${id} → REPLY #0 add 4 B <t> ms`,
      `${id} ← TELL log ${size([0, { type: 'log', line: 'secret stays unseen' }])} B`,
    ]);
    expect(out).not.toContain('secret'); // no field values: the daemon does not trace at verbose

    monitor.kill('SIGINT');
    expect(await exited).toBe(0);
    await waitUntil(() => serverSide.core.recorder.tracer === undefined, 'the tracer is gone with its last watcher', 10000);
  });
});
