import type { Duplex } from 'node:stream';
import { ConverseError, connectionClosedError, type ErrorCode, type RemoteErrorInfo } from '../errors.js';
import type { ValidationIssue } from '../protocol.js';
import { encodeFrame, packFrame, packedEnd, packedStart } from '../wire/codec.js';
import { FrameKind } from '../wire/constants.js';
import { describeThrown, errorPayload } from '../wire/envelope.js';
import type { SharedFrame } from '../wire/shared-frame.js';
import { abortedError } from './failures.js';
import { PauseReason, type ReadFlow } from './flow.js';
import type { FlightRecorder } from './recorder.js';
import type { ConnectionStats } from './stats.js';

/** The empty queues of a sender nobody waits on: shared, and replaced before anything is added (an empty array each cost 32 B a connection). */
const NO_WAITERS: Array<{ resolve(): void; reject(error: unknown): void }> = [];
const NO_WRITERS: Array<() => void> = [];

/** Where a stream's sender is kept, for the stream's shared 'drain' listener. */
const SENDER = Symbol('sender');
type OwnedStream = Duplex & { [SENDER]: Sender };

function onStreamDrain(this: Duplex): void {
  (this as OwnedStream)[SENDER].onDrain();
}

/**
 * Every byte this side sends leaves through here: the frame writers, corking, and the write
 * budget (`maxWriteBuffer`). The budget covers every frame: a frame written as the answer to
 * something the peer just sent may pass it by one frame (reading from the peer then pauses, so
 * it cannot make us write more), and every other producer (async replies and errors, stream
 * items, our own asks and tells) waits for room first; broadcasts skip a peer that has none.
 */
export class Sender {
  /** Per-frame CRC-32, as the handshake agreed. */
  checksum = false;
  /** The largest body the peer accepts (and we send), as the handshake agreed. */
  sendLimit: number;
  /** Frames may be written: the handshake is done. */
  framing = false;
  /** Sees every frame written (set by the core). */
  recorder: FlightRecorder | undefined;
  private corked = false;
  /** An end-of-tick flush is scheduled. */
  private tickScheduled = false;
  /** performance.now() when this tick's first frame was written: every frame of the tick is recorded at it. */
  private tickAt = 0;
  /**
   * Small frames waiting in the shared output slab (see `appendSmall`): bytes `runStart` …
   * `runEnd` of `runSlab`, given to the stream as one chunk when the batch leaves.
   */
  private runSlab: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;
  /** A frame in the run filled the budget: the run's write reports when it is handed over. */
  private runOver = false;
  /**
   * The peer is behind (bytes of an earlier batch were still queued when this one began): this
   * batch's chunks are copied into memory of their own. A view would keep the whole buffer it
   * points into (the shared slab, msgpackr's) alive while it waits, for as long as the peer
   * does not read: a few bytes of reply could hold hundreds of KiB each.
   */
  private copying = false;
  /** Where the frame of the last `pack` lies in its slab. */
  private packedFrom = 0;
  private packedTo = 0;
  /** Frames and bytes written since the stream was last corked. */
  private batchFrames = 0;
  private batchBytes = 0;
  /** A batch leaves once it holds this many frames: FIRST_BATCH, doubling within a tick up to MAX_BATCH. */
  private batchLimit = FIRST_BATCH;
  /** User sends waiting for the write buffer to fall under maxWriteBuffer (with a timeout). */
  private roomWaiters: Array<{ resolve(): void; reject(error: unknown): void }> = NO_WAITERS;
  /** Writers waiting for room, called in order, each once there is room (see `whenRoom`). */
  private writers: Array<() => void> = NO_WRITERS;
  /** Made the first time a frame is written at or over the budget (see `onFlushed`). */
  private flushedCallback: (() => void) | undefined;

  constructor(
    private readonly stream: Duplex,
    private readonly stats: ConnectionStats,
    readonly maxWriteBuffer: number,
    maxMessageSize: number,
    private readonly flow: ReadFlow,
  ) {
    this.sendLimit = maxMessageSize;
    // One listener function for every sender, which finds its sender on the stream (a closure
    // per connection cost ~0.1 KiB).
    (stream as OwnedStream)[SENDER] = this;
    stream.on('drain', onStreamDrain);
  }

  /** Called when a frame written at or over the budget has been handed to the OS (made on first use: most connections never need it). */
  private get onFlushed(): () => void {
    return (this.flushedCallback ??= () => this.checkRoom());
  }

  /** Bytes queued for the peer and not yet handed to the OS. */
  get buffered(): number {
    return this.stream.writableLength + (this.runEnd - this.runStart);
  }

  /** Bytes the OS has taken so far (progress, for a peer that stopped reading). */
  get bytesHandedOver(): number {
    return this.stats.bytesOut - this.buffered;
  }

  /** The stream is gone: nothing more can be written. */
  get closed(): boolean {
    return this.stream.destroyed;
  }

  /** No room: the budget is used up, or the stream can take nothing more (writers then wait for the release). */
  get full(): boolean {
    const stream = this.stream;
    return this.buffered >= this.maxWriteBuffer || stream.destroyed || stream.writableEnded;
  }

  /** Handshake bytes: before framing, never corked. */
  writeRaw(bytes: Buffer): void {
    if (this.stream.destroyed) return;
    this.flushRun();
    this.stats.bytesOut += bytes.length;
    this.stream.write(bytes);
  }

  /** End the stream after everything written so far (what waits in the batch included). */
  end(): void {
    this.flushRun();
    this.stream.end();
  }

  /**
   * All frames leave through here, in batches that leave in one writev each. A batch leaves at
   * the end of the tick, or as soon as it holds `batchLimit` frames or BATCH_BYTES bytes: the
   * peer starts on the first frames of a burst while this side is still encoding the rest, so
   * the two processes work in parallel instead of taking turns. The limit starts small (the
   * first frames leave at once) and doubles within a tick (a long burst costs few syscalls); a
   * lone frame, as in a sequential ask, still leaves at the end of its tick. Small frames are
   * copied back to back into a shared slab and leave as one chunk (see `appendSmall`); larger
   * ones go to the stream as they are, corked with the rest of the batch.
   * `type` is the message type, for the flight recorder, when the caller knows it.
   */
  writeFrame(frame: Buffer, type?: string): void {
    this.writeBytes(frame, 0, frame.length, type);
  }

  /** Write the frame `packFrame` just made (bytes `packedStart` … `packedEnd` of `slab`). */
  private writePacked(slab: Buffer, type: string | undefined): void {
    this.writeBytes(slab, packedStart, packedEnd, type);
  }

  /** Write the frame at bytes `start` … `end` of `buf`. */
  private writeBytes(buf: Buffer, start: number, end: number, type: string | undefined): void {
    const stream = this.stream;
    if (stream.destroyed || stream.writableEnded) return;
    if (!this.corked) {
      this.corked = true;
      this.copying = stream.writableLength > 0;
      stream.cork();
      if (!this.tickScheduled) {
        this.tickScheduled = true;
        this.tickAt = performance.now();
        process.nextTick(endOfTick, this);
      }
    }
    this.recorder?.frameOut(buf, start, end, this.checksum, type, this.tickAt);
    const length = end - start;
    this.stats.messagesOut++;
    this.stats.bytesOut += length;
    const queued = this.buffered + length;
    const over = queued > this.maxWriteBuffer;
    // At or over the budget, the write's callback tells when room comes back ('drain' alone does
    // not: Node emits it only past its own high-water mark, which may be above maxWriteBuffer).
    const notify = queued >= this.maxWriteBuffer;
    if (length <= SMALL_FRAME) {
      this.appendSmall(buf, start, end);
      if (notify) this.runOver = true;
    } else {
      this.flushRun();
      const frame = this.copying && pinsMuchMore(buf, length) ? ownCopy(buf, start, end) : start === 0 && end === buf.length ? buf : buf.subarray(start, end);
      if (notify) stream.write(frame, this.onFlushed);
      else stream.write(frame);
    }
    this.batchBytes += length;
    if (++this.batchFrames >= this.batchLimit || this.batchBytes >= BATCH_BYTES) {
      if (this.batchLimit < MAX_BATCH) this.batchLimit *= 2;
      this.uncorkNow();
    }
    // Over the limit (replies to a peer that asks faster than it reads): stop reading its asks
    // until it catches up, so it cannot make us buffer without bound.
    if (over) this.flow.pause(PauseReason.WRITES);
  }

  /**
   * Copy a small frame to the end of this sender's run in the shared slab. The run must be the
   * last bytes of the slab to grow in place: when another connection wrote behind it, or the
   * slab is full, the run leaves first and a new one starts.
   */
  private appendSmall(buf: Buffer, start: number, end: number): void {
    const length = end - start;
    if (this.runSlab !== undefined && (this.runSlab !== slab || this.runEnd !== slabPos || slabPos + length > SLAB_SIZE)) this.flushRun();
    if (slabPos + length > SLAB_SIZE) {
      // Never reused: a write may still hold a region of the old one.
      slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      slabPos = 0;
    }
    if (this.runSlab === undefined) {
      this.runSlab = slab;
      this.runStart = slabPos;
    }
    const out = slab;
    let at = slabPos;
    if (length <= 64) for (let i = start; i < end; i++) out[at++] = buf[i]!;
    else at += buf.copy(out, at, start, end);
    slabPos = at;
    this.runEnd = at;
  }

  /** The run leaves: one chunk to the stream (corked with the rest of the batch). */
  private flushRun(): void {
    const run = this.runSlab;
    if (run === undefined) return;
    this.runSlab = undefined;
    const chunk = this.copying ? ownCopy(run, this.runStart, this.runEnd) : run.subarray(this.runStart, this.runEnd);
    this.runStart = this.runEnd = 0;
    if (this.stream.destroyed) return;
    if (this.runOver) {
      this.runOver = false;
      this.stream.write(chunk, this.onFlushed);
    } else this.stream.write(chunk);
  }

  /**
   * Call `write` as soon as the write buffer is under the budget: now, or in order once the peer
   * has read enough. `write` must check that what it writes is still wanted.
   */
  whenRoom(write: () => void): void {
    if (this.writers.length === 0 && !this.full) write();
    else (this.writers === NO_WRITERS ? (this.writers = []) : this.writers).push(write);
  }

  /** Let the corked batch go now. */
  uncorkNow(): void {
    if (!this.corked) return;
    this.flushRun();
    this.corked = false;
    this.batchFrames = 0;
    this.batchBytes = 0;
    this.stream.uncork();
  }

  /** @internal The tick is over: what is corked leaves, and the next burst starts with a small batch. */
  endTick(): void {
    this.tickScheduled = false;
    this.batchLimit = FIRST_BATCH;
    this.uncorkNow();
  }

  /** A frame of the wire's own (PING, PONG, CANCEL, CREDIT, GOODBYE, STREAM_END). */
  writeControl(kind: number, id?: number, value?: number): void {
    if (this.stream.destroyed || !this.framing) return;
    this.writePacked(packFrame(id === undefined ? [kind] : value === undefined ? [kind, id] : [kind, id, value], this.checksum, this.sendLimit), undefined);
  }

  /** A frame of `[kind, …]` as agreed; throws when the value cannot be encoded or is too large. */
  encode(envelope: unknown[]): Buffer {
    return encodeFrame(envelope, this.checksum, this.sendLimit);
  }

  /** Encode and write `[kind, …]`; throws when the value cannot be encoded or is too large. */
  writeEnvelope(envelope: unknown[]): void {
    this.writePacked(packFrame(envelope, this.checksum, this.sendLimit), envelope[0] === FrameKind.TELL ? (envelope[1] as { type: string }).type : undefined);
  }

  /**
   * Encode `[kind, …]` now, to write with `writePackedFrame` right after (the frame stays in the
   * codec's slab, which later encodes never overwrite): for an ask, whose encoding must succeed
   * before it is registered. Throws when the value cannot be encoded or is too large.
   */
  pack(envelope: unknown[]): Buffer {
    const slab = packFrame(envelope, this.checksum, this.sendLimit);
    this.packedFrom = packedStart;
    this.packedTo = packedEnd;
    return slab;
  }

  /** Write what `pack` returned last. */
  writePackedFrame(slab: Buffer, type: string | undefined): void {
    this.writeBytes(slab, this.packedFrom, this.packedTo, type);
  }

  /** A broadcast's TELL, encoded once for every connection with the same agreement. */
  writeShared(frames: SharedFrame): void {
    this.writeFrame(frames.get(this.checksum, this.sendLimit), frames.type);
  }

  /** Answer ask `id` with `value`; a value that cannot be sent becomes the asker's REMOTE_ERROR. */
  writeReply(id: number, type: string, value: unknown): void {
    let slab: Buffer;
    try {
      slab = packFrame([FrameKind.REPLY, id, value], this.checksum, this.sendLimit);
    } catch (error) {
      this.writeRemoteError(id, type, error);
      return;
    }
    this.writePacked(slab, type);
  }

  /** Answer ask `id` with what its handler threw. */
  writeRemoteError(id: number, type: string, error: unknown): void {
    const remote = describeThrown(error);
    this.writeError(id, 'REMOTE_ERROR', `The peer's handler for "${type}" failed: ${remote.name}: ${remote.message}`, remote);
  }

  writeError(id: number, code: ErrorCode, message: string, remote?: RemoteErrorInfo, issues?: ValidationIssue[]): void {
    let slab: Buffer;
    try {
      slab = packFrame([FrameKind.ERROR, id, errorPayload(code, message, remote, issues)], this.checksum, this.sendLimit);
    } catch {
      // The remote error's own text was unencodable or huge: send a plain one.
      slab = packFrame([FrameKind.ERROR, id, { code, message: 'the error could not be encoded' }], this.checksum, this.sendLimit);
    }
    this.writePacked(slab, undefined);
  }

  /** Resolves once the stream has taken everything written so far. */
  flushed(streamError: Error | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.stream.destroyed) return reject(connectionClosedError(streamError));
      this.flushRun();
      this.stream.write(EMPTY, (error) => (error ? reject(connectionClosedError(error)) : resolve()));
    });
  }

  /** @internal The stream drained (its 'drain' listener). */
  onDrain(): void {
    this.checkRoom();
  }

  private checkRoom(): void {
    if (this.full) return;
    // Writers first, one at a time while there is room: each may fill it again.
    while (this.writers.length > 0 && !this.full) this.writers.shift()!();
    if (this.full) return;
    this.flow.resume(PauseReason.WRITES);
    if (this.roomWaiters.length > 0) {
      for (const waiter of this.roomWaiters.splice(0)) waiter.resolve();
    }
  }

  /** Resolves when user sends may go ahead: the write buffer is under maxWriteBuffer. */
  whenWritable(timeout: number, signal: AbortSignal | undefined, type: string): Promise<void> {
    return new Promise((resolve, reject) => {
      // An ask whose signal is already aborted fails as ABORTED, whatever the write buffer holds.
      if (signal?.aborted) {
        reject(abortedError(type, signal));
        return;
      }
      const timer = !Number.isFinite(timeout) ? undefined : setTimeout(() => {
        const index = this.roomWaiters.indexOf(waiter);
        if (index >= 0) this.roomWaiters.splice(index, 1);
        signal?.removeEventListener('abort', onAbort); // a long-lived signal must not collect one per timed-out send
        reject(
          new ConverseError(
            'TIMEOUT',
            `"${type}" could not be sent within ${timeout} ms: over ${this.maxWriteBuffer} bytes (maxWriteBuffer) are waiting for the peer to read them.`,
          ),
        );
      }, timeout);
      const onAbort = (): void => {
        clearTimeout(timer);
        const index = this.roomWaiters.indexOf(waiter);
        if (index >= 0) this.roomWaiters.splice(index, 1);
        reject(abortedError(type, signal!));
      };
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error: unknown) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      (this.roomWaiters === NO_WAITERS ? (this.roomWaiters = []) : this.roomWaiters).push(waiter);
    });
  }

  /** The connection is gone: every sender still waiting for room fails; writers run (and find it gone). */
  release(reason: ConverseError): void {
    for (const waiter of this.roomWaiters.splice(0)) waiter.reject(connectionClosedError(reason));
    for (const write of this.writers.splice(0)) write();
  }
}

const EMPTY = Buffer.alloc(0);
/** Frames up to this size are copied into the shared slab; larger ones are written as they are. */
const SMALL_FRAME = 4096;

/**
 * A view of `length` bytes of `buf` would keep much more than itself alive: the memory behind it
 * is over PINNED_PER_BYTE times its size. A large frame usually has its encoder's buffer nearly to
 * itself (msgpackr grows its buffer to about 4× the message that did not fit), so it is written as
 * it is even to a peer that is behind; copying every such frame would cost S3 a copy per message.
 */
function pinsMuchMore(buf: Buffer, length: number): boolean {
  return buf.buffer.byteLength > PINNED_PER_BYTE * length + PINNED_SLACK;
}
/** A queued view may keep at most this many times its own size alive (plus PINNED_SLACK: msgpackr rounds to 4 KiB). */
const PINNED_PER_BYTE = 4;
const PINNED_SLACK = 8192;

/** Bytes `start` … `end` of `buf` in an allocation of their own (not Node's shared pool either). */
function ownCopy(buf: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafeSlow(end - start);
  buf.copy(out, 0, start, end);
  return out;
}
/**
 * The process's output slab for small frames (one for every connection: an idle connection holds
 * none). Made at the first small frame; a full one is replaced, never reused.
 */
const SLAB_SIZE = 256 * 1024;
let slab: Buffer = Buffer.alloc(0);
let slabPos = SLAB_SIZE;
/** Frames in the first batch of a tick (then 2×, 4× … up to MAX_BATCH). */
const FIRST_BATCH = 8;
const MAX_BATCH = 128;
/** A batch of this many bytes leaves at once, whatever its count (large frames do not wait). */
const BATCH_BYTES = 64 * 1024;

function endOfTick(sender: Sender): void {
  sender.endTick();
}
