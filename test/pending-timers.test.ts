/**
 * The pending table's one timer, on a fake clock (setTimeout, clearTimeout and performance.now):
 * when it is armed, for how long, when it is re-armed, and that it never polls.
 */
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConverseError } from '../src/errors.js';
import { MAX_TIMER_DELAY, PendingReplies, type PendingAsk } from '../src/pending.js';

type Settled = Array<[string, unknown]>;

function ask(timeout: number, settled: Settled = [], signal?: AbortSignal): PendingAsk {
  return {
    resolve: (value) => settled.push(['resolve', value]),
    reject: (error) => settled.push(['reject', error]),
    deadline: performance.now() + timeout,
    timeout,
    type: 'sum',
    signal,
    onAbort: undefined,
  };
}

/** Allocate an id and add an ask with `timeout`; returns the id. */
function addAsk(table: PendingReplies, timeout: number, settled: Settled = []): number {
  const id = table.allocateId();
  table.add(id, ask(timeout, settled));
  return id;
}

/** How many times the code under test called setTimeout since the spy was installed. */
let armed: { mock: { calls: unknown[][] } };

/** More arms than any test here needs: a table that polls is stopped here instead of spinning. */
const ARM_LIMIT = 100;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  const fakeSetTimeout = globalThis.setTimeout;
  armed = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((callback: () => void, ms?: number) => {
    if (armed.mock.calls.length > ARM_LIMIT) throw new Error(`the timer was armed more than ${ARM_LIMIT} times: the table polls`);
    return fakeSetTimeout(callback, ms);
  }) as typeof setTimeout);
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('PendingReplies timer', () => {
  it('times an ask out exactly when its deadline is reached, not a millisecond before', () => {
    const timedOut: number[] = [];
    const table = new PendingReplies((id) => timedOut.push(id));
    const settled: Settled = [];
    const id = addAsk(table, 100, settled);
    vi.advanceTimersByTime(100);
    expect(timedOut).toEqual([]);
    expect(table.get(id)).toBeDefined();
    // One more millisecond: setTimeout may fire early against performance.now(), hence the +1.
    vi.advanceTimersByTime(1);
    expect(timedOut).toEqual([id]);
    expect(table.size).toBe(0);
    expect(settled).toHaveLength(1);
    const error = settled[0]![1] as ConverseError;
    expect(settled[0]![0]).toBe('reject');
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toContain('"sum" within 100 ms');
    // Armed once for the whole wait: no polling.
    expect(armed.mock.calls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('times out in one sweep every ask whose deadline is reached at that moment (deadline <= now)', () => {
    const timedOut: number[] = [];
    const table = new PendingReplies((id) => timedOut.push(id));
    const first = addAsk(table, 10); // the timer fires at 11
    const second = addAsk(table, 11); // deadline 11: reached when the timer fires
    vi.advanceTimersByTime(11);
    expect(timedOut).toEqual([first, second]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('arms nothing for an ask without a timeout (Infinity) and never times it out', () => {
    const timedOut: number[] = [];
    const table = new PendingReplies((id) => timedOut.push(id));
    const settled: Settled = [];
    const id = addAsk(table, Infinity, settled);
    expect(armed.mock.calls).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10 * MAX_TIMER_DELAY);
    expect(timedOut).toEqual([]);
    expect(settled).toEqual([]);
    expect(table.get(id)).toBeDefined();
    table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
  });

  it('leaves no timer behind once only asks without a timeout remain', () => {
    const timedOut: number[] = [];
    const table = new PendingReplies((id) => timedOut.push(id));
    const forever = addAsk(table, Infinity);
    const short = addAsk(table, 20);
    vi.advanceTimersByTime(21);
    expect(timedOut).toEqual([short]);
    expect(table.get(forever)).toBeDefined();
    expect(vi.getTimerCount()).toBe(0);
    expect(armed.mock.calls).toHaveLength(1);
    table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
  });

  it('waits out a timeout longer than setTimeout can take (2^31 ms and more) in long steps, never in 1 ms ones', () => {
    const timedOut: number[] = [];
    const table = new PendingReplies((id) => timedOut.push(id));
    const timeout = 2 * MAX_TIMER_DELAY + 5_000; // about 50 days
    const id = addAsk(table, timeout);
    // Node (and the fake clock, which copies it) turns a delay above 2^31-1 ms into 1 ms.
    expect(armed.mock.calls).toHaveLength(1);
    expect(armed.mock.calls[0]![1]).toBe(MAX_TIMER_DELAY);
    vi.advanceTimersByTime(1_000);
    expect(armed.mock.calls).toHaveLength(1);
    expect(timedOut).toEqual([]);
    // After 2^31-1 ms the sweep finds nothing expired and arms again for the longest delay.
    vi.advanceTimersByTime(MAX_TIMER_DELAY - 1_000);
    expect(timedOut).toEqual([]);
    expect(armed.mock.calls).toHaveLength(2);
    expect(armed.mock.calls[1]![1]).toBe(MAX_TIMER_DELAY);
    vi.advanceTimersByTime(MAX_TIMER_DELAY);
    expect(armed.mock.calls).toHaveLength(3);
    expect(armed.mock.calls[2]![1]).toBe(5_000 + 1);
    vi.advanceTimersByTime(5_000);
    expect(timedOut).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(timedOut).toEqual([id]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('arms for exactly the time left plus one millisecond, and a deadline just inside the limit in one step', () => {
    const table = new PendingReplies(() => {});
    addAsk(table, 250);
    expect(armed.mock.calls[0]![1]).toBe(251);
    const other = new PendingReplies(() => {});
    addAsk(other, MAX_TIMER_DELAY - 1);
    expect(armed.mock.calls[1]![1]).toBe(MAX_TIMER_DELAY);
    table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
    other.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
  });

  it('re-arms after a sweep for the earliest deadline left, so later asks time out on time', () => {
    const timedOut: Array<[number, number]> = [];
    const table = new PendingReplies((id) => timedOut.push([id, performance.now()]));
    const start = performance.now();
    const a = addAsk(table, 10);
    const c = addAsk(table, 300);
    const b = addAsk(table, 100); // earlier than c though added after it
    const d = addAsk(table, 200); // neither the first nor the last slot holds the earliest
    vi.advanceTimersByTime(400);
    expect(timedOut.map(([id]) => id)).toEqual([a, b, d, c]);
    expect(timedOut.map(([, at]) => at - start)).toEqual([11, 101, 201, 301]);
    expect(armed.mock.calls).toHaveLength(4);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps the earlier timer an ask added by a timeout callback armed (the sweep does not replace it)', () => {
    const timedOut: Array<[number, number]> = [];
    let added = -1;
    const table = new PendingReplies((id) => {
      timedOut.push([id, performance.now()]);
      // The owner reacts to a timeout by asking again, with a shorter timeout than the rest.
      if (added === -1) added = addAsk(table, 20);
    });
    const start = performance.now();
    const late = addAsk(table, 1_000); // id 0, slot 0
    for (let i = 1; i < 15; i++) table.allocateId(); // ids 1-14 go unused
    const first = addAsk(table, 10); // id 15, the last of 16 slots
    vi.advanceTimersByTime(40);
    // The added ask took id 17 (16's slot is late's): slot 1, one the sweep had already passed.
    expect(added).toBe(17);
    expect(timedOut.map(([id]) => id)).toEqual([first, added]);
    expect(timedOut[1]![1] - start).toBe(11 + 21);
    vi.advanceTimersByTime(1_000);
    expect(timedOut.map(([id]) => id)).toEqual([first, added, late]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('tells the owner and the asker only after the table is settled: a callback that closes everything fails each ask once', () => {
    const failures: Array<[number, string]> = [];
    const settled: Settled = [];
    const table: PendingReplies = new PendingReplies(
      () => table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'closed by the timeout handler')),
      (id, _ask, error) => failures.push([id, error.code]),
    );
    const a = addAsk(table, 10, settled);
    const b = addAsk(table, 10, settled);
    const c = addAsk(table, 500, settled);
    vi.advanceTimersByTime(11);
    // a and b time out; the first callback closes the table, failing c; nothing twice.
    expect(failures).toContainEqual([a, 'TIMEOUT']);
    expect(failures).toContainEqual([b, 'TIMEOUT']);
    expect(failures).toContainEqual([c, 'CONNECTION_CLOSED']);
    expect(failures).toHaveLength(3);
    expect(settled).toHaveLength(3);
    expect(table.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not re-arm when an ask with the same or a later deadline is added', () => {
    const table = new PendingReplies(() => {});
    addAsk(table, 100);
    addAsk(table, 100); // same deadline: the armed timer serves both
    addAsk(table, 200);
    expect(armed.mock.calls).toHaveLength(1);
    addAsk(table, 50); // earlier: re-armed, the old timer cleared
    expect(armed.mock.calls).toHaveLength(2);
    expect(vi.getTimerCount()).toBe(1);
    table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
  });

  it('touch restarts a streamed ask\'s timeout, re-arming only when its new deadline is the earliest', () => {
    const timedOut: number[] = [];
    const table = new PendingReplies((id) => timedOut.push(id));
    const streamed = ask(100);
    const id = table.allocateId();
    table.add(id, streamed);
    const other = addAsk(table, 150);
    vi.advanceTimersByTime(90);
    table.touch(streamed); // deadline now 190: later than the armed 100, no re-arm
    expect(armed.mock.calls).toHaveLength(1);
    vi.advanceTimersByTime(70); // 160: the sweep at 101 re-armed for 150, which fired at 151
    expect(timedOut).toEqual([other]);
    vi.advanceTimersByTime(31); // 191
    expect(timedOut).toEqual([other, id]);
  });

  it('touch does not re-arm when the new deadline equals the armed one', () => {
    const table = new PendingReplies(() => {});
    addAsk(table, 100);
    const streamed = ask(100);
    table.add(table.allocateId(), streamed);
    table.touch(streamed); // still at time 0: deadline 100, as armed
    expect(armed.mock.calls).toHaveLength(1);
    table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
  });

  it('touch arms the timer for a stream whose deadline was suspended (Infinity)', () => {
    const timedOut: number[] = [];
    const table = new PendingReplies((id) => timedOut.push(id));
    const streamed = ask(50);
    streamed.deadline = Infinity; // out of credit: the consumer is slow, not the producer
    const id = table.allocateId();
    table.add(id, streamed);
    const later = addAsk(table, 1_000);
    vi.advanceTimersByTime(500);
    table.touch(streamed); // deadline 550, earlier than the armed 1,000
    expect(armed.mock.calls).toHaveLength(2);
    vi.advanceTimersByTime(51);
    expect(timedOut).toEqual([id]);
    vi.advanceTimersByTime(500);
    expect(timedOut).toEqual([id, later]);
  });

  it('rejectAll clears the timer', () => {
    const table = new PendingReplies(() => {});
    addAsk(table, 100);
    expect(vi.getTimerCount()).toBe(1);
    table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
    expect(vi.getTimerCount()).toBe(0);
    // A later ask arms a fresh timer (the table forgot the old deadline).
    addAsk(table, 500);
    expect(vi.getTimerCount()).toBe(1);
    table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
  });
});

describe('PendingReplies abort listeners', () => {
  function withSignal(table: PendingReplies, timeout: number, settled: Settled = []): { id: number; signal: AbortSignal } {
    const controller = new AbortController();
    const id = table.allocateId();
    const a = ask(timeout, settled, controller.signal);
    a.onAbort = () => {
      table.take(id);
    };
    controller.signal.addEventListener('abort', a.onAbort, { once: true });
    table.add(id, a);
    return { id, signal: controller.signal };
  }

  it('removes the listener when the ask is taken (its reply arrived)', () => {
    const table = new PendingReplies(() => {});
    const { id, signal } = withSignal(table, 1_000);
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    table.take(id);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('removes the listener when the ask times out', () => {
    const table = new PendingReplies(() => {});
    const { signal } = withSignal(table, 10);
    vi.advanceTimersByTime(11);
    expect(table.size).toBe(0);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('removes the listener when every ask is rejected', () => {
    const table = new PendingReplies(() => {});
    const { signal } = withSignal(table, 1_000);
    table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });
});
