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
