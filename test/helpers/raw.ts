/**
 * Speaking the wire protocol by hand, for tests that play a misbehaving or foreign peer.
 *
 * Handshake message (docs/PROTOCOL.md §2, src/wire/constants.ts): a 14-byte header
 *   magic 0x89 0x49 0x43 0x56 | version u16 BE | kind u8 (1 HELLO, 2 WELCOME, 3 REJECT) |
 *   flags u8 (bit 0 = checksum) | maxMessageSize u32 BE | extension length u16 BE
 * followed by an optional MessagePack map (REJECT carries { code, message }).
 * Frames: a length prefix (one byte up to 0xfb; 0xfc + u16 BE; 0xfd + u32 BE) then a
 * MessagePack array [kind, id?, payload?] (0 TELL, 1 ASK, 2 REPLY, 3 ERROR, 4 CANCEL, 5 GOODBYE).
 */
import * as net from 'node:net';
import { unpack } from 'msgpackr';
import { encodeFrame, decodeBody } from '../../src/wire/codec.js';
import { FrameDecoder } from '../../src/wire/framing.js';
import { onCleanup } from './cleanup.js';

export const MAGIC = [0x89, 0x49, 0x43, 0x56] as const;

/** A handshake header written byte by byte (not through the library's encoder). */
export function handshakeBytes(options: { version?: number; kind?: number; flags?: number; maxMessageSize?: number; extension?: Buffer } = {}): Buffer {
  const { version = 1, kind = 1, flags = 0, maxMessageSize = 1024 * 1024, extension } = options;
  const extLength = extension?.length ?? 0;
  const header = Buffer.from([
    ...MAGIC,
    (version >> 8) & 0xff, version & 0xff,
    kind,
    flags,
    (maxMessageSize >>> 24) & 0xff, (maxMessageSize >>> 16) & 0xff, (maxMessageSize >>> 8) & 0xff, maxMessageSize & 0xff,
    (extLength >> 8) & 0xff, extLength & 0xff,
  ]);
  return extension ? Buffer.concat([header, extension]) : header;
}

export interface ParsedHandshake {
  version: number;
  kind: number;
  flags: number;
  maxMessageSize: number;
  extension: Record<string, unknown> | undefined;
  /** Bytes the whole handshake message took. */
  size: number;
}

/** Parse a handshake message at the start of `bytes`; undefined while incomplete. */
export function parseHandshake(bytes: Buffer): ParsedHandshake | undefined {
  if (bytes.length < 14) return undefined;
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) throw new Error(`bad magic byte ${i}: 0x${bytes[i]!.toString(16)}`);
  const extLength = bytes.readUInt16BE(12);
  if (bytes.length < 14 + extLength) return undefined;
  return {
    version: bytes.readUInt16BE(4),
    kind: bytes[6]!,
    flags: bytes[7]!,
    maxMessageSize: bytes.readUInt32BE(8),
    extension: extLength > 0 ? (unpack(bytes.subarray(14, 14 + extLength)) as Record<string, unknown>) : undefined,
    size: 14 + extLength,
  };
}

/** One frame (no checksum) for a hand-driven peer. */
export function frame(envelope: unknown[]): Buffer {
  return Buffer.from(encodeFrame(envelope, false, 0xffffffff));
}

/** A raw socket with everything it received gathered in `received`. */
export class RawPeer {
  received = Buffer.alloc(0);
  readonly closed: Promise<void>;
  private listeners: Array<() => void> = [];

  constructor(readonly socket: net.Socket) {
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      for (const listener of this.listeners.slice()) listener();
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => {
      for (const listener of this.listeners.slice()) listener();
    });
    onCleanup(() => socket.destroy());
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Wait until `received` satisfies `check` (returns its result), or the socket closes (returns undefined). */
  until<T>(check: (received: Buffer) => T | undefined, timeout = 5000): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      const attempt = (): boolean => {
        const result = check(this.received);
        if (result !== undefined) {
          done();
          resolve(result);
          return true;
        }
        if (this.socket.destroyed || this.socket.readableEnded) {
          done();
          resolve(undefined);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`raw peer: nothing matching within ${timeout} ms (received ${this.received.length} bytes)`));
      }, timeout);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== listener);
      };
      const listener = (): void => void attempt();
      if (attempt()) return;
      this.listeners.push(listener);
    });
  }
}

/** Connect a raw socket to `name`. */
export function rawConnect(name: string): Promise<RawPeer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: name });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(new RawPeer(socket));
    });
    socket.once('error', reject);
  });
}

/** A plain net.Server at `name` that hands each accepted socket to `onPeer` as a RawPeer. */
export function rawServer(name: string, onPeer: (peer: RawPeer) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => onPeer(new RawPeer(socket)));
    server.once('error', reject);
    server.listen(name, () => {
      server.off('error', reject);
      onCleanup(() => new Promise<void>((done) => server.close(() => done())));
      resolve(server);
    });
  });
}

/** Decodes frames (no checksum) from a byte stream into MessagePack envelopes. */
export class FrameReader {
  readonly envelopes: unknown[][] = [];
  private readonly decoder: FrameDecoder;
  constructor(onEnvelope?: (envelope: unknown[]) => void, maxMessageSize = 0xffffffff) {
    this.decoder = new FrameDecoder(
      maxMessageSize,
      false,
      (body) => {
        const envelope = decodeBody(body) as unknown[];
        this.envelopes.push(envelope);
        onEnvelope?.(envelope);
      },
      (error) => {
        throw error;
      },
    );
  }
  push(bytes: Buffer): void {
    this.decoder.push(bytes);
  }
}
