import { ConverseError } from '../errors.js';
import { channels } from '../diagnostics.js';
import { PendingReplies, type PendingAsk } from '../pending.js';
import { checkTimeout } from '../timeouts.js';
import type { AskOptions } from '../types.js';
import { FrameKind } from '../wire/constants.js';
import { errorFromWire } from '../wire/envelope.js';
import { abortedError, badMessageError, isMessage, protocolError } from './failures.js';
import { assertSendable, unavailable, type Lifecycle } from './lifecycle.js';
import type { Sender } from './sender.js';
import type { ConnectionStats } from './stats.js';
import { readStream } from './stream-reader.js';
import { outcomeOf, type TracedSpan, type Tracing } from '../otel.js';

/**
 * What this side sends and waits on: asks and tells, and the settling of each ask by the
 * peer's REPLY, ERROR, STREAM_ITEM or STREAM_END, next to where asks start. The pending-reply
 * table correlates them by id.
 */
export class Outbound {
  readonly pending: PendingReplies;

  constructor(
    readonly sender: Sender,
    readonly life: Lifecycle,
    private readonly stats: ConnectionStats,
    readonly replyTimeout: number,
    /** OpenTelemetry, when this connection traces (see otel.ts); undefined costs one branch per message. */
    readonly tracing: Tracing | undefined = undefined,
  ) {
    this.pending = new PendingReplies(this.askTimedOut, this.askFailed, this);
  }

  /** An ask timed out: the peer is told to cancel it. (Called by the pending table with `this` the outbound.) */
  private askTimedOut(id: number): void {
    this.sender.writeControl(FrameKind.CANCEL, id);
    this.life.settled();
  }

  /** An ask failed (timeout or close), before it is rejected: for diagnostics. */
  private askFailed(id: number, ask: PendingAsk, error: ConverseError): void {
    if (channels.askError.hasSubscribers) channels.askError.publish({ connection: this.life.facade, id, type: ask.type, error });
  }

  ask(event: { type: string }, options: AskOptions | undefined): Promise<unknown> {
    if (this.sender.full && this.life.phase === 'active') {
      try {
        if (options?.timeout !== undefined) checkTimeout('timeout', options.timeout);
      } catch (error) {
        return Promise.reject(error);
      }
      // Wait for room rather than grow the write buffer without bound; the wait counts
      // against the ask's timeout.
      const timeout = options?.timeout ?? this.replyTimeout;
      const started = performance.now();
      return this.sender
        .whenWritable(timeout, options?.signal, event?.type)
        .then(() => this.startAsk(event, { signal: options?.signal, timeout: Math.max(0, timeout - (performance.now() - started)) }));
    }
    try {
      return this.startAsk(event, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * For `send`: undefined when a user send may be written now, else a promise of the options to
   * send it with once there is room: the wait counts against its timeout, as for `ask`.
   */
  waitForRoom(options: AskOptions | undefined, type: string): Promise<AskOptions> | undefined {
    if (!this.sender.full || this.life.phase !== 'active') return undefined;
    if (options?.timeout !== undefined) checkTimeout('timeout', options.timeout);
    const timeout = options?.timeout ?? this.replyTimeout;
    const started = performance.now();
    return this.sender
      .whenWritable(timeout, options?.signal, type)
      .then(() => ({ signal: options?.signal, timeout: Math.max(0, timeout - (performance.now() - started)) }));
  }

  /**
   * Write an ask and return its reply promise. Throws (synchronously) when the ask cannot be
   * sent at all: connection not active, bad event, encoding failure, already-aborted signal.
   */
  startAsk(event: { type: string }, options: AskOptions | undefined): Promise<unknown> {
    if (options?.timeout !== undefined) checkTimeout('timeout', options.timeout);
    const signal = options?.signal;
    assertSendable(this.life, event, signal);
    const id = this.pending.allocateId();
    const span = this.tracing !== undefined ? this.traceOutgoing('ask', event.type) : undefined;
    // Encoded before the ask is registered (a value that cannot be sent throws here), written
    // right after, with nothing encoded between: the frame stays in the codec's slab until then.
    let frame: Buffer;
    if (span === undefined) frame = this.sender.pack([FrameKind.ASK, id, event]);
    else {
      try {
        frame = this.sender.pack(span.carrier === undefined ? [FrameKind.ASK, id, event] : [FrameKind.ASK, id, event, span.carrier]);
      } catch (error) {
        span.fail(outcomeOf(error), error);
        throw error;
      }
    }
    const timeout = options?.timeout ?? this.replyTimeout;
    // The promise's resolve/reject are taken by a shared executor: no closure (and no context
    // for this method's variables) is made per ask unless there is a signal to watch.
    const reply = new Promise(takeSettlers);
    const ask: PendingAsk = { resolve: takenResolve, reject: takenReject, deadline: performance.now() + timeout, timeout, type: event.type, signal: undefined, onAbort: undefined };
    if (span !== undefined) endWithAsk(ask, span);
    if (signal !== undefined) this.watchAbort(id, ask, event.type, signal);
    this.pending.add(id, ask);
    this.sender.writePackedFrame(frame, event.type);
    if (channels.askStart.hasSubscribers) channels.askStart.publish({ connection: this.life.facade, id, event });
    return reply;
  }

  /** Ask `id` is rejected with ABORTED, and the peer told to cancel, when `signal` aborts. */
  private watchAbort(id: number, ask: PendingAsk, type: string, signal: AbortSignal): void {
    ask.signal = signal;
    ask.onAbort = () => {
      if (this.pending.take(id) === undefined) return;
      this.sender.writeControl(FrameKind.CANCEL, id);
      const error = abortedError(type, signal);
      if (channels.askError.hasSubscribers) channels.askError.publish({ connection: this.life.facade, id, type, error });
      ask.reject(error);
      this.life.settled();
    };
    signal.addEventListener('abort', ask.onAbort, { once: true });
  }

  /** Ask for a streamed reply (see stream-reader.ts). */
  stream(event: { type: string }, options: (AskOptions & { window?: number }) | undefined): AsyncIterableIterator<unknown> {
    return readStream(this, event, options);
  }

  tell(event: { type: string }): Promise<void> {
    if (this.life.phase !== 'active') return Promise.reject(unavailable(this.life));
    if (this.sender.full) {
      return this.sender.whenWritable(this.replyTimeout, undefined, event?.type).then(() => this.tell(event));
    }
    if (!isMessage(event)) return Promise.reject(badMessageError());
    const span = this.tracing !== undefined ? this.traceOutgoing('tell', event.type) : undefined;
    try {
      // Trace context rides on a TELL only to a peer that said it reads it (a third element is otherwise a protocol error).
      this.sender.writeEnvelope(span?.carrier !== undefined && this.life.peerReadsTraceContext ? [FrameKind.TELL, event, span.carrier] : [FrameKind.TELL, event]);
    } catch (error) {
      span?.fail(outcomeOf(error), error);
      return Promise.reject(error);
    }
    span?.ok();
    return Promise.resolve();
  }

  /** A span for an ask or tell this side sends; none for the library's own `$…` types. */
  traceOutgoing(kind: 'ask' | 'tell', type: string): TracedSpan | undefined {
    if (type.charCodeAt(0) === 0x24) return undefined;
    return this.tracing!.outgoing(kind, type, (this.life.facade as { id?: string } | undefined)?.id);
  }

  // ── The peer settles our asks ───────────────────────────────────────────────────────────

  onReply(id: number, value: unknown): void {
    const ask = this.pending.take(id);
    if (ask === undefined) {
      this.stats.lateReplies++;
      return;
    }
    if (channels.askEnd.hasSubscribers) channels.askEnd.publish({ connection: this.life.facade, id, type: ask.type });
    ask.resolve(value);
    this.life.settled();
  }

  onError(id: number, payload: unknown): void {
    const ask = this.pending.take(id);
    if (ask === undefined) {
      this.stats.lateReplies++;
      return;
    }
    const error = errorFromWire(payload, ask.type);
    if (channels.askError.hasSubscribers) channels.askError.publish({ connection: this.life.facade, id, type: ask.type, error });
    ask.reject(error);
    this.life.settled();
  }

  onStreamItem(id: number, value: unknown): void {
    const ask = this.pending.get(id);
    if (ask === undefined) {
      this.stats.lateReplies++;
      return;
    }
    if (ask.item === undefined) {
      // Stream frames answer only an ASK that asked for a stream (§6.7).
      this.life.fail(protocolError(`it answered the plain ASK ${id} with a STREAM_ITEM`));
      return;
    }
    this.pending.touch(ask);
    ask.item(value);
  }

  onStreamEnd(id: number): void {
    const found = this.pending.get(id);
    if (found === undefined) {
      this.stats.lateReplies++;
      return;
    }
    if (found.end === undefined) {
      this.life.fail(protocolError(`it answered the plain ASK ${id} with a STREAM_END`));
      return;
    }
    const ask = this.pending.take(id)!;
    if (channels.askEnd.hasSubscribers) channels.askEnd.publish({ connection: this.life.facade, id, type: ask.type });
    ask.end!();
    this.life.settled();
  }

  /** The connection is gone: every ask still waiting fails with `reason`. */
  release(reason: ConverseError): void {
    this.pending.rejectAll(reason);
  }
}

/** The ask's span ends as the ask settles (made only when tracing: two closures per ask). */
function endWithAsk(ask: PendingAsk, span: TracedSpan): void {
  const { resolve, reject } = ask;
  ask.resolve = (value) => {
    span.ok();
    resolve(value);
  };
  ask.reject = (error) => {
    span.fail(outcomeOf(error), error);
    reject(error);
  };
}

// The settlers of the promise `new Promise(takeSettlers)` just made (the executor runs at once).
let takenResolve: (value: unknown) => void = () => {};
let takenReject: (error: unknown) => void = () => {};
function takeSettlers(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
  takenResolve = resolve;
  takenReject = reject;
}
