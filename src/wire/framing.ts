import { ConverseError } from '../errors.js';
import { CHECKSUM_SIZE, LENGTH_INLINE_MAX, LENGTH_U16, LENGTH_U32, LENGTH_U64 } from './constants.js';
import { checksumOf } from './codec.js';

/**
 * Bytes → frame bodies. A small integer-state loop, in the manner of ws's Receiver:
 *
 *  - The declared length is checked against `maxMessageSize` as soon as the prefix is complete,
 *    before a single byte of body is buffered or allocated.
 *  - A body that lies wholly inside one chunk is handed out as a view of that chunk (no copy).
 *  - A body that straddles chunks is allocated once, at its declared size, and filled in place,
 *    so a frame trickled one byte at a time costs O(n), not O(n²).
 *
 * Frames are delivered through `onFrame`; a violation is reported once through `onError`,
 * after which the decoder ignores further input.
 */
const READ_PREFIX = 0;
const READ_BODY = 1;
const FAILED = 2;

export class FrameDecoder {
  private state = READ_PREFIX;
  /** Prefix + checksum bytes gathered so far when a header straddles chunks. */
  private readonly header = Buffer.allocUnsafe(13);
  private headerFill = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private expectedChecksum = 0;
  /** Frames delivered so far: with `inFrame`, lets a watchdog tell a stalled frame from a new one. */
  framesDelivered = 0;

  constructor(
    private readonly maxMessageSize: number,
    private readonly checksum: boolean,
    private readonly onFrame: (body: Buffer) => void,
    private readonly onError: (error: ConverseError) => void,
  ) {}

  /** Frames received but held back while paused (the rest of a chunk, in order). */
  private backlog: Buffer[] = [];
  private paused = false;

  /**
   * Stop delivering at the next frame boundary; the rest of the current chunk is kept, in order,
   * until `resume`. Pausing the socket alone is not enough: one chunk can hold thousands of
   * small frames.
   */
  pause(): void {
    if (!this.flushing) this.paused = true;
  }

  private flushing = false;

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    while (!this.paused && this.backlog.length > 0 && this.state !== FAILED) this.push(this.backlog.shift()!, true);
  }

  /** The connection is closing: deliver whatever was held back, paused or not (nothing is lost). */
  flush(): void {
    this.flushing = true;
    this.paused = false;
    const rest = this.backlog;
    this.backlog = [];
    for (const chunk of rest) this.push(chunk, true);
    this.flushing = false;
  }

  push(chunk: Buffer, fromBacklog = false): void {
    if (!fromBacklog && this.backlog.length > 0) {
      this.backlog.push(chunk);
      return;
    }
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.state === READ_PREFIX) {
        if (this.paused && this.headerFill === 0) {
          // At a frame boundary while paused: keep the rest for later (in front when it came from the backlog).
          const rest = chunk.subarray(pos);
          if (fromBacklog) this.backlog.unshift(rest);
          else this.backlog.push(rest);
          return;
        }
        // Fast path: a whole header (and perhaps the whole frame) in this chunk.
        if (this.headerFill === 0) {
          const parsed = this.parseHeader(chunk, pos, end);
          if (parsed === -2) return; // failed
          if (parsed >= 0) {
            pos = parsed;
            continue;
          }
        }
        // Slow path: gather header bytes one at a time (at most 13).
        this.header[this.headerFill++] = chunk[pos++]!;
        const parsed = this.parseHeader(this.header, 0, this.headerFill);
        if (parsed === -2) return;
        if (parsed >= 0) this.headerFill = 0;
        continue;
      }
      if (this.state === READ_BODY) {
        const body = this.body!;
        const take = Math.min(body.length - this.bodyFill, end - pos);
        chunk.copy(body, this.bodyFill, pos, pos + take);
        this.bodyFill += take;
        pos += take;
        if (this.bodyFill === body.length) {
          this.body = undefined;
          this.state = READ_PREFIX;
          if (!this.deliver(body)) return;
        }
        continue;
      }
      return; // FAILED
    }
  }

  /**
   * Try to parse a header starting at `pos`. Returns the position after the header (and after
   * the body too, if the whole body was present and delivered), -1 when more bytes are needed,
   * or -2 after reporting an error.
   */
  private parseHeader(buf: Buffer, pos: number, end: number): number {
    const first = buf[pos]!;
    let length: number;
    let prefix: number;
    if (first <= LENGTH_INLINE_MAX) {
      length = first;
      prefix = 1;
    } else if (first === LENGTH_U16) {
      if (end - pos < 3) return -1;
      length = (buf[pos + 1]! << 8) | buf[pos + 2]!;
      prefix = 3;
    } else if (first === LENGTH_U32) {
      if (end - pos < 5) return -1;
      length = buf.readUInt32BE(pos + 1);
      prefix = 5;
    } else if (first === LENGTH_U64) {
      if (end - pos < 9) return -1;
      length = buf.readUInt32BE(pos + 1) * 0x100000000 + buf.readUInt32BE(pos + 5);
      prefix = 9;
    } else {
      return this.fail(new ConverseError('PROTOCOL_ERROR', `The peer sent a frame with the reserved length marker 0x${first.toString(16)}. The connection was closed; the peer does not follow docs/PROTOCOL.md.`));
    }
    if (length > this.maxMessageSize) {
      return this.fail(new ConverseError('RECEIVED_MESSAGE_TOO_LARGE', `The peer sent a frame of ${length} bytes, over this side's maxMessageSize of ${this.maxMessageSize} bytes. The connection was closed; if such messages are expected, raise the maxMessageSize option of both listen() and connect() to at least ${length}.`));
    }
    let headerEnd = pos + prefix;
    if (this.checksum) {
      if (end - headerEnd < CHECKSUM_SIZE) return -1;
      this.expectedChecksum = buf.readUInt32BE(headerEnd);
      headerEnd += CHECKSUM_SIZE;
    }
    if (buf !== this.header && end - headerEnd >= length) {
      // The whole frame is in this chunk: deliver a view, no copy.
      const bodyEnd = headerEnd + length;
      if (!this.deliver(buf.subarray(headerEnd, bodyEnd))) return -2;
      return bodyEnd;
    }
    if (buf === this.header && length === 0) {
      if (!this.deliver(Buffer.alloc(0))) return -2;
      return headerEnd;
    }
    if (buf !== this.header) {
      // Header complete in this chunk but the body is not: allocate once, then fill.
      this.startBody(length);
      const available = end - headerEnd;
      buf.copy(this.body!, 0, headerEnd, end);
      this.bodyFill = available;
      return end;
    }
    this.startBody(length);
    return headerEnd;
  }

  private startBody(length: number): void {
    this.body = Buffer.allocUnsafe(length);
    this.bodyFill = 0;
    this.state = READ_BODY;
  }

  private deliver(body: Buffer): boolean {
    if (this.checksum) {
      const actual = checksumOf(body);
      if (actual !== this.expectedChecksum) {
        this.fail(new ConverseError('CHECKSUM_MISMATCH', `A frame's CRC-32 was 0x${actual.toString(16)} but the peer declared 0x${this.expectedChecksum.toString(16)}: the data was corrupted in transit or the peer is faulty. The connection was closed.`));
        return false;
      }
    }
    this.framesDelivered++;
    this.onFrame(body);
    return this.state !== FAILED;
  }

  private fail(error: ConverseError): -2 {
    this.state = FAILED;
    this.body = undefined;
    this.onError(error);
    return -2;
  }

  /** Stop decoding (the connection is going away). */
  stop(): void {
    this.state = FAILED;
    this.body = undefined;
    this.backlog = [];
  }

  /** True while a frame is partly received: EOF now truncates it, and a per-frame deadline applies. */
  get inFrame(): boolean {
    // After an error or stop() nothing is being received, whatever was gathered before.
    return this.state === READ_BODY || (this.state === READ_PREFIX && this.headerFill > 0);
  }
}
