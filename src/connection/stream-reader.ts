import { AsyncQueue } from '../async-queue.js';
import type { PendingAsk, PendingReplies } from '../pending.js';
import { checkTimeout } from '../timeouts.js';
import type { AskOptions } from '../types.js';
import { FrameKind } from '../wire/constants.js';
import { abortedError } from './failures.js';
import { assertSendable, type Lifecycle } from './lifecycle.js';
import type { Sender } from './sender.js';
import { outcomeOf, type TracedSpan } from '../otel.js';

/** What reading a streamed reply needs of the outbound side. */
export interface StreamAsker {
  readonly pending: PendingReplies;
  readonly sender: Sender;
  readonly life: Lifecycle;
  readonly replyTimeout: number;
  /** Set when the connection traces (OpenTelemetry): a span for the stream's ask, or none. */
  readonly tracing: unknown;
  traceOutgoing(kind: 'ask', type: string): TracedSpan | undefined;
}

/**
 * Ask for a streamed reply: items arrive as the peer's handler yields them, at most `window`
 * ahead of the consumer (credit-based backpressure). Breaking out of the loop cancels the
 * handler. `timeout` is the longest wait for the next item.
 */
export function readStream(asker: StreamAsker, event: { type: string }, options: (AskOptions & { window?: number }) | undefined): AsyncIterableIterator<unknown> {
  const { pending, sender, life } = asker;
  const window = Math.max(1, Math.floor(options?.window ?? 16));
  const items = new AsyncQueue<unknown>();
  let failure: unknown;
  let id = -1;
  let ask: PendingAsk | undefined;
  let consumed = 0;
  /** Items the producer may still send before it needs more credit. */
  let credit = window;
  /** The stream's span, when the connection traces (OpenTelemetry). */
  let span: TracedSpan | undefined;
  const start = (): void => {
    if (options?.timeout !== undefined) checkTimeout('timeout', options.timeout);
    const signal = options?.signal;
    assertSendable(life, event, signal);
    id = pending.allocateId();
    if (asker.tracing !== undefined) span = asker.traceOutgoing('ask', event.type);
    let frame: Buffer;
    try {
      // Packed now (a value that cannot be sent throws before the ask is registered) and written
      // below with nothing encoded between, as a plain ask is: the frame stays in the codec's slab.
      frame = sender.pack([FrameKind.ASK, id, event, span?.carrier === undefined ? { stream: window } : { stream: window, ...span.carrier }]);
    } catch (error) {
      span?.fail(outcomeOf(error), error);
      throw error;
    }
    const timeout = options?.timeout ?? asker.replyTimeout;
    ask = {
      resolve: (value) => {
        span?.ok();
        items.push(value); // a plain reply is a stream of one
        items.end();
      },
      reject: (error) => {
        span?.fail(outcomeOf(error), error);
        failure = error;
        items.end();
      },
      item: (value) => {
        items.push(value);
        // The window is full: the producer waits for us, so its timeout stops until we grant credit.
        if (--credit <= 0) ask!.deadline = Infinity;
      },
      end: () => {
        span?.ok();
        items.end();
      },
      deadline: performance.now() + timeout,
      timeout,
      type: event.type,
      signal: undefined,
      onAbort: undefined,
    };
    if (signal !== undefined) {
      ask.signal = signal;
      ask.onAbort = () => {
        if (pending.take(id) === undefined) return;
        sender.writeControl(FrameKind.CANCEL, id);
        failure = abortedError(event.type, signal);
        span?.fail('ABORTED', failure);
        items.end();
        life.settled();
      };
      signal.addEventListener('abort', ask.onAbort, { once: true });
    }
    pending.add(id, ask);
    sender.writePackedFrame(frame, event.type);
  };
  const iterator: AsyncIterableIterator<unknown> = {
    next: async () => {
      if (ask === undefined) start();
      else if (credit > 0) pending.touch(ask); // a slow consumer is not a slow producer
      const next = await items.next();
      if (next.done) {
        if (failure !== undefined) throw failure;
        return next;
      }
      // Grant more credit once half the window has been consumed.
      if (++consumed >= Math.ceil(window / 2) && pending.get(id) !== undefined) {
        sender.writeControl(FrameKind.CREDIT, id, consumed);
        credit += consumed;
        consumed = 0;
        pending.touch(ask!); // the producer may go on: its timeout runs again
      }
      return next;
    },
    return: async () => {
      if (id >= 0 && pending.take(id) !== undefined) {
        sender.writeControl(FrameKind.CANCEL, id);
        span?.cancelled(); // the consumer stopped early: not a failure
        life.settled();
      }
      items.end();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
