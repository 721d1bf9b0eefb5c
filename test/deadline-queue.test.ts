/**
 * The lifecycle deadlines' queues (src/connection/deadline-queue.ts) on a fake clock: expiry at
 * the deadline, in order, across durations; disarming; Infinity; one timer per duration; nothing
 * left armed once every deadline is disarmed or expired.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadline, armedDeadlines } from '../src/connection/deadline-queue.js';

/** The names of the deadlines that expired, in order. */
let expired: string[];

function deadline(name: string, onExpire?: () => void): Deadline {
  return new Deadline({
    deadlineExpired: () => {
      expired.push(name);
      onExpire?.();
    },
  });
}

/** How many times the queues called setTimeout since the spy was installed. */
let timersArmed: { mock: { calls: unknown[][] } };

beforeEach(() => {
  expired = [];
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  timersArmed = vi.spyOn(globalThis, 'setTimeout');
});

afterEach(() => {
  // Every test leaves nothing armed: no deadline, no queue, no timer.
  expect(armedDeadlines()).toEqual({ deadlines: 0, queues: 0 });
  expect(vi.getTimerCount()).toBe(0);
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('Deadline', () => {
  it('expires when its time is reached, not a millisecond before the timer could fire', () => {
    const a = deadline('a');
    a.arm(100);
    expect(a.armed).toBe(true);
    vi.advanceTimersByTime(98);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(2);
    expect(expired).toEqual(['a']);
    expect(a.armed).toBe(false);
  });

  it('expires deadlines of one duration in the order they were armed, with one timer for the queue', () => {
    const a = deadline('a');
    const b = deadline('b');
    const c = deadline('c');
    a.arm(100);
    vi.advanceTimersByTime(10);
    b.arm(100);
    vi.advanceTimersByTime(10);
    c.arm(100);
    expect(armedDeadlines()).toEqual({ deadlines: 3, queues: 1 });
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(80);
    expect(expired).toEqual(['a']);
    vi.advanceTimersByTime(10);
    expect(expired).toEqual(['a', 'b']);
    vi.advanceTimersByTime(10);
    expect(expired).toEqual(['a', 'b', 'c']);
    // One timer armed when the queue was made, one re-arm per later head.
    expect(timersArmed.mock.calls.length).toBe(3);
  });

  it('expires deadlines that fall due together in one timer callback', () => {
    const all = ['a', 'b', 'c', 'd'].map((name) => deadline(name));
    for (const d of all) d.arm(50);
    vi.advanceTimersByTime(50);
    expect(expired).toEqual(['a', 'b', 'c', 'd']);
    expect(timersArmed.mock.calls.length).toBe(1);
  });

  it('a disarmed deadline never expires; disarming the head leaves the others on time', () => {
    const a = deadline('a');
    const b = deadline('b');
    const c = deadline('c');
    a.arm(100);
    vi.advanceTimersByTime(20);
    b.arm(100);
    c.arm(100);
    a.disarm();
    b.disarm();
    expect(a.armed || b.armed).toBe(false);
    vi.advanceTimersByTime(99);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['c']);
  });

  it('the last deadline of a queue disarmed clears its timer and drops the queue', () => {
    const a = deadline('a');
    a.arm(5000);
    expect(vi.getTimerCount()).toBe(1);
    a.disarm();
    a.disarm(); // twice is nothing
    expect(vi.getTimerCount()).toBe(0);
    expect(armedDeadlines()).toEqual({ deadlines: 0, queues: 0 });
  });

  it('keeps a queue and a timer per distinct duration, and expires across them by time', () => {
    const long = deadline('long 300');
    const short = deadline('short 50');
    const middle = deadline('middle 120');
    long.arm(300);
    short.arm(50);
    vi.advanceTimersByTime(10);
    middle.arm(110);
    expect(armedDeadlines()).toEqual({ deadlines: 3, queues: 3 });
    expect(vi.getTimerCount()).toBe(3);
    vi.advanceTimersByTime(300);
    expect(expired).toEqual(['short 50', 'middle 120', 'long 300']);
  });

  it('Infinity never expires and arms nothing; arming again replaces the deadline', () => {
    const a = deadline('a');
    a.arm(Infinity);
    expect(a.armed).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    a.arm(100);
    a.arm(Infinity); // replaces: disarmed
    vi.advanceTimersByTime(2 ** 31 - 1);
    expect(expired).toEqual([]);
    a.arm(100);
    vi.advanceTimersByTime(50);
    a.arm(200); // moved to another queue
    vi.advanceTimersByTime(100);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(expired).toEqual(['a']);
  });

  it('an owner may arm deadlines of the same duration while it hears of its expiry: still one timer, all on time', () => {
    const later = deadline('later');
    const first = deadline('first', () => later.arm(100));
    const second = deadline('second');
    first.arm(100);
    second.arm(100);
    vi.advanceTimersByTime(100);
    expect(expired).toEqual(['first', 'second']);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(99);
    expect(expired).toEqual(['first', 'second']);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['first', 'second', 'later']);
  });

  it('an owner that disarms the next deadline while it hears of its expiry is obeyed', () => {
    const second = deadline('second');
    const first = deadline('first', () => second.disarm());
    first.arm(100);
    second.arm(100);
    vi.advanceTimersByTime(200);
    expect(expired).toEqual(['first']);
  });

  it('an owner that throws does not strand the deadlines behind it', () => {
    const thrower = deadline('thrower', () => {
      throw new Error('owner failed');
    });
    const after = deadline('after');
    thrower.arm(100);
    vi.advanceTimersByTime(10);
    after.arm(100);
    expect(() => vi.advanceTimersByTime(100)).toThrow('owner failed');
    vi.advanceTimersByTime(10);
    expect(expired).toEqual(['thrower', 'after']);
  });

  it('arming and disarming 100,000 deadlines leaves nothing behind and arms one timer per emptying', () => {
    const all = Array.from({ length: 100_000 }, (_, i) => deadline(String(i)));
    for (const d of all) d.arm(5000);
    expect(armedDeadlines()).toEqual({ deadlines: 100_000, queues: 1 });
    for (let i = 0; i < all.length; i += 2) all[i]!.disarm(); // every other one, from the head
    for (let i = all.length - 1; i > 0; i -= 2) all[i]!.disarm(); // the rest, from the tail
    expect(timersArmed.mock.calls.length).toBe(1);
  });
});
