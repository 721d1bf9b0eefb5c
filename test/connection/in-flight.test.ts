/**
 * The in-flight table's synchronous slot: an ask whose handler answers before it returns never
 * enters the Map; one still unanswered when its handler returns moves there; either way the ask
 * is found by id, counted, kept from id reuse and aborted when the connection goes.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HandlerContextImpl } from '../../src/connection/contexts.js';
import { PauseReason, ReadFlow } from '../../src/connection/flow.js';
import { InFlightTable } from '../../src/connection/in-flight.js';
import type { Lifecycle } from '../../src/connection/lifecycle.js';

const ctx = (): HandlerContextImpl => new HandlerContextImpl(undefined, true, undefined);

/** A table over a stand-in stream; `settled` counts the settled() signals. */
function tableOf(max = 64): InFlightTable & { readFlow: ReadFlow; signals: { settled: number } } {
  const readFlow = new ReadFlow(new PassThrough());
  const signals = { settled: 0 };
  const life = { settled: () => void signals.settled++ } as unknown as Lifecycle;
  return Object.assign(new InFlightTable(max, readFlow, life), { readFlow, signals });
}

describe('InFlightTable', () => {
  it('an ask answered while its handler runs is in flight until then, and gone after', () => {
    const table = tableOf();
    const a = ctx();
    table.enter(7, a);
    expect(table.size).toBe(1);
    expect(table.get(7)).toBe(a);
    expect(table.isBusy(7)).toBe(true);
    expect(table.finish(7, a)).toBe(true);
    expect(table.finish(7, a)).toBe(false); // answered once
    table.leave(7, a);
    expect(table.size).toBe(0);
    expect(table.get(7)).toBeUndefined();
  });

  it('an ask still unanswered when its handler returns stays in flight (and can be finished later)', () => {
    const table = tableOf();
    const a = ctx();
    table.enter(3, a);
    table.leave(3, a);
    expect(table.size).toBe(1);
    expect(table.isBusy(3)).toBe(true);
    const b = ctx();
    table.enter(4, b); // the next ask's handler
    expect(table.size).toBe(2);
    expect(table.get(3)).toBe(a);
    expect(table.finish(4, b)).toBe(true);
    table.leave(4, b);
    expect(table.finish(3, a)).toBe(true);
    expect(table.size).toBe(0);
  });

  it('a handler running inside another keeps both asks in flight', () => {
    const table = tableOf();
    const outer = ctx();
    const inner = ctx();
    table.enter(1, outer);
    table.enter(2, inner);
    expect(table.size).toBe(2);
    expect(table.get(1)).toBe(outer);
    table.leave(2, inner);
    expect(table.finish(1, outer)).toBe(true);
    expect(table.finish(2, inner)).toBe(true);
    expect(table.size).toBe(0);
  });

  it('abortAll aborts the running handler too; its late leave does not bring it back', () => {
    const table = tableOf();
    const waiting = ctx();
    table.enter(1, waiting);
    table.leave(1, waiting);
    const running = ctx();
    table.enter(2, running);
    table.abortAll(new Error('closed'));
    expect(running.cancelled).toBe(true);
    expect(running.signal.aborted).toBe(true);
    expect(waiting.signal.aborted).toBe(true);
    table.leave(2, running);
    expect(table.size).toBe(0);
    expect(table.finish(2, running)).toBe(false);
  });

  it('owns maxInFlight: reading pauses at the bound (asks and tells together) and resumes at half', () => {
    const table = tableOf(4);
    const items = [ctx(), ctx(), ctx()];
    items.forEach((item, i) => table.startAsk(i, item));
    const tell = ctx();
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(false);
    table.startTell(tell);
    expect(table.running).toBe(4);
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(true);
    table.finish(0, items[0]!);
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(true); // 3 left: above half
    table.finishTell(tell);
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(false); // 2 left: half
    expect(table.signals.settled).toBe(1); // finishing an ask is the settled() signal
  });
});

describe('InFlightTable: the bound and the bookkeeping behind it', () => {
  it('resumes at half the bound, rounded down (maxInFlight 5: paused at 5, still at 3, reading at 2)', () => {
    const table = tableOf(5);
    const items = Array.from({ length: 5 }, () => ctx());
    items.slice(0, 4).forEach((item, i) => table.startAsk(i, item));
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(false); // 4 of 5: not yet
    table.startAsk(4, items[4]!);
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(true);
    table.finish(0, items[0]!);
    table.finish(1, items[1]!);
    expect(table.running).toBe(3);
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(true);
    table.finish(2, items[2]!);
    expect(table.running).toBe(2);
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(false);
  });

  it('tells count toward the bound on their own, and finishing one resumes reading', () => {
    const table = tableOf(2);
    const [a, b] = [ctx(), ctx()];
    table.startTell(a);
    expect(table.running).toBe(1);
    expect(table.size).toBe(0); // tells are not asks: closing does not wait for them
    table.startTell(b);
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(true);
    table.finishTell(a);
    expect(table.running).toBe(1);
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(false);
    table.finishTell(a); // twice: nothing more
    expect(table.running).toBe(1);
  });

  it('an ask still unanswered when its handler returns counts toward the bound from then on', () => {
    const table = tableOf(2);
    const [a, b] = [ctx(), ctx()];
    table.startAsk(1, a);
    table.enter(2, b);
    expect(table.running).toBe(2);
    table.leave(2, b);
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(true);
    expect(table.finish(2, b)).toBe(true);
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(false);
  });

  it('a stray finish does not release anyone: another item under the id, an unknown id, an unknown tell', () => {
    const table = tableOf(2);
    const [a, b, stranger] = [ctx(), ctx(), ctx()];
    table.startAsk(1, a);
    table.startAsk(2, b);
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(true);
    expect(table.finish(1, stranger)).toBe(false);
    expect(table.finish(9, a)).toBe(false);
    table.finishTell(stranger);
    expect(table.running).toBe(2);
    expect(table.get(1)).toBe(a);
    expect(table.readFlow.isPausedFor(PauseReason.IN_FLIGHT)).toBe(true);
    expect(table.signals.settled).toBe(0);
    // While a handler runs in the synchronous slot, finishing another id goes to the Map.
    const running = ctx();
    table.enter(3, running);
    expect(table.finish(1, running)).toBe(false);
    expect(table.finish(1, a)).toBe(true);
    expect(table.get(3)).toBe(running);
    expect(table.signals.settled).toBe(1);
  });

  // Equivalent (survivors): the empty slot's id `-1` made `+1` (in the field and the four places
  // that reset it), and `this.current !== undefined` in get() made `true`: the slot is only ever
  // consulted together with its item (get returns the slot's item only when there is one, finish
  // compares the item), and an ask's id is never -1 (that is a tell's), so no lookup tells them apart.
  it('get and isBusy: the synchronous slot answers only for its own id; a cancelled ask is not busy (its id may be reused)', () => {
    const table = tableOf();
    const [waiting, running] = [ctx(), ctx()];
    table.startAsk(1, waiting);
    table.enter(2, running);
    expect(table.get(1)).toBe(waiting);
    expect(table.get(2)).toBe(running);
    expect(table.get(3)).toBeUndefined();
    expect(table.isBusy(1)).toBe(true);
    expect(table.isBusy(3)).toBe(false);
    waiting.abort(new Error('cancelled by the asker'));
    expect(table.isBusy(1)).toBe(false);
    expect(table.get(1)).toBe(waiting); // still in flight until its handler finishes
  });

  it('leave for another id or another item leaves the slot as it is', () => {
    const table = tableOf();
    const [a, other] = [ctx(), ctx()];
    table.enter(5, a);
    table.leave(6, a);
    table.leave(5, other);
    expect(table.get(5)).toBe(a);
    expect(a.since).toBeUndefined(); // not stamped: it has not outlived its turn
    expect(table.finish(5, a)).toBe(true);
    expect(table.size).toBe(0);
  });

  it('stamps when an ask or tell started waiting (for work in flight): at start, or when its handler returns unanswered', () => {
    const table = tableOf();
    const before = performance.now();
    const [asked, told, entered] = [ctx(), ctx(), ctx()];
    table.startAsk(1, asked);
    table.startTell(told);
    table.enter(2, entered);
    table.leave(2, entered);
    const after = performance.now();
    for (const item of [asked, told, entered]) {
      expect(item.since).toBeGreaterThanOrEqual(before);
      expect(item.since).toBeLessThanOrEqual(after);
    }
  });

  it('entries lists the running handler, the asks waiting and the tells (as id -1)', () => {
    const table = tableOf();
    const [waiting, running, told] = [ctx(), ctx(), ctx()];
    table.startAsk(1, waiting);
    table.startTell(told);
    expect([...table.entries()]).toEqual([
      [1, waiting],
      [-1, told],
    ]);
    table.enter(2, running);
    expect([...table.entries()]).toEqual([
      [2, running],
      [1, waiting],
      [-1, told],
    ]);
  });

  it('handOver moves an ask from its validation to its handler, keeping its start time, in either slot', () => {
    const table = tableOf();
    const [validating, handler] = [ctx(), ctx()];
    table.startAsk(1, validating);
    validating.since = 1234;
    expect(table.handOver(1, ctx(), handler)).toBe(false); // not the item under that id
    expect(table.handOver(2, validating, handler)).toBe(false);
    expect(handler.since).toBeUndefined();
    expect(table.get(1)).toBe(validating);
    expect(table.handOver(1, validating, handler)).toBe(true);
    expect(table.get(1)).toBe(handler);
    expect(handler.since).toBe(1234);
    expect(table.size).toBe(1);
    expect(table.finish(1, validating)).toBe(false);
    expect(table.finish(1, handler)).toBe(true);
    // In the synchronous slot.
    const [first, second] = [ctx(), ctx()];
    table.enter(3, first);
    expect(table.handOver(3, first, second)).toBe(true);
    expect(table.finish(3, first)).toBe(false); // handed over: no longer the item under 3
    expect(table.get(3)).toBe(second);
    expect(table.size).toBe(1);
    expect([...table.entries()]).toEqual([[3, second]]);
    table.leave(3, second);
    expect(table.finish(3, second)).toBe(true);
    expect(table.size).toBe(0);
  });

  it('abortAll aborts every ask and tell and empties the table', () => {
    const table = tableOf(64);
    const [asked, told, running] = [ctx(), ctx(), ctx()];
    table.startAsk(1, asked);
    table.startTell(told);
    table.enter(2, running);
    const reason = new Error('connection closed');
    table.abortAll(reason);
    for (const item of [asked, told, running]) expect(item.signal.reason).toBe(reason);
    expect(table.running).toBe(0);
    expect([...table.entries()]).toEqual([]);
    expect(table.get(2)).toBeUndefined();
  });
});
