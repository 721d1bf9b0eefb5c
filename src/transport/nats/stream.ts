import { Duplex } from 'node:stream';
import { ConverseError } from '../../errors.js';
import type { NatsConnection, NatsLease, NatsMsg, NatsSubscription } from './client.js';

/**
 * A virtual byte stream over NATS: one per connection, so the connection engine above runs over
 * NATS exactly as over a socket (framing, handshake, asks, credit-based streaming, keepalive,
 * graceful close all unchanged).
 *
 * Each side subscribes to its own inbox subject and publishes to the peer's. Every NATS message on
 * a stream is `[kind u8][seq u32 BE][body]`:
 *
 * - DATA (1): body is the next bytes of the stream. At most `credit` bytes may be outstanding.
 * - CREDIT (2): body is a u32: the sender may send that many more bytes (the receiver grants it as
 *   its reader consumes data, so a peer can never make this side buffer more than its window).
 * - FIN (3): the sender's half of the stream ended (like a TCP FIN): after the DATA before it.
 *   Also what a stream closed without an error sends when all it was given went out, so the
 *   peer still reads every byte it received, as after a socket's close.
 * - RESET (4): the sender gave up on the stream; body is a UTF-8 reason. The receiver drops
 *   what it had not yet read: sent only on an error, or when written bytes could not go out.
 * - PING (5): a heartbeat, sent when nothing else was sent for a heartbeat interval.
 *
 * `seq` counts every message one side sends on the stream, from 0. NATS delivers one publisher's
 * messages to one subscriber in order but at most once; a gap in `seq` means NATS dropped one, and
 * the stream is reset rather than pretend the bytes are whole. A stream that hears nothing for the
 * heartbeat timeout is reset too: this is how a SIGKILLed peer is noticed, since NATS does not tell
 * a subscriber that a publisher went away. Once the peer's FIN is in, its silence is expected and
 * no longer judged: what it sent stays readable however long our reader takes (as on a socket
 * whose peer closed); the engine's own deadlines bound the rest.
 */

export const StreamKind = { DATA: 1, CREDIT: 2, FIN: 3, RESET: 4, PING: 5 } as const;
type StreamKind = (typeof StreamKind)[keyof typeof StreamKind];
export const HEADER_BYTES = 5;
/** Largest DATA body: far under NATS's default max_payload (1 MiB), small enough to interleave streams fairly. */
const MAX_CHUNK = 64 * 1024;

export interface NatsStreamOptions {
  lease: NatsLease;
  /** Where we receive. */
  inbox: string;
  /** Bytes we let the peer send before we grant more. */
  window: number;
  /** How long we wait without hearing from the peer before resetting. */
  heartbeatTimeout: number;
}

/** What the opening exchange tells us about the peer's end. */
export interface PeerEnd {
  /** Where the peer receives. */
  inbox: string;
  /** Bytes the peer lets us send before it grants more. */
  window: number;
  /** How often we send a heartbeat when otherwise silent (often enough for the peer's timeout). */
  heartbeatInterval: number;
}

export class NatsStream extends Duplex {
  /** Bytes published as DATA (what the engine reads as a socket's `bytesWritten`). */
  bytesWritten = 0;
  /** The subject this stream receives on. */
  readonly inbox: string;
  private readonly nc: NatsConnection;
  private readonly sub: NatsSubscription;
  private peerInbox: string | undefined;
  private readonly window: number;
  private readonly maxChunk: number;
  private sendSeq = 0;
  private receiveSeq = 0;
  /** Bytes we may still send. */
  private credit = 0;
  /** Bytes delivered to our reader since our last CREDIT. */
  private consumed = 0;
  /** Our reader is full: withhold credit until it asks for more (`_read`). */
  private readerFull = false;
  /** The write waiting for credit: its bytes not yet sent, and its callback. */
  private waiting: { chunk: Buffer; callback: (error?: Error | null) => void } | undefined;
  private lastSent = 0;
  private lastHeard: number;
  private lastTick = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private heartbeatInterval = Infinity;
  private readonly unwatch: () => void;
  private finSent = false;
  private finReceived = false;

  constructor(private readonly options: NatsStreamOptions) {
    super({ allowHalfOpen: false, decodeStrings: true });
    this.nc = options.lease.nc;
    this.window = options.window;
    this.inbox = options.inbox;
    const maxPayload = this.nc.info?.max_payload ?? 1024 * 1024;
    this.maxChunk = Math.max(1, Math.min(MAX_CHUNK, maxPayload - HEADER_BYTES));
    this.lastHeard = performance.now();
    this.sub = this.nc.subscribe(options.inbox, { callback: (error, msg) => this.onMessage(error, msg) });
    this.unwatch = options.lease.watch((error) => this.destroy(error));
  }

  /**
   * Start talking to the peer's end. The client subscribes (constructs the stream) before it sends
   * OPEN and connects once ACCEPT names the server's inbox, so not even the server's first heartbeat
   * can arrive before our interest is registered.
   */
  connectTo(peer: PeerEnd): void {
    this.peerInbox = peer.inbox;
    this.credit = peer.window;
    this.heartbeatInterval = peer.heartbeatInterval;
    this.lastHeard = performance.now();
    this.lastTick = this.lastHeard;
    const tick = Math.max(1, Math.min(peer.heartbeatInterval, this.options.heartbeatTimeout / 2));
    this.timer = setInterval(() => this.onTick(), tick);
    this.timer.unref();
  }

  // ── Receiving ──────────────────────────────────────────────────────────────────────────

  private onMessage(error: Error | null, msg: NatsMsg): void {
    if (this.destroyed) return;
    if (error !== null) return void this.destroy(new ConverseError('CONNECTION_CLOSED', `The NATS subscription of this stream failed: ${error.message}.`, { cause: error }));
    const data = msg.data;
    try {
      if (data.length < HEADER_BYTES) throw new Error('a message shorter than its header');
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      const kind = data[0];
      const seq = view.getUint32(1);
      if (seq !== this.receiveSeq) {
        throw new Error(`message ${this.receiveSeq} was lost (message ${seq} came next)`);
      }
      this.receiveSeq = (this.receiveSeq + 1) >>> 0;
      this.lastHeard = performance.now();
      switch (kind) {
        case StreamKind.DATA: {
          const length = data.length - HEADER_BYTES;
          if (this.finReceived) throw new Error('data after the end of the stream');
          // The peer may not exceed the credit we granted: what it could make us buffer stays bounded.
          if (this.outstanding + length > this.window) throw new Error(`the peer sent past its flow-control window of ${this.window} bytes`);
          this.unconsumed += length;
          const chunk = Buffer.from(data.buffer, data.byteOffset + HEADER_BYTES, length);
          if (!this.push(chunk)) this.readerFull = true;
          this.consumedBytes(length);
          return;
        }
        case StreamKind.CREDIT: {
          if (data.length !== HEADER_BYTES + 4) throw new Error('a malformed CREDIT');
          this.credit += view.getUint32(HEADER_BYTES);
          if (this.credit > 2 ** 32) throw new Error('more credit than any window');
          this.pump();
          return;
        }
        case StreamKind.FIN:
          if (this.finReceived) throw new Error('a second FIN');
          this.finReceived = true;
          this.push(null);
          return;
        case StreamKind.RESET: {
          const reason = Buffer.from(data.buffer, data.byteOffset + HEADER_BYTES, data.length - HEADER_BYTES).toString('utf8').slice(0, 200);
          this.destroy(new ConverseError('CONNECTION_CLOSED', `The peer reset the NATS stream${reason ? ` (${reason})` : ''}.`));
          return;
        }
        case StreamKind.PING:
          return;
        default:
          throw new Error(`an unknown message kind ${kind}`);
      }
    } catch (cause) {
      this.reset(`The NATS stream broke: ${(cause as Error).message}.`);
    }
  }

  /** Bytes the peer has sent that we have not yet granted back. */
  private unconsumed = 0;
  private get outstanding(): number {
    return this.unconsumed;
  }

  /** Grant credit back in batches of half a window, unless our reader is full. */
  private consumedBytes(length: number): void {
    this.consumed += length;
    this.grant();
  }

  private grant(): void {
    if (this.readerFull || this.consumed < this.window / 2 || this.destroyed) return;
    const granted = this.consumed;
    this.consumed = 0;
    this.unconsumed -= granted;
    const message = this.header(StreamKind.CREDIT, 4);
    message.writeUInt32BE(granted, HEADER_BYTES);
    this.publish(message);
  }

  override _read(): void {
    if (this.readerFull) {
      this.readerFull = false;
      this.grant();
    }
  }

  // ── Sending ────────────────────────────────────────────────────────────────────────────

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.waiting = { chunk, callback };
    this.pump();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    // A corked batch of frames goes out as few NATS messages as the credit allows.
    this._write(chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk)), 'binary', callback);
  }

  /** Send as much of the waiting write as the credit allows; complete it once all of it is out. */
  private pump(): void {
    const waiting = this.waiting;
    if (waiting === undefined || this.destroyed) return;
    let chunk = waiting.chunk;
    while (chunk.length > 0 && this.credit > 0) {
      const n = Math.min(chunk.length, this.credit, this.maxChunk);
      const message = this.header(StreamKind.DATA, n);
      chunk.copy(message, HEADER_BYTES, 0, n);
      if (!this.publish(message)) return;
      this.credit -= n;
      this.bytesWritten += n;
      chunk = chunk.subarray(n);
    }
    if (chunk.length > 0) {
      waiting.chunk = chunk; // wait for CREDIT
      return;
    }
    this.waiting = undefined;
    waiting.callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finSent = true;
    this.send(StreamKind.FIN);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearInterval(this.timer);
    this.unwatch();
    if (error == null && this.waiting === undefined) {
      // Closed without an error and everything written went out: end our half like a socket's
      // close does (FIN), so the peer still reads all of it. A RESET here would make the peer drop
      // what it received but had not read yet: a graceful close that lost the last messages.
      if (!this.finSent) {
        this.finSent = true;
        this.send(StreamKind.FIN);
      }
    } else if (!(this.finSent && this.finReceived)) {
      // An error, or bytes we accepted could not go out: say so at once rather than let the
      // peer take a truncated stream for a whole one, or wait for its heartbeat timeout.
      this.send(StreamKind.RESET, Buffer.from((error?.message ?? 'closed with unsent data').slice(0, 200)));
    }
    try {
      this.sub.unsubscribe();
    } catch {
      /* the NATS connection is already closed */
    }
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.callback(error ?? new ConverseError('CONNECTION_CLOSED', 'The NATS stream was closed.'));
    void this.options.lease.release();
    callback(error);
  }

  private reset(reason: string): void {
    this.destroy(new ConverseError('CONNECTION_CLOSED', reason));
  }

  // ── Liveness ───────────────────────────────────────────────────────────────────────────

  private onTick(): void {
    const now = performance.now();
    const stalled = now - this.lastTick > this.options.heartbeatTimeout / 2;
    this.lastTick = now;
    if (!this.finSent && now - this.lastSent >= this.heartbeatInterval) this.send(StreamKind.PING);
    // After a stall of our own event loop, the peer's heartbeats may be waiting unread in the
    // socket: timers run before I/O. Judge silence only on a punctual tick, and only after the
    // pending I/O had its turn (setImmediate runs after the poll phase).
    // After the peer's FIN it has nothing more to send: silence is no sign of death, and a reset
    // would drop what it sent that our reader has not taken yet.
    if (stalled || this.finReceived || now - this.lastHeard <= this.options.heartbeatTimeout) return;
    setImmediate(() => {
      const silent = performance.now() - this.lastHeard;
      if (!this.destroyed && !this.finReceived && silent > this.options.heartbeatTimeout) {
        this.reset(`The peer was silent on NATS for ${Math.round(silent)} ms (heartbeat timeout ${this.options.heartbeatTimeout} ms): it is gone`);
      }
    });
  }

  // ── Plumbing ───────────────────────────────────────────────────────────────────────────

  /** A message of `kind` with room for `bodyLength` bytes, stamped with the next sequence number (taken by `publish`). */
  private header(kind: StreamKind, bodyLength: number): Buffer {
    const message = Buffer.allocUnsafe(HEADER_BYTES + bodyLength);
    message[0] = kind;
    message.writeUInt32BE(this.sendSeq, 1);
    return message;
  }

  private send(kind: StreamKind, body?: Buffer): void {
    const message = this.header(kind, body?.length ?? 0);
    body?.copy(message, HEADER_BYTES);
    this.publish(message);
  }

  /**
   * Publish one message made by `header` just before; false (and the stream destroyed) when the
   * NATS connection refuses it. Its sequence number counts only once it is published: before
   * ACCEPT there is nobody to send to, and a number skipped would read as a lost message.
   */
  private publish(message: Buffer): boolean {
    if (this.peerInbox === undefined) return true;
    try {
      this.nc.publish(this.peerInbox, message);
      this.sendSeq = (this.sendSeq + 1) >>> 0;
      this.lastSent = performance.now();
      return true;
    } catch (error) {
      if (!this.destroyed) this.destroy(new ConverseError('CONNECTION_CLOSED', `Publishing on NATS failed: ${(error as Error).message}.`, { cause: error }));
      return false;
    }
  }

  // The socket surface the engine may touch; a virtual stream has nothing behind these.
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}
