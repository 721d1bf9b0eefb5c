import { ConverseError, connectionClosedError } from './errors.js';
import type { PendingTable } from '../machines/connection.machine.js';

/**
 * The pending-reply table of one connection: asks this side sent and still waits on.
 *
 * Plain code on purpose (see ../shared/notes/xstate.md §2.6), and one timer per connection
 * armed for the earliest deadline rather than a timer per ask. Asks that share a timeout have
 * increasing deadlines, so adding one never re-arms the timer; the timer only fires when
 * something may actually have expired.
 *
 * The table is an open array of slots indexed by `id & mask`, not a Map: ids only need to be
 * unique among outstanding asks, so `allocateId` simply skips ids whose slot is taken. With a
 * Map, hundreds of asks in flight made V8 rebuild its hash table every few hundred inserts, and
 * once a table had been promoted to the old generation the retired tables and the asks they held
 * survived young collections — measured as half of a pipelining client's CPU spent in GC
 * (bench/RESULTS.md). A slot array allocates nothing per ask.
 */
export interface PendingAsk {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** performance.now() value at which the ask times out; `Infinity`: never (no timer is armed for it). */
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

const INITIAL_SLOTS = 16;
/**
 * The table of a connection that has not asked yet: no slots (it costs nothing until the first
 * ask). Shared and never written (every write follows `allocateId`, which replaces it); not
 * frozen, so that slot reads see one kind of array.
 */
const NO_SLOTS: ReadonlyArray<PendingAsk | undefined> = [];
const NO_SLOT_IDS = new Uint32Array(0);
/**
 * The longest delay `setTimeout` honours: Node turns anything above 2^31-1 ms into 1 ms. A
 * deadline further away arms the timer for this long; the sweep then finds nothing expired and
 * arms it again for what is left.
 */
export const MAX_TIMER_DELAY = 2 ** 31 - 1;
/** Taken slots `allocateId` steps over before it grows the table. */
const MAX_PROBES = 8;

export class PendingReplies implements PendingTable {
  /** Made at the first ask (`grow`): a server's connections often never ask. */
  private slots = NO_SLOTS as Array<PendingAsk | undefined>;
  /** The id of the ask in each slot (meaningful only where the slot is taken). */
  private slotIds = NO_SLOT_IDS;
  /** 0 while there are no slots: every id maps to index 0, which an empty array reads as free… */
  private mask = 0;
  private count = 0;
  private nextId = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDeadline = Infinity;

  constructor(
    /** Called for each ask that timed out (the connection tells the peer to cancel it). */
    private readonly onTimeout: (this: unknown, id: number, ask: PendingAsk) => void,
    /** Called for each ask this table fails (timeout or close), before it is rejected; for tracing. */
    private readonly onFailed?: (this: unknown, id: number, ask: PendingAsk, error: ConverseError) => void,
    /**
     * `this` for both callbacks: an owner can pass its prototype methods and itself rather than
     * two closures made for every connection.
     */
    private readonly owner?: unknown,
  ) {}

  get size(): number {
    return this.count;
  }

  /** The asks waiting, with their ids (for work in flight). */
  *entries(): IterableIterator<[number, PendingAsk]> {
    for (let i = 0; i < this.slots.length; i++) {
      const ask = this.slots[i];
      if (ask !== undefined) yield [this.slotIds[i]!, ask];
    }
  }

  /** Serialised (by inspectors) as a count: the table itself stays private. */
  toJSON(): object {
    return { size: this.count };
  }

  /**
   * A fresh id: a uint32 counter that skips ids whose slot is taken (so it is unique among the
   * asks outstanding); the table doubles when too many slots in a row are taken.
   */
  allocateId(): number {
    // (…so the first ask makes the slots before it looks at any.)
    if (this.slots.length === 0) this.grow();
    for (;;) {
      for (let probe = 0; probe < MAX_PROBES; probe++) {
        const id = this.nextId;
        this.nextId = (id + 1) >>> 0;
        if (this.slots[id & this.mask] === undefined) return id;
      }
      this.grow();
    }
  }

  /** Insert an ask under an id from `allocateId` (its slot is free). */
  add(id: number, ask: PendingAsk): void {
    const slot = id & this.mask;
    this.slots[slot] = ask;
    this.slotIds[slot] = id;
    this.count++;
    if (ask.deadline < this.timerDeadline) this.arm(ask.deadline);
  }

  get(id: number): PendingAsk | undefined {
    const slot = id & this.mask;
    const ask = this.slots[slot];
    return ask !== undefined && this.slotIds[slot] === id ? ask : undefined;
  }

  private grow(): void {
    const size = Math.max(INITIAL_SLOTS, this.slots.length * 2);
    const slots = new Array<PendingAsk | undefined>(size).fill(undefined);
    const slotIds = new Uint32Array(size);
    const mask = size - 1;
    for (let i = 0; i < this.slots.length; i++) {
      const ask = this.slots[i];
      if (ask === undefined) continue;
      const id = this.slotIds[i]!;
      // Distinct under the old mask means distinct under the wider one: no collisions.
      slots[id & mask] = ask;
      slotIds[id & mask] = id;
    }
    this.slots = slots;
    this.slotIds = slotIds;
    this.mask = mask;
  }

  /** An item of a streamed ask arrived: its timeout starts again. */
  touch(ask: PendingAsk): void {
    ask.deadline = performance.now() + ask.timeout;
    // A stream's deadline may have been suspended (Infinity) while no timer was armed for it.
    if (ask.deadline < this.timerDeadline) this.arm(ask.deadline);
  }

  /** Remove and return an ask (a reply arrived, or it was aborted). */
  take(id: number): PendingAsk | undefined {
    const slot = id & this.mask;
    const ask = this.slots[slot];
    if (ask === undefined || this.slotIds[slot] !== id) return undefined;
    this.slots[slot] = undefined;
    this.count--;
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
    const asks: Array<[number, PendingAsk]> = [];
    for (let i = 0; i < this.slots.length; i++) {
      const ask = this.slots[i];
      if (ask === undefined) continue;
      asks.push([this.slotIds[i]!, ask]);
      this.slots[i] = undefined;
    }
    this.count = 0;
    for (const [id, ask] of asks) {
      if (ask.onAbort !== undefined) ask.signal!.removeEventListener('abort', ask.onAbort);
      this.onFailed?.call(this.owner, id, ask, error);
      ask.reject(error);
    }
  }

  private arm(deadline: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerDeadline = deadline;
    // +1: setTimeout may fire a fraction of a millisecond early relative to performance.now().
    const delay = Math.max(0, Math.ceil(deadline - performance.now())) + 1;
    this.timer = setTimeout(() => this.sweep(), Math.min(delay, MAX_TIMER_DELAY));
    this.timer.unref();
  }

  /**
   * Time out every expired ask. The table is settled first (expired asks taken, the timer armed
   * for the earliest deadline left) and only then are the owner and the askers told, so a
   * callback that adds an ask, takes one or rejects them all sees a consistent table, and an
   * ask it adds keeps the earlier timer it armed.
   */
  private sweep(): void {
    this.timer = undefined;
    this.timerDeadline = Infinity;
    const now = performance.now();
    let next = Infinity;
    const expired: Array<[number, PendingAsk]> = [];
    for (let i = 0; i < this.slots.length; i++) {
      const ask = this.slots[i];
      if (ask === undefined) continue;
      if (ask.deadline <= now) {
        const id = this.slotIds[i]!;
        this.take(id);
        expired.push([id, ask]);
      } else if (ask.deadline < next) {
        next = ask.deadline;
      }
    }
    if (next !== Infinity) this.arm(next);
    for (const [id, ask] of expired) {
      this.onTimeout.call(this.owner, id, ask);
      const error = new ConverseError(
        'TIMEOUT',
        `No reply to "${ask.type}" within ${ask.timeout} ms. The peer may be slow or stuck; raise the timeout (ask option \`timeout\` or \`replyTimeout\`) if the work is expected to take longer.`,
      );
      this.onFailed?.call(this.owner, id, ask, error);
      ask.reject(error);
    }
  }
}
