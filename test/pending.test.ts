/** The pending-reply table on its own: ids, growth, lookups, timeouts and rejecting everything. */
import { describe, expect, it } from 'vitest';
import { ConverseError } from '../src/errors.js';
import { PendingReplies, type PendingAsk } from '../src/pending.js';

function ask(timeout = 60_000, settled: Array<[string, unknown]> = []): PendingAsk {
  return {
    resolve: (value) => settled.push(['resolve', value]),
    reject: (error) => settled.push(['reject', error]),
    deadline: performance.now() + timeout,
    timeout,
    type: 't',
    signal: undefined,
    onAbort: undefined,
  };
}

describe('PendingReplies', () => {
  it('gives ids unique among outstanding asks, grows past its first slots, and finds each ask by id', () => {
    const table = new PendingReplies(() => {});
    const asks = new Map<number, PendingAsk>();
    for (let i = 0; i < 1000; i++) {
      const id = table.allocateId();
      expect(asks.has(id)).toBe(false);
      const a = ask();
      table.add(id, a);
      asks.set(id, a);
    }
    expect(table.size).toBe(1000);
    for (const [id, a] of asks) expect(table.get(id)).toBe(a);
    // Take every other one; the rest are still found; ids of taken asks are unknown now.
    let n = 0;
    for (const [id, a] of asks) {
      if (n++ % 2 === 0) {
        expect(table.take(id)).toBe(a);
        expect(table.take(id)).toBeUndefined();
        expect(table.get(id)).toBeUndefined();
      }
    }
    expect(table.size).toBe(500);
    n = 0;
    for (const [id, a] of asks) if (n++ % 2 === 1) expect(table.get(id)).toBe(a);
    table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
  });

  it('never confuses a late reply for an id that shares a slot with a newer ask', () => {
    const table = new PendingReplies(() => {});
    const first = table.allocateId();
    table.add(first, ask());
    expect(table.take(first)).toBeDefined();
    // Cycle ids until one lands in the same slot again.
    let again = table.allocateId();
    while ((again & 15) !== (first & 15)) again = table.allocateId();
    const newer = ask();
    table.add(again, newer);
    expect(table.get(first)).toBeUndefined(); // the old id is not the newer ask
    expect(table.take(first)).toBeUndefined();
    expect(table.get(again)).toBe(newer);
    table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
  });

  it('skips ids still outstanding when the counter wraps past 2^32', () => {
    const table = new PendingReplies(() => {});
    (table as unknown as { nextId: number }).nextId = 0xffffffff;
    const a = table.allocateId();
    table.add(a, ask());
    const b = table.allocateId();
    expect(a).toBe(0xffffffff);
    expect(b).toBe(0);
    expect(table.get(a)).toBeDefined();
    table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
  });

  it('times out only expired asks, tells the owner, and re-arms for the rest', async () => {
    const timedOut: number[] = [];
    const table = new PendingReplies((id) => timedOut.push(id));
    const settled: Array<[string, unknown]> = [];
    const short = table.allocateId();
    table.add(short, ask(30, settled));
    const long = table.allocateId();
    table.add(long, ask(60_000));
    await new Promise((r) => setTimeout(r, 80));
    expect(timedOut).toEqual([short]);
    expect(settled[0]?.[0]).toBe('reject');
    expect((settled[0]?.[1] as ConverseError).code).toBe('TIMEOUT');
    expect(table.size).toBe(1);
    table.rejectAll(new ConverseError('CONNECTION_CLOSED', 'bye'));
  });

  it('rejectAll fails every ask with CONNECTION_CLOSED (the reason as cause) and empties the table', () => {
    const failed: number[] = [];
    const table = new PendingReplies(() => {}, (id) => failed.push(id));
    const settled: Array<[string, unknown]> = [];
    const ids = Array.from({ length: 40 }, () => {
      const id = table.allocateId();
      table.add(id, ask(60_000, settled));
      return id;
    });
    const reason = new ConverseError('DECODE_FAILED', 'bad frame');
    table.rejectAll(reason);
    expect(table.size).toBe(0);
    expect(failed.sort((x, y) => x - y)).toEqual(ids);
    expect(settled).toHaveLength(40);
    for (const [kind, error] of settled) {
      expect(kind).toBe('reject');
      expect((error as ConverseError).code).toBe('CONNECTION_CLOSED');
      expect((error as ConverseError).cause).toBe(reason);
    }
  });
});
