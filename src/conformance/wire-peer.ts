import * as net from 'node:net';
import { checksumOf, decodeBody, encodeFrame } from '../wire/codec.js';
import { HANDSHAKE_HEADER_SIZE, LENGTH_RESERVED, LENGTH_U16, LENGTH_U32, MAGIC } from '../wire/constants.js';

/**
 * One end of a connection, spoken by hand for the conformance kit: it writes exactly the bytes a
 * case asks for (valid or not) and reads the other side's bytes without trusting them. It keeps
 * every received byte until a case consumes it, so a case can check "nothing else arrived".
 */

export interface Handshake {
  version: number;
  kind: number;
  flags: number;
  maxMessageSize: number;
  /** The decoded extension map, or undefined when the extension length is 0. */
  extension: Record<string, unknown> | undefined;
  /** The raw bytes of the whole message. */
  bytes: Buffer;
}

export interface Frame {
  /** The body's bytes (prefix and CRC removed). */
  body: Buffer;
  /** The body decoded with the reference decoder (its strict pre-scan included). */
  value: unknown;
}

/** A case failed: the message says what was expected and what happened. */
export class CaseFailure extends Error {}

export function fail(message: string): never {
  throw new CaseFailure(message);
}

/** A handshake message with the given header fields and raw extension bytes. */
export function handshakeBytes(fields: { version?: number; kind: number; flags?: number; maxMessageSize?: number; extension?: Uint8Array }): Buffer {
  const ext = fields.extension ?? new Uint8Array(0);
  const out = Buffer.alloc(HANDSHAKE_HEADER_SIZE + ext.length);
  out.set(MAGIC, 0);
  out.writeUInt16BE(fields.version ?? 1, 4);
  out[6] = fields.kind;
  out[7] = fields.flags ?? 0;
  out.writeUInt32BE(fields.maxMessageSize ?? 1024 * 1024, 8);
  out.writeUInt16BE(ext.length, 12);
  out.set(ext, HANDSHAKE_HEADER_SIZE);
  return out;
}

/** A frame around raw body bytes: the shortest length prefix, then the CRC-32 when `checksum`. */
export function frameBytes(body: Uint8Array, checksum: boolean): Buffer {
  const n = body.length;
  const prefix = n <= 0xfb ? Buffer.of(n) : n <= 0xffff ? Buffer.of(LENGTH_U16, n >> 8, n & 0xff) : Buffer.of(LENGTH_U32, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  const crc = checksum ? Buffer.alloc(4) : Buffer.alloc(0);
  if (checksum) crc.writeUInt32BE(checksumOf(body));
  return Buffer.concat([prefix, crc, body]);
}

export class WirePeer {
  /** Received bytes not consumed yet. */
  private buffer: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  /** The other side ended its sending direction (or the socket closed). */
  ended = false;
  closed = false;
  /** Whether frames carry a CRC-32 (set once the handshake agreed it). */
  checksum = false;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(name: string, timeout: number): Promise<WirePeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ path: name, allowHalfOpen: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new CaseFailure(`could not connect to ${name} within ${timeout} ms`));
      }, timeout);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new WirePeer(socket));
      });
      const onError = (error: Error): void => {
        clearTimeout(timer);
        reject(new CaseFailure(`could not connect to ${name}: ${error.message}`));
      };
      socket.once('error', onError);
    });
  }

  /** Bytes received and not consumed yet. */
  get pending(): number {
    return this.buffer.length;
  }

  write(bytes: Uint8Array): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(bytes);
  }

  /** Send an envelope, encoded by the reference encoder, with the agreed checksum setting. */
  send(envelope: unknown[]): void {
    this.write(encodeFrame(envelope, this.checksum, 0xffffffff));
  }

  /**
   * Send several envelopes in one socket write, so that they arrive in one read (for rules that
   * are defined per read, such as an ASK in the same read as the GOODBYE, §7.1).
   */
  sendTogether(envelopes: unknown[][]): void {
    this.write(Buffer.concat(envelopes.map((envelope) => encodeFrame(envelope, this.checksum, 0xffffffff))));
  }

  /** Send raw body bytes as one frame (shortest prefix, CRC when agreed). */
  sendBody(body: Uint8Array): void {
    this.write(frameBytes(body, this.checksum));
  }

  /** End this side's sending direction (half-close). */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Read one handshake message (header and extension). */
  async readHandshake(timeout: number): Promise<Handshake> {
    const size = await this.waitFor(() => {
      if (this.buffer.length < HANDSHAKE_HEADER_SIZE) return undefined;
      return HANDSHAKE_HEADER_SIZE + this.buffer.readUInt16BE(12);
    }, timeout, 'a handshake message');
    for (let i = 0; i < MAGIC.length; i++) {
      if (this.buffer[i] !== MAGIC[i]) fail(`the handshake does not start with the magic 89 49 43 56 (got ${this.buffer.subarray(0, 4).toString('hex')})`);
    }
    await this.waitFor(() => (this.buffer.length >= size ? true : undefined), timeout, `the ${size - HANDSHAKE_HEADER_SIZE}-byte handshake extension`);
    const bytes = this.take(size);
    let extension: Record<string, unknown> | undefined;
    if (size > HANDSHAKE_HEADER_SIZE) {
      let decoded: unknown;
      try {
        decoded = decodeBody(bytes.subarray(HANDSHAKE_HEADER_SIZE));
      } catch (error) {
        fail(`the handshake extension is not acceptable MessagePack: ${(error as Error).message}`);
      }
      if (typeof decoded !== 'object' || decoded === null || Object.getPrototypeOf(decoded) !== Object.prototype) fail('the handshake extension is not a MessagePack map');
      extension = decoded as Record<string, unknown>;
    }
    return { version: bytes.readUInt16BE(4), kind: bytes[6]!, flags: bytes[7]!, maxMessageSize: bytes.readUInt32BE(8), extension, bytes };
  }

  /** The next frame. Fails on a timeout, a stream end, a bad CRC or a body the reference decoder refuses. */
  async nextFrame(timeout: number, what = 'a frame'): Promise<Frame> {
    const layout = await this.waitFor(() => this.frameLayout(), timeout, what);
    const bytes = this.take(layout.total);
    const body = bytes.subarray(layout.total - layout.length);
    if (this.checksum) {
      const crc = bytes.readUInt32BE(layout.prefix);
      if (crc !== checksumOf(body)) fail(`a frame's CRC-32 is ${crc.toString(16)}, the body's is ${checksumOf(body).toString(16)}`);
    }
    let value: unknown;
    try {
      value = decodeBody(body);
    } catch (error) {
      fail(`a frame body is not acceptable MessagePack (§5): ${(error as Error).message} (body ${body.toString('hex').slice(0, 80)})`);
    }
    return { body: Buffer.from(body), value };
  }

  /** The next frame that is not a PING (a PING is answered with PONG on the way, as §6.6 requires). */
  async nextMessage(timeout: number, what = 'a frame'): Promise<Frame> {
    for (;;) {
      const frame = await this.nextFrame(timeout, what);
      if (Array.isArray(frame.value) && frame.value.length === 1 && frame.value[0] === 6) {
        this.send([7]);
        continue;
      }
      return frame;
    }
  }

  /** Resolves once the other side ended its direction or closed; fails if it has not within `timeout`. */
  async expectEnd(timeout: number, what: string): Promise<void> {
    await this.waitFor(() => (this.ended ? true : undefined), timeout, what, true);
  }

  /** Passes when nothing (no byte) arrives within `ms`; returns whether the stream ended meanwhile. */
  async expectSilence(ms: number, what: string): Promise<void> {
    const before = this.buffer.length;
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.buffer.length > before) fail(`${what}, but ${this.buffer.length - before} bytes arrived (${this.buffer.subarray(before, before + 32).toString('hex')})`);
  }

  /**
   * Waits until `check` returns a value. Fails on timeout, and (unless `endIsOk`) when the stream
   * ends with the condition still unmet.
   */
  private waitFor<T>(check: () => T | undefined, timeout: number, what: string, endIsOk = false): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = (): boolean => {
        let result: T | undefined;
        try {
          result = check();
        } catch (error) {
          done();
          reject(error);
          return true;
        }
        if (result !== undefined) {
          done();
          resolve(result);
          return true;
        }
        if (this.ended && !endIsOk) {
          done();
          reject(new CaseFailure(`expected ${what}, but the peer closed the connection${this.buffer.length > 0 ? ` (${this.buffer.length} bytes of an incomplete message left)` : ''}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new CaseFailure(`expected ${what} within ${timeout} ms${this.buffer.length > 0 ? ` (got ${this.buffer.length} bytes: ${this.buffer.subarray(0, 32).toString('hex')})` : ', nothing arrived'}`));
      }, timeout);
      const listener = (): void => void attempt();
      const done = (): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== listener);
      };
      if (attempt()) return;
      this.waiters.push(listener);
    });
  }

  private wake(): void {
    for (const waiter of this.waiters.slice()) waiter();
  }

  private take(n: number): Buffer {
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }

  /** Prefix size, body length and total size of the frame at the start of the buffer, once complete. */
  private frameLayout(): { prefix: number; length: number; total: number } | undefined {
    const b = this.buffer;
    if (b.length === 0) return undefined;
    const marker = b[0]!;
    let prefix: number;
    let length: number;
    if (marker === LENGTH_RESERVED) fail('the peer sent the reserved length marker 0xFF');
    if (marker < LENGTH_U16) {
      prefix = 1;
      length = marker;
    } else if (marker === LENGTH_U16) {
      if (b.length < 3) return undefined;
      prefix = 3;
      length = b.readUInt16BE(1);
    } else if (marker === LENGTH_U32) {
      if (b.length < 5) return undefined;
      prefix = 5;
      length = b.readUInt32BE(1);
    } else {
      if (b.length < 9) return undefined;
      prefix = 9;
      length = b.readUInt32BE(1) * 2 ** 32 + b.readUInt32BE(5);
    }
    if (length > 64 * 1024 * 1024) fail(`the peer declared a ${length}-byte frame`);
    const total = prefix + (this.checksum ? 4 : 0) + length;
    return b.length >= total ? { prefix, length, total } : undefined;
  }
}
