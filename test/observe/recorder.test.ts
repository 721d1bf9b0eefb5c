/**
 * The flight recorder: a connection that a raw hostile peer (a separate process speaking bytes)
 * breaks with PROTOCOL_ERROR hands its last frames and transitions to `connectionError` as
 * `recording`; the recording survives a file and renders for the terminal.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, listen, loadRecording, renderRecording, saveRecording, type ConverseError, type FlightRecording } from '../../src/index.js';
import { FlightRecorder } from '../../src/connection/recorder.js';
import { encodeFrame } from '../../src/wire/codec.js';
import { cleanup, onCleanup, removeAfterTest, socketName, waitUntil } from '../helpers/cleanup.js';

afterEach(cleanup);

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

type Api = { add(e: { a: number; b: number }): number; hello(e: { name: string }): void };

/**
 * A peer process that completes the handshake by hand, then tells `hello`, asks `add` (id 7),
 * waits for the reply and sends a frame of kind 99, which no version of the protocol has.
 */
const HOSTILE_PEER = `
const net = require('node:net');
const frames = JSON.parse(process.argv[2]).map((hex) => Buffer.from(hex, 'hex'));
const socket = net.connect(process.argv[1]);
socket.on('error', () => {});
socket.write(Buffer.from([0x89, 0x49, 0x43, 0x56, 0, 1, 1, 0, 0, 0x10, 0, 0, 0, 0]));
let seen = 0;
socket.on('data', (chunk) => {
  seen += chunk.length;
  if (seen >= 14 && frames.length === 3) socket.write(Buffer.concat(frames.splice(0, 2)));
  else if (frames.length === 1 && seen > 14) socket.write(frames.shift());
});
socket.on('close', () => process.exit(0));
setTimeout(() => process.exit(1), 20000);
`;

function hostileFrames(): string[] {
  return [
    encodeFrame([0, { type: 'hello', name: 'x' }], false, 1 << 20),
    encodeFrame([1, 7, { type: 'add', a: 1, b: 2 }], false, 1 << 20),
    encodeFrame([99, 1], false, 1 << 20),
  ].map((frame) => frame.toString('hex'));
}

describe('flight recorder', () => {
  it('gives the recording of a connection a hostile peer broke with PROTOCOL_ERROR, and replay renders it', async () => {
    const name = socketName();
    const server = await listen<Api, {}>(name, { handlers: { add: ({ a, b }) => a + b, hello: () => {} } });
    onCleanup(() => server.close({ timeout: 1000 }));
    const failures: ConverseError[] = [];
    server.on('connectionError', (error) => failures.push(error));
    const peer = spawn(process.execPath, ['-e', HOSTILE_PEER, name, JSON.stringify(hostileFrames())], { stdio: 'ignore' });
    onCleanup(() => void peer.kill());
    await waitUntil(() => failures.length > 0, 'the connection failed', 15000);
    const error = failures[0]!;
    expect(error.code).toBe('PROTOCOL_ERROR');
    const recording = error.recording!;
    expect(recording).toBeDefined();
    expect(recording.role).toBe('server');
    expect(recording.reason?.code).toBe('PROTOCOL_ERROR');
    expect(recording.peer?.pid).toBe(peer.pid);
    expect(recording.frames.map((f) => [f.dir, f.kind, f.id, f.type])).toEqual([
      ['in', 'TELL', undefined, 'hello'],
      ['in', 'ASK', 7, 'add'],
      ['out', 'REPLY', 7, 'add'],
      ['in', 'KIND_99', 1, undefined],
    ]);
    expect(recording.transitions.map((t) => t.state)).toEqual(['handshake', 'active', 'closed']);
    for (let i = 1; i < recording.frames.length; i++) expect(recording.frames[i]!.at).toBeGreaterThanOrEqual(recording.frames[i - 1]!.at);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'recording-'));
    removeAfterTest(dir);
    const file = path.join(dir, 'failure.json');
    saveRecording(recording, file);
    const loaded = loadRecording(file);
    expect(loaded).toEqual(JSON.parse(JSON.stringify(recording)));
    const lines = renderRecording(loaded, (text) => text);
    const [tellSize, askSize] = hostileFrames().map((hex) => hex.length / 2 - 1); // body: the frame less its 1-byte length prefix
    expect(lines[0]).toMatch(/^Flight recording of connection \S+ \(server side, peer pid \d+ uid \d+ gid \d+\)/);
    expect(lines[1]).toMatch(/^Closed on PROTOCOL_ERROR: .*unknown frame kind 99/);
    expect(lines.slice(3).map((line) => line.replace(/^ *\+\d+\.\d{3} ms {2}/, ''))).toEqual([
      'state handshake',
      'state active',
      `← TELL hello (${tellSize} B)`,
      `← ASK #7 add (${askSize} B)`,
      '→ REPLY #7 add (4 B)',
      '← KIND_99 #1 (3 B)',
      'state closed',
    ]);

    // The real CLI (built to dist/ by `npm test`) prints the same lines.
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does).`);
    const replay = spawnSync(process.execPath, [CLI, 'replay', file], { encoding: 'utf8', timeout: 20000 });
    expect(replay.stderr).toBe('');
    expect(replay.status).toBe(0);
    expect(replay.stdout).toBe(`${lines.join('\n')}\n`);
  });

  it('replay neutralises what a hostile recording file carries, and refuses what is not a recording', () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does).`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'recording-'));
    removeAfterTest(dir);
    const file = path.join(dir, 'hostile.json');
    const hostile: FlightRecording = {
      format: 'interprocess-converse.recording',
      version: 1,
      connection: 'c\u001b]0;owned\u0007',
      takenAt: Date.now(),
      framesSeen: 1,
      reason: { code: 'PROTOCOL_ERROR', message: 'bad\r\nforged line' },
      frames: [{ at: Date.now(), dir: 'in', kind: 'TELL', type: '\u001b[2Jclear\u009b', size: 3 }],
      transitions: [],
    };
    fs.writeFileSync(file, JSON.stringify(hostile));
    const replay = spawnSync(process.execPath, [CLI, 'replay', file], { encoding: 'utf8', timeout: 20000 });
    expect(replay.status).toBe(0);
    expect(replay.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(replay.stdout).toContain('\\u001b[2Jclear\\u009b');
    expect(replay.stdout.split('\n')[1]).toBe('Closed on PROTOCOL_ERROR: bad\\u000d\\u000aforged line');

    fs.writeFileSync(file, JSON.stringify({ hello: 'world' }));
    const refused = spawnSync(process.execPath, [CLI, 'replay', file], { encoding: 'utf8', timeout: 20000 });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/not a flight recording/);
  });

  it('keeps only the last frames, oldest first, and records a cleanly used connection too', async () => {
    const name = socketName();
    const server = await listen<Api, {}>(name, { handlers: { add: ({ a, b }) => a + b, hello: () => {} } });
    onCleanup(() => server.close({ timeout: 1000 }));
    const client = await connect<Api, {}>(name);
    onCleanup(() => client.close({ timeout: 1000 }));
    for (let i = 0; i < 100; i++) await client.ask({ type: 'add', a: i, b: 1 });
    const recording: FlightRecording = client.recording();
    expect(recording.framesSeen).toBe(200);
    expect(recording.frames).toHaveLength(64);
    const last = recording.frames.at(-1)!;
    expect(last).toMatchObject({ dir: 'in', kind: 'REPLY', type: 'add' });
    expect(recording.frames.at(-2)).toMatchObject({ dir: 'out', kind: 'ASK', id: last.id, type: 'add' });
    expect(recording.reason).toBeUndefined();
  });

  it('grows its ring as frames come (from 2 up to its capacity) and keeps them in order across each growth', () => {
    type Internals = { ringLength: number };
    const fresh = new FlightRecorder(20);
    expect((fresh as unknown as Internals).ringLength).toBe(0); // nothing held before the first frame
    for (const total of [1, 2, 3, 4, 5, 8, 9, 16, 17, 20, 21, 47]) {
      const recorder = new FlightRecorder(20);
      for (let i = 0; i < total; i++) {
        const frame = encodeFrame([2, 0xfffffff0 + (i % 15), i], false, 1 << 20);
        recorder.frameOut(frame, 0, frame.length, false, `t${i}`, performance.now());
      }
      const { frames, framesSeen } = recorder.recording();
      expect(framesSeen).toBe(total);
      const kept = Math.min(total, 20);
      expect(frames.map((f) => f.type)).toEqual(Array.from({ length: kept }, (_, k) => `t${total - kept + k}`));
      expect(frames.map((f) => f.id)).toEqual(Array.from({ length: kept }, (_, k) => 0xfffffff0 + ((total - kept + k) % 15)));
      expect(frames.every((f) => f.kind === 'REPLY' && f.dir === 'out')).toBe(true);
      expect((recorder as unknown as Internals).ringLength).toBe(total <= 2 ? 2 : total <= 4 ? 4 : total <= 8 ? 8 : total <= 16 ? 16 : 20);
    }
    const none = new FlightRecorder(0);
    none.frameIn(1, undefined);
    expect(none.recording()).toMatchObject({ framesSeen: 0, frames: [] });
  });

  it('keeps the last 16 lifecycle transitions in order as its transition ring grows (from 4)', () => {
    for (const total of [0, 1, 4, 5, 8, 9, 16, 17, 40]) {
      const recorder = new FlightRecorder(4);
      for (let i = 0; i < total; i++) recorder.transition(`s${i}`);
      const { transitions } = recorder.recording();
      const kept = Math.min(total, 16);
      expect(transitions.map((t) => t.state)).toEqual(Array.from({ length: kept }, (_, k) => `s${total - kept + k}`));
      expect(transitions.every((t, k) => k === 0 || t.at >= transitions[k - 1]!.at)).toBe(true);
    }
  });

  it('records a frame that does not decode, and an id past 16 bits', () => {
    const recorder = new FlightRecorder(4);
    recorder.frameIn(1, undefined);
    // The frame is read from its range of a larger buffer (the sender's slab), not from its start.
    const frame = encodeFrame([2, 70000, 'x'], true, 1 << 20);
    const slab = Buffer.concat([Buffer.alloc(3, 0xce), frame, Buffer.alloc(2, 0xce)]);
    recorder.frameOut(slab, 3, 3 + frame.length, true, undefined, performance.now());
    recorder.frameIn(2, { not: 'an envelope' });
    const { frames } = recorder.recording();
    expect(frames.map((f) => [f.dir, f.kind, f.id, f.size])).toEqual([
      ['in', 'UNDECODABLE', undefined, 1],
      ['out', 'REPLY', 70000, 9],
      ['in', 'NOT_ENVELOPE', undefined, 2],
    ]);
  });
});
