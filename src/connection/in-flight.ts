import type { InFlight } from './contexts.js';
import { PauseReason, type ReadFlow } from './flow.js';
import type { Lifecycle } from './lifecycle.js';

/**
 * What the peer asked or told that this side has not finished: asks by id (a handler running,
 * a message waiting for `reply`, a message still being validated) and tells whose handler still
 * runs. It owns the `maxInFlight` bound: at the bound, reading from the peer pauses (nothing is
 * refused or dropped) and resumes once half of them have finished. Each finished ask is the
 * `settled()` signal closing waits for.
 */
export class InFlightTable {
  /**
   * Made on first use: most asks are answered within their handler's turn (`current`), and an
   * idle connection should not hold two empty hash tables (about 0.3 KiB).
   */
  private asks: Map<number, InFlight> | undefined;
  private tells: Set<InFlight> | undefined;
  private readonly lowWater: number;
  /**
   * The ask whose handler is running synchronously right now (see `enter`): most handlers answer
   * before they return, so their asks never touch the Map. Nothing from the peer can arrive while
   * a handler runs, so one slot is enough; `leave` moves an ask that is not finished by then into
   * the Map.
   */
  private currentId = -1;
  private current: InFlight | undefined;

  constructor(
    readonly max: number,
    private readonly flow: ReadFlow,
    private readonly life: Lifecycle,
  ) {
    this.lowWater = Math.floor(max / 2);
  }

  /** Asks not yet answered (closing waits for them). */
  get size(): number {
    return (this.asks === undefined ? 0 : this.asks.size) + (this.current === undefined ? 0 : 1);
  }

  /** Asks and tells in progress (what maxInFlight bounds). */
  get running(): number {
    return this.size + (this.tells === undefined ? 0 : this.tells.size);
  }

  /** An ask with this id is in progress and not cancelled (the peer may not reuse its id). */
  isBusy(id: number): boolean {
    return this.get(id)?.cancelled === false;
  }

  get(id: number): InFlight | undefined {
    return this.current !== undefined && this.currentId === id ? this.current : this.asks?.get(id);
  }

  startAsk(id: number, item: InFlight): void {
    item.since = performance.now();
    (this.asks ??= new Map()).set(id, item);
    this.grew();
  }

  /** Asks in progress (id, item), and tells whose handlers still run (id -1): for work in flight. */
  *entries(): IterableIterator<[number, InFlight]> {
    if (this.current !== undefined) yield [this.currentId, this.current];
    if (this.asks !== undefined) yield* this.asks;
    if (this.tells !== undefined) for (const ctx of this.tells) yield [-1, ctx];
  }

  /**
   * Ask `id`'s handler starts running synchronously. Should a handler ever run inside another
   * one, the outer ask moves to the Map first, so no ask is lost from the table.
   */
  enter(id: number, item: InFlight): void {
    if (this.current !== undefined) (this.asks ??= new Map()).set(this.currentId, this.current);
    this.currentId = id;
    this.current = item;
  }

  /** The synchronous part of ask `id`'s handler is over: if it is not answered yet, it waits in the Map. */
  leave(id: number, item: InFlight): void {
    if (this.current !== item || this.currentId !== id) return;
    this.current = undefined;
    this.currentId = -1;
    item.since = performance.now(); // only asks that outlive their turn are stamped
    (this.asks ??= new Map()).set(id, item);
    this.grew();
  }

  /** Hand ask `id` from `from` (its validation, say) to `to` (its handler) without finishing it. */
  handOver(id: number, from: InFlight, to: InFlight): boolean {
    if (this.get(id) !== from) return false;
    to.since = from.since;
    if (this.current === from) this.current = to;
    else (this.asks ??= new Map()).set(id, to);
    return true;
  }

  /**
   * Ask `id` is answered (or its asker cancelled it): remove `item`'s entry. Call it after the
   * answer is written: closing may complete now. False if `item` is not (any more) under `id`.
   */
  finish(id: number, item: InFlight): boolean {
    if (this.current === item && this.currentId === id) {
      this.current = undefined;
      this.currentId = -1;
    } else {
      if (this.asks === undefined || this.asks.get(id) !== item) return false;
      this.asks.delete(id);
      this.shrank();
    }
    this.life.settled();
    return true;
  }

  startTell(item: InFlight): void {
    item.since = performance.now();
    (this.tells ??= new Set()).add(item);
    this.grew();
  }

  finishTell(item: InFlight): void {
    if (this.tells?.delete(item) === true) this.shrank();
  }

  private grew(): void {
    if (this.running >= this.max) this.flow.pause(PauseReason.IN_FLIGHT);
  }

  private shrank(): void {
    if (this.running <= this.lowWater && this.flow.isPausedFor(PauseReason.IN_FLIGHT)) this.flow.resume(PauseReason.IN_FLIGHT);
  }

  /** The connection is gone: every handler sees its signal abort. */
  abortAll(reason: unknown): void {
    const current = this.current;
    this.current = undefined;
    this.currentId = -1;
    current?.abort(reason);
    const asks = this.asks;
    const tells = this.tells;
    this.asks = undefined;
    this.tells = undefined;
    if (asks !== undefined) for (const item of asks.values()) item.abort(reason);
    if (tells !== undefined) for (const item of tells) item.abort(reason);
  }
}
