/**
 * The lifecycle deadlines of connections (the handshake's, the close's), kept outside XState.
 *
 * Why not the machine's `after`: every delayed event of an XState actor system is an entry in the
 * system's scheduler, and stopping any actor walks all of them (`scheduler.cancelAll`), so with N
 * connections handshaking or closing, stopping N of them cost O(N²); each `after` also cost a
 * Node timer and XState's bookkeeping on every accept.
 *
 * Deadlines of one duration expire in the order they were armed (the clock only moves forward),
 * so each distinct duration keeps one FIFO queue, a doubly linked list (arming appends, disarming
 * unlinks: both O(1)), and one Node timer, armed for the queue's head. A head disarmed early
 * leaves the timer as it is: it fires, finds a later head and re-arms for it. An emptied queue
 * clears its timer and is dropped, so nothing is left once no deadline is armed. Expiry is as
 * precise as a timer's (a millisecond or so late under no load); there is no polling tick.
 */

/** What a deadline tells when it expires. */
export interface DeadlineOwner {
  deadlineExpired(): void;
}

/**
 * One armable deadline (a connection has one: its handshake and its close never overlap). Its
 * fields are the queue's links; only this module touches them.
 */
export class Deadline {
  /** performance.now() at which it expires (meaningful while armed). */
  at = 0;
  /** The queue it is armed in; undefined when not armed. */
  queue: DeadlineQueue | undefined = undefined;
  prev: Deadline | undefined = undefined;
  next: Deadline | undefined = undefined;

  constructor(readonly owner: DeadlineOwner) {}

  get armed(): boolean {
    return this.queue !== undefined;
  }

  /** Expire `ms` from now (disarming it first if it was armed). Infinity means never: it is only disarmed. */
  arm(ms: number): void {
    this.disarm();
    if (ms === Infinity) return;
    let queue = queues.get(ms);
    if (queue === undefined) queues.set(ms, (queue = new DeadlineQueue(ms)));
    queue.append(this, performance.now() + ms);
  }

  /** Not to expire (nothing if it is not armed). */
  disarm(): void {
    this.queue?.remove(this);
  }
}

/** Node timers fire on the event loop's cached clock, up to about a millisecond before performance.now() says. */
const TIMER_SLACK_MS = 1;

/** The armed deadlines of one duration, in expiry order, and the timer for the first of them. */
export class DeadlineQueue {
  head: Deadline | undefined = undefined;
  tail: Deadline | undefined = undefined;
  size = 0;
  private timer: NodeJS.Timeout | undefined = undefined;

  constructor(readonly ms: number) {}

  append(deadline: Deadline, at: number): void {
    deadline.at = at;
    deadline.queue = this;
    deadline.prev = this.tail;
    deadline.next = undefined;
    if (this.tail === undefined) this.head = deadline;
    else this.tail.next = deadline;
    this.tail = deadline;
    this.size++;
    if (this.timer === undefined) this.schedule(this.ms);
  }

  remove(deadline: Deadline): void {
    const { prev, next } = deadline;
    if (prev === undefined) this.head = next;
    else prev.next = next;
    if (next === undefined) this.tail = prev;
    else next.prev = prev;
    deadline.prev = deadline.next = deadline.queue = undefined;
    if (--this.size === 0) this.drop();
  }

  private schedule(delay: number): void {
    // (An owner may arm a deadline of this duration while it fires: one timer still.)
    if (this.timer !== undefined) clearTimeout(this.timer);
    // Whole milliseconds, rounded up: Node keeps one timer list per distinct delay.
    this.timer = setTimeout(() => this.fire(), Math.ceil(delay));
    // The connection's socket keeps the process alive while it handshakes or closes, not its deadline.
    this.timer.unref();
  }

  /** The timer fired: expire every deadline that is due, then re-arm for the next one. */
  private fire(): void {
    this.timer = undefined;
    try {
      for (let head = this.head; head !== undefined; head = this.head) {
        const now = performance.now();
        if (head.at - now > TIMER_SLACK_MS) {
          this.schedule(head.at - now);
          return;
        }
        // Unlinked before its owner hears of it, which may arm or disarm deadlines of this queue.
        this.remove(head);
        head.owner.deadlineExpired();
      }
    } finally {
      // An owner that threw must not leave the deadlines behind it without a timer.
      if (this.timer === undefined && this.head !== undefined) this.schedule(Math.max(1, this.head.at - performance.now()));
    }
  }

  /** Emptied: no timer, and out of the registry (a later deadline of this duration makes a new queue). */
  private drop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (queues.get(this.ms) === this) queues.delete(this.ms);
  }
}

/** Process-wide: one queue per distinct duration that has an armed deadline. */
const queues = new Map<number, DeadlineQueue>();

/** How many deadlines are armed, and in how many queues (each with one timer): for tests and diagnostics. */
export function armedDeadlines(): { deadlines: number; queues: number } {
  let deadlines = 0;
  for (const queue of queues.values()) deadlines += queue.size;
  return { deadlines, queues: queues.size };
}
