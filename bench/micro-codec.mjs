#!/usr/bin/env node
// Micro-benchmark of the library's codec and framing alone (no sockets): frames/s for
// encodeFrame, decodeBody and FrameDecoder, small and 1 MiB, next to plain msgpackr for
// reference (the difference is the library's value checks: prepare() and the MessagePack scan).
// A 1 MiB frame is measured the way it is received: 64 KiB reads gathered into the frame, then
// decoded (decoding a whole body alone only returns a view of its bytes, which costs nothing
// worth measuring), against the same gathering plus plain msgpackr.
//
//   node bench/micro-codec.mjs [--seconds 0.6] [--json]
// run.mjs calls runMicro(), which runs this file in a fresh process.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Packr, Unpackr } from 'msgpackr';
import { largePayload, MiB, now } from './lib/common.mjs';
import { libraryModule } from './lib/env.mjs';

const self = fileURLToPath(import.meta.url);

export function runMicro({ seconds = 0.6, cpu = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const script = `exec ${cpu !== undefined && process.platform === 'linux' ? `taskset -c ${cpu} ` : ''}"$0" "$@"`;
    const proc = spawn('/bin/sh', ['-c', script, process.execPath, '--expose-gc', self, '--json', '--seconds', String(seconds)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`micro-codec exited with ${code}`));
      try {
        resolve(JSON.parse(out));
      } catch (error) {
        reject(error);
      }
    });
  });
}

async function main() {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '0.6' }, json: { type: 'boolean', default: false } } });
  const seconds = Number(values.seconds);
  const { encodeFrame, decodeBody } = await libraryModule('src/wire/codec.js');
  const { FrameDecoder } = await libraryModule('src/wire/framing.js');
  let scan;
  try {
    ({ scanMessagePack: scan } = await libraryModule('src/wire/msgpack-scan.js'));
  } catch {
    /* internal module; optional */
  }

  const LIMIT = 2 * MiB;
  const small = [1, 12345, { type: 'add', a: 12345, b: 67890 }];
  const data = largePayload(MiB);
  const large = [1, 7, { type: 'add', a: 1, b: 2, data, len: MiB }];
  const bodyOf = (frame) => {
    const first = frame[0];
    const prefix = first <= 0xfb ? 1 : first === 0xfc ? 3 : first === 0xfd ? 5 : 9;
    return frame.subarray(prefix);
  };
  const smallFrame = Buffer.from(encodeFrame(small, false, LIMIT));
  const largeFrame = Buffer.from(encodeFrame(large, false, LIMIT));
  const smallBody = bodyOf(smallFrame);
  const largeBody = bodyOf(largeFrame);
  // A read of many small frames, as a pipelined socket delivers them (~64 KiB).
  const perChunk = Math.floor(65536 / smallFrame.length);
  const smallChunk = Buffer.concat(Array.from({ length: perChunk }, () => smallFrame));
  // A 1 MiB frame as 64 KiB reads.
  const largeChunks = [];
  for (let i = 0; i < largeFrame.length; i += 65536) largeChunks.push(largeFrame.subarray(i, i + 65536));

  const packr = new Packr({ useRecords: false, moreTypes: false });
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
  const plainSmall = packr.pack(small);
  const plainLarge = Buffer.from(packr.pack(large));

  let sink = 0;
  let frames = 0;
  const decoder = (check) =>
    new FrameDecoder(
      LIMIT,
      false,
      (body) => {
        frames++;
        if (check) sink += decodeBody(body)[1];
        else sink += body.length;
      },
      (error) => {
        throw error;
      },
    );
  const framingOnly = decoder(false);
  const framingAndDecode = decoder(true);
  const largeDecoder = decoder(false);
  const largeReceiver = decoder(true);
  // The reference receive path (the raw peer's): allocate the declared size, copy the reads in, unpack.
  const receivePlain = (chunks, length) => {
    const body = Buffer.allocUnsafe(length);
    let fill = 0;
    for (const c of chunks) {
      c.copy(body, fill);
      fill += c.length;
    }
    return unpackr.unpack(body);
  };
  const plainLargeChunks = [];
  for (let i = 0; i < plainLarge.length; i += 65536) plainLargeChunks.push(plainLarge.subarray(i, i + 65536));

  /**
   * ops/s of each `fn` (which performs `per` operations per call): after a warm-up of all, 5 timed
   * slices per operation, taken round-robin across the operations so that a burst of background
   * load hits them alike; the median slice counts.
   */
  const ops = {
    'encodeFrame small': [() => (sink += encodeFrame(small, false, LIMIT).length)],
    'msgpackr pack small (reference)': [() => (sink += packr.pack(small).length)],
    'decodeBody small': [() => (sink += decodeBody(smallBody)[1])],
    'msgpackr unpack small (reference)': [() => (sink += unpackr.unpack(plainSmall)[1])],
    'FrameDecoder small (framing only)': [() => framingOnly.push(smallChunk), perChunk],
    'FrameDecoder + decodeBody small': [() => framingAndDecode.push(smallChunk), perChunk],
    'encodeFrame 1 MiB': [() => (sink += encodeFrame(large, false, LIMIT).length)],
    'msgpackr pack 1 MiB (reference)': [() => (sink += packr.pack(large).length)],
    'receive 1 MiB: 64 KiB reads → FrameDecoder → decodeBody': [
      () => {
        for (const c of largeChunks) largeReceiver.push(c);
      },
    ],
    'receive 1 MiB: 64 KiB reads → one buffer → msgpackr unpack (reference)': [() => (sink += receivePlain(plainLargeChunks, plainLarge.length)[1])],
    'FrameDecoder 1 MiB in 64 KiB reads (framing only)': [
      () => {
        for (const c of largeChunks) largeDecoder.push(c);
      },
    ],
  };
  if (scan) {
    ops['scanMessagePack small'] = [() => (sink += scan(smallBody, 0, smallBody.length, 100) === undefined ? 1 : 0)];
    ops['scanMessagePack 1 MiB'] = [() => (sink += scan(largeBody, 0, largeBody.length, 100) === undefined ? 1 : 0)];
  }
  const slice = (seconds * 1000) / 5;
  const run = (fn, per, ms) => {
    let n = 0;
    const t0 = now();
    let t = t0;
    while (t - t0 < ms) {
      fn();
      n += per;
      t = now();
    }
    return n / ((t - t0) / 1000);
  };
  for (const [fn, per = 1] of Object.values(ops)) run(fn, per, slice);
  const rates = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
  for (let s = 0; s < 5; s++) {
    globalThis.gc?.();
    for (const [k, [fn, per = 1]] of Object.entries(ops)) rates[k].push(run(fn, per, slice));
  }
  const results = Object.fromEntries(Object.entries(rates).map(([k, r]) => [k, r.sort((a, b) => a - b)[2]]));
  const sizes = { small: smallFrame.length, large: largeFrame.length };
  const out = { seconds, sizes, results, sink: sink > 0 && frames > 0 };
  if (largeBody.length !== largeFrame.length - 5) throw new Error('unexpected 1 MiB frame layout');
  if (values.json) process.stdout.write(JSON.stringify(out));
  else {
    console.log(`frame sizes: small ${sizes.small} B, large ${sizes.large} B`);
    for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(72)} ${Math.round(v).toLocaleString('en-US').padStart(12)} frames/s`);
  }
}

if (process.argv[1] === self) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
