import { ConverseError, connectionClosedError } from './errors.js';
import type { PendingTable } from '../machines/connection.machine.js';

/**
 * The pending-reply table of one connection: asks this side sent and still waits on.
 *
 * Plain code on purpose (see ../shared/notes/xstate.md §2.6): a Map keyed by a per-connection
 * uint32 id, and one timer per connection armed for the earliest deadline rather than a timer
 * per ask. Asks that share a timeout have increasing deadlines, so adding one never re-arms the
 * timer; the timer only fires when something may actually have expired.
 */
export interface PendingAsk {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** performance.now() value after which the ask times out. */
  deadline: number;
  timeout: number;
  /** The message type, for error messages. */
  type: string;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Set for a streamed ask: receives each item (the timeout then runs between items). */
  item?: (value: unknown) => void;
  /** Set for a streamed ask: the stream ended (STREAM_END). */
  end?: () => void;
}

export class PendingReplies implements PendingTable {
  private readonly asks = new Map<number, PendingAsk>();
  private nextId = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDeadline = Infinity;

  constructor(
    /** Called for each ask that timed out (the connection tells the peer to cancel it). */
    private readonly onTimeout: (id: number, ask: PendingAsk) => void,
    /** Called for each ask this table fails (timeout or close), before it is rejected; for tracing. */
    private readonly onFailed?: (id: number, ask: PendingAsk, error: ConverseError) => void,
  ) {}

  get size(): number {
    return this.asks.size;
  }

  /** Serialised (by inspectors) as a count: the table itself stays private. */
  toJSON(): object {
    return { size: this.asks.size };
  }

  /** A fresh id: a uint32 counter that skips ids still in use after wrapping. */
  allocateId(): number {
    let id = this.nextId;
    while (this.asks.has(id)) id = (id + 1) >>> 0;
    this.nextId = (id + 1) >>> 0;
    return id;
  }

  add(id: number, ask: PendingAsk): void {
    this.asks.set(id, ask);
    if (ask.deadline < this.timerDeadline) this.arm(ask.deadline);
  }

  get(id: number): PendingAsk | undefined {
    return this.asks.get(id);
  }

  /** An item of a streamed ask arrived: its timeout starts again. */
  touch(ask: PendingAsk): void {
    ask.deadline = performance.now() + ask.timeout;
    // A stream's deadline may have been suspended (Infinity) while no timer was armed for it.
    if (ask.deadline < this.timerDeadline) this.arm(ask.deadline);
  }

  /** Remove and return an ask (a reply arrived, or it was aborted). */
  take(id: number): PendingAsk | undefined {
    const ask = this.asks.get(id);
    if (ask === undefined) return undefined;
    this.asks.delete(id);
    if (ask.onAbort !== undefined) ask.signal!.removeEventListener('abort', ask.onAbort);
    return ask;
  }

  rejectAll(reason: ConverseError): void {
    // A pending ask fails with CONNECTION_CLOSED whatever closed the connection (the contract);
    // the connection-level reason (RECEIVED_MESSAGE_TOO_LARGE, DECODE_FAILED …) is its `cause`.
    const error = reason.code === 'CONNECTION_CLOSED' ? reason : connectionClosedError(reason);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDeadline = Infinity;
    const asks = [...this.asks];
    this.asks.clear();
    for (const [id, ask] of asks) {
      if (ask.onAbort !== undefined) ask.signal!.removeEventListener('abort', ask.onAbort);
      this.onFailed?.(id, ask, error);
      ask.reject(error);
    }
  }

  private arm(deadline: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerDeadline = deadline;
    // +1: setTimeout may fire a fraction of a millisecond early relative to performance.now().
    this.timer = setTimeout(() => this.sweep(), Math.max(0, Math.ceil(deadline - performance.now())) + 1);
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = undefined;
    this.timerDeadline = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [id, ask] of this.asks) {
      if (ask.deadline <= now) {
        this.take(id);
        this.onTimeout(id, ask);
        const error = new ConverseError(
          'TIMEOUT',
          `No reply to "${ask.type}" within ${ask.timeout} ms. The peer may be slow or stuck; raise the timeout (ask option \`timeout\` or \`replyTimeout\`) if the work is expected to take longer.`,
        );
        this.onFailed?.(id, ask, error);
        ask.reject(error);
      } else if (ask.deadline < next) {
        next = ask.deadline;
      }
    }
    if (next !== Infinity) this.arm(next);
  }
}
