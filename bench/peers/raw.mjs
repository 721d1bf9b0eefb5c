// The raw baseline: node:net, a 4-byte big-endian length prefix, msgpackr bodies. It stands for
// the limit, so it is written to be as fast as this transport allows:
//  - replies and asks produced in one tick are coalesced into one socket write (flushed from a
//    microtask at the end of the current callback), by copying the small frames into one slice
//    of a shared slab: one write, no per-frame Buffer.concat, no per-frame write;
//  - a large frame gets its length prefix written into space msgpackr reserves in front of the
//    body (RESERVE_START_SPACE), so it is written as one buffer without a copy, and the large
//    frames of one tick leave in one writev (corked), without a JS round trip between them;
//  - frames that lie inside one received chunk are decoded from a view of it; a frame that
//    straddles chunks is allocated once at its declared size.
// No handshake, no validation, no timeouts: this is what the library's wire costs without it.
import net from 'node:net';
import { Packr, RESERVE_START_SPACE, Unpackr } from 'msgpackr';
import { handleAdd } from '../lib/common.mjs';

export const name = 'raw';
export const label = 'raw net + msgpackr';
export const packages = ['msgpackr'];

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

const PREFIX = 4;
const BIG = 16 * 1024;
const SLAB = 256 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB);
let slabPos = 0;
/** A region of the shared output slab. Regions are never reused: a write may still hold one. */
function slabAlloc(n) {
  if (n > SLAB) return Buffer.allocUnsafe(n);
  if (slabPos + n > SLAB) {
    slab = Buffer.allocUnsafeSlow(SLAB);
    slabPos = 0;
  }
  const out = slab.subarray(slabPos, slabPos + n);
  slabPos = (slabPos + n + 7) & ~7;
  return out;
}

class FrameWriter {
  constructor(socket) {
    this.socket = socket;
    this.frames = [];
    this.scheduled = false;
    this.flush = () => this.flushNow();
  }
  send(value) {
    const frame = packr.pack(value, RESERVE_START_SPACE | PREFIX);
    frame.writeUInt32BE(frame.length - PREFIX, 0);
    this.frames.push(frame);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flush);
    }
  }
  /**
   * One socket write per tick: runs of small frames are copied into one slab slice, large frames
   * go as they are; with more than one chunk the socket is corked so they leave in one writev.
   */
  flushNow() {
    this.scheduled = false;
    const frames = this.frames;
    const n = frames.length;
    if (n === 0) return;
    const socket = this.socket;
    if (n === 1) {
      socket.write(frames[0]);
      frames.length = 0;
      return;
    }
    let corked = false;
    let i = 0;
    while (i < n) {
      let chunk;
      if (frames[i].length >= BIG) {
        chunk = frames[i++];
      } else {
        let j = i;
        let bytes = 0;
        while (j < n && frames[j].length < BIG) bytes += frames[j++].length;
        if (j - i === 1) chunk = frames[i];
        else {
          chunk = slabAlloc(bytes);
          let pos = 0;
          for (let k = i; k < j; k++) {
            chunk.set(frames[k], pos);
            pos += frames[k].length;
          }
        }
        i = j;
      }
      if (!corked && i < n) {
        corked = true;
        socket.cork();
      }
      socket.write(chunk);
    }
    if (corked) socket.uncork();
    frames.length = 0;
  }
}

class FrameReader {
  constructor(onBody) {
    this.onBody = onBody;
    this.header = Buffer.alloc(PREFIX);
    this.headerFill = 0;
    this.body = undefined;
    this.bodyFill = 0;
  }
  push(chunk) {
    let pos = 0;
    const end = chunk.length;
    if (this.body !== undefined) {
      const body = this.body;
      const take = Math.min(body.length - this.bodyFill, end);
      chunk.copy(body, this.bodyFill, 0, take);
      this.bodyFill += take;
      pos = take;
      if (this.bodyFill < body.length) return;
      this.body = undefined;
      this.onBody(body);
    } else if (this.headerFill > 0) {
      while (this.headerFill < PREFIX && pos < end) this.header[this.headerFill++] = chunk[pos++];
      if (this.headerFill < PREFIX) return;
      this.headerFill = 0;
      pos = this.startBody(chunk, pos, end, this.header.readUInt32BE(0));
      if (pos < 0) return;
    }
    while (end - pos >= PREFIX) {
      const length = chunk[pos] * 0x1000000 + ((chunk[pos + 1] << 16) | (chunk[pos + 2] << 8) | chunk[pos + 3]);
      pos = this.startBody(chunk, pos + PREFIX, end, length);
      if (pos < 0) return;
    }
    while (pos < end) this.header[this.headerFill++] = chunk[pos++];
  }
  /** Deliver the body if it is all here (returns the position after it), else start gathering it (-1). */
  startBody(chunk, pos, end, length) {
    if (end - pos >= length) {
      this.onBody(chunk.subarray(pos, pos + length));
      return pos + length;
    }
    this.body = Buffer.allocUnsafe(length);
    chunk.copy(this.body, 0, pos, end);
    this.bodyFill = end - pos;
    return -1;
  }
}

/** A Unix socket path, or `tcp://host:port` for the TCP baseline of bench/transports.mjs. */
function endpoint(path) {
  if (!path.startsWith('tcp://')) return { path };
  const url = new URL(path);
  return { host: url.hostname, port: Number(url.port) };
}

export async function serve(path, options = {}) {
  const sockets = new Set();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    const writer = new FrameWriter(socket);
    const reader = new FrameReader((body) => {
      const [id, msg] = unpackr.unpack(body);
      if (msg.type === 'add') writer.send([id, handleAdd(msg)]);
      else writer.send([id, null, `no handler for ${msg.type}`]);
    });
    socket.on('data', (chunk) => reader.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  server.maxConnections = options.maxConnections ?? 100000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ ...endpoint(path), backlog: 4096 }, resolve);
  });
  return {
    connections: () => sockets.size,
    netServer: () => server,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export async function connect(path) {
  const socket = await connectRetrying(path);
  const writer = new FrameWriter(socket);
  const pending = new Map();
  let nextId = 0;
  const reader = new FrameReader((body) => {
    const reply = unpackr.unpack(body);
    const id = reply[0];
    const settle = pending.get(id);
    pending.delete(id);
    if (reply.length > 2) settle.reject(new Error(reply[2]));
    else settle.resolve(reply[1]);
  });
  socket.on('data', (chunk) => reader.push(chunk));
  socket.on('error', () => {});
  socket.on('close', () => {
    for (const p of pending.values()) p.reject(new Error('connection closed'));
    pending.clear();
  });
  return {
    ask(msg) {
      const id = nextId;
      nextId = (nextId + 1) >>> 0;
      writer.send([id, msg]);
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    },
    close() {
      socket.destroy();
    },
  };
}

/** A Unix socket whose backlog is full fails connect(2) with EAGAIN at once: retry briefly. */
function connectRetrying(path, deadline = performance.now() + 30000) {
  return new Promise((resolve, reject) => {
    let delay = 1;
    const attempt = () => {
      const s = net.connect({ ...endpoint(path), noDelay: true });
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (error) => {
        s.destroy();
        if ((error.code === 'EAGAIN' || error.code === 'ECONNREFUSED') && performance.now() < deadline) {
          setTimeout(attempt, delay * (0.5 + Math.random()));
          delay = Math.min(delay * 2, 50);
        } else reject(error);
      });
    };
    attempt();
  });
}
