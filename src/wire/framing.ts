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
 * after which the decoder ignores further input. With `ranges`, `onFrame` gets the chunk and the
 * body's range in it (no Buffer is made for a frame that lies in one chunk); without, it gets
 * the body alone (start 0, end its length).
 */
const READ_PREFIX = 0;
const READ_BODY = 1;
const FAILED = 2;
/** `parseHeader`: the header is not complete yet. */
const NEED_MORE = -1;

/** The backlog of a decoder that holds nothing back: shared, and replaced before anything is added. */
const NO_BACKLOG: Buffer[] = [];

export class FrameDecoder {
  private state = READ_PREFIX;
  /** Prefix + checksum bytes gathered so far when a header straddles chunks (made the first time one does). */
  private header: Buffer | undefined;
  private headerFill = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private expectedChecksum = 0;
  /** Frames delivered so far: with `inFrame`, lets a watchdog tell a stalled frame from a new one. */
  framesDelivered = 0;

  constructor(
    private readonly maxMessageSize: number,
    private readonly checksum: boolean,
    private readonly onFrame: (this: unknown, buf: Buffer, start: number, end: number) => void,
    private readonly onError: (this: unknown, error: ConverseError) => void,
    private readonly ranges = false,
    /**
     * `this` for both callbacks: an owner can pass its prototype methods and itself rather than
     * two closures made for every connection.
     */
    private readonly owner?: unknown,
  ) {}

  /** Frames received but held back while paused (the rest of a chunk, in order). Shared and empty until something is held back. */
  private backlog: Buffer[] = NO_BACKLOG;
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
    while (!this.paused && this.backlog.length > 0 && this.state !== FAILED) this.consume(this.backlog.shift()!, true);
  }

  /** The connection is closing: deliver whatever was held back, paused or not (nothing is lost). */
  flush(): void {
    this.flushing = true;
    this.paused = false;
    const rest = this.backlog;
    this.backlog = NO_BACKLOG;
    for (const chunk of rest) this.consume(chunk, true);
    this.flushing = false;
  }

  push(chunk: Buffer): void {
    this.consume(chunk, false);
  }

  /**
   * Decode a chunk. Every step below looks at `state` again, so a violation, or `stop()` called
   * from `onFrame`, ends the loop at once. The backlog is non-empty only while paused at a frame
   * boundary, so a new chunk then goes to its end, behind the held-back bytes.
   */
  private consume(chunk: Buffer, fromBacklog: boolean): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.state === READ_PREFIX) {
        if (this.paused && this.headerFill === 0) {
          // At a frame boundary while paused: keep the rest for later (in front when it came from the backlog).
          const rest = chunk.subarray(pos);
          if (this.backlog === NO_BACKLOG) this.backlog = [];
          if (fromBacklog) this.backlog.unshift(rest);
          else this.backlog.push(rest);
          return;
        }
        // Fast path: a whole header (and perhaps the whole frame) in this chunk.
        if (this.headerFill === 0) {
          const parsed = this.parseHeader(chunk, pos, end);
          if (parsed !== NEED_MORE) {
            pos = parsed;
            continue;
          }
        }
        // Slow path: gather header bytes one at a time (at most 13).
        const header = (this.header ??= Buffer.allocUnsafe(13));
        header[this.headerFill++] = chunk[pos++]!;
        if (this.parseHeader(header, 0, this.headerFill) !== NEED_MORE) this.headerFill = 0;
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
          this.deliver(body, 0, body.length);
        }
        continue;
      }
      return; // FAILED
    }
  }

  /**
   * Try to parse a header starting at `pos` in `buf` (the chunk, or the gathered header bytes).
   * Returns NEED_MORE, or the position up to which `buf` was used: after the header, after the
   * whole frame when it was there (delivered as a view, no copy), or `end` when the body is only
   * partly there (its start copied into the body buffer) or after a violation.
   */
  private parseHeader(buf: Buffer, pos: number, end: number): number {
    const first = buf[pos]!;
    let length: number;
    let prefix: number;
    if (first <= LENGTH_INLINE_MAX) {
      length = first;
      prefix = 1;
    } else if (first === LENGTH_U16) {
      if (end - pos < 3) return NEED_MORE;
      length = (buf[pos + 1]! << 8) | buf[pos + 2]!;
      prefix = 3;
    } else if (first === LENGTH_U32) {
      if (end - pos < 5) return NEED_MORE;
      length = buf.readUInt32BE(pos + 1);
      prefix = 5;
    } else if (first === LENGTH_U64) {
      if (end - pos < 9) return NEED_MORE;
      length = buf.readUInt32BE(pos + 1) * 0x100000000 + buf.readUInt32BE(pos + 5);
      prefix = 9;
    } else {
      this.fail(new ConverseError('PROTOCOL_ERROR', `The peer sent a frame with the reserved length marker 0x${first.toString(16)}. The connection was closed; the peer does not follow docs/PROTOCOL.md.`));
      return end;
    }
    if (length > this.maxMessageSize) {
      this.fail(new ConverseError('RECEIVED_MESSAGE_TOO_LARGE', `The peer sent a frame of ${length} bytes, over this side's maxMessageSize of ${this.maxMessageSize} bytes. The connection was closed; if such messages are expected, raise the maxMessageSize option of both listen() and connect() to at least ${length}.`));
      return end;
    }
    let headerEnd = pos + prefix;
    if (this.checksum) {
      if (end - headerEnd < CHECKSUM_SIZE) return NEED_MORE;
      this.expectedChecksum = buf.readUInt32BE(headerEnd);
      headerEnd += CHECKSUM_SIZE;
    }
    if (end - headerEnd >= length) {
      // The whole frame is here: deliver a view, no copy. (In the gathered header bytes only an
      // empty body can be "here": the header ends exactly at `end`.)
      const bodyEnd = headerEnd + length;
      this.deliver(buf, headerEnd, bodyEnd);
      return bodyEnd;
    }
    // The body is not all here: allocate it once, at its declared size, and fill in place.
    this.body = Buffer.allocUnsafe(length);
    this.bodyFill = buf.copy(this.body, 0, headerEnd, end);
    this.state = READ_BODY;
    return end;
  }

  /** The body is bytes `start` … `end` of `buf`. */
  private deliver(buf: Buffer, start: number, end: number): void {
    let body: Buffer | undefined;
    if (this.checksum) {
      body = buf.subarray(start, end);
      const actual = checksumOf(body);
      if (actual !== this.expectedChecksum) {
        this.fail(new ConverseError('CHECKSUM_MISMATCH', `A frame's CRC-32 was 0x${actual.toString(16)} but the peer declared 0x${this.expectedChecksum.toString(16)}: the data was corrupted in transit or the peer is faulty. The connection was closed.`));
        return;
      }
    }
    this.framesDelivered++;
    if (this.ranges) this.onFrame.call(this.owner, buf, start, end);
    else {
      body ??= start === 0 && end === buf.length ? buf : buf.subarray(start, end);
      this.onFrame.call(this.owner, body, 0, body.length);
    }
  }

  private fail(error: ConverseError): void {
    this.state = FAILED;
    this.body = undefined;
    this.onError.call(this.owner, error);
  }

  /** Stop decoding (the connection is going away). */
  stop(): void {
    this.state = FAILED;
    this.body = undefined;
    this.backlog = NO_BACKLOG;
  }

  /** True while a frame is partly received: EOF now truncates it, and a per-frame deadline applies. */
  get inFrame(): boolean {
    // After an error or stop() nothing is being received, whatever was gathered before.
    return this.state === READ_BODY || (this.state === READ_PREFIX && this.headerFill > 0);
  }
}
