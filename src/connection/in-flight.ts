import type { HandlerContextImpl, InFlight } from './contexts.js';

/**
 * What the peer asked or told that this side has not finished: asks by id (a handler running,
 * or a message waiting for `reply`), and tells whose handler is still running. Aborted all at
 * once when the connection goes.
 */
export class InFlightTable {
  private readonly asks = new Map<number, InFlight>();
  /** Handlers of tells still running (async): their ctx.signal aborts when the connection closes. */
  private readonly tells = new Set<HandlerContextImpl>();
  /**
   * The ask whose handler is running synchronously right now (see `enter`): most handlers answer
   * before they return, so their asks never touch the Map. Nothing from the peer can arrive while
   * a handler runs, so one slot is enough; `leave` moves an ask that is not finished by then into
   * the Map.
   */
  private currentId = -1;
  private current: InFlight | undefined;

  get size(): number {
    return this.asks.size + (this.current === undefined ? 0 : 1);
  }

  /** An ask with this id is in progress and not cancelled (the peer may not reuse its id). */
  isBusy(id: number): boolean {
    return this.get(id)?.cancelled === false;
  }

  get(id: number): InFlight | undefined {
    return this.current !== undefined && this.currentId === id ? this.current : this.asks.get(id);
  }

  startAsk(id: number, item: InFlight): void {
    item.since = performance.now();
    this.asks.set(id, item);
  }

  /** Asks in progress (id, item), and tells whose handlers still run (id -1): for work in flight. */
  *entries(): IterableIterator<[number, InFlight]> {
    if (this.current !== undefined) yield [this.currentId, this.current];
    yield* this.asks;
    for (const ctx of this.tells) yield [-1, ctx];
  }

  /**
   * Ask `id`'s handler starts running synchronously. Should a handler ever run inside another
   * one, the outer ask moves to the Map first, so no ask is lost from the table.
   */
  enter(id: number, item: InFlight): void {
    if (this.current !== undefined) this.asks.set(this.currentId, this.current);
    this.currentId = id;
    this.current = item;
  }

  /** The synchronous part of ask `id`'s handler is over: if it is not answered yet, it waits in the Map. */
  leave(id: number, item: InFlight): void {
    if (this.current !== item || this.currentId !== id) return;
    this.current = undefined;
    this.currentId = -1;
    item.since = performance.now(); // only asks that outlive their turn are stamped
    this.asks.set(id, item);
  }

  /** Remove `item`'s entry; false if it is not (any more) the one under `id`. */
  finished(id: number, item: InFlight): boolean {
    if (this.current === item && this.currentId === id) {
      this.current = undefined;
      this.currentId = -1;
      return true;
    }
    if (this.asks.get(id) !== item) return false;
    this.asks.delete(id);
    return true;
  }

  startTell(ctx: HandlerContextImpl): void {
    ctx.since = performance.now();
    this.tells.add(ctx);
  }

  finishTell(ctx: HandlerContextImpl): void {
    this.tells.delete(ctx);
  }

  /** The connection is gone: every handler sees its signal abort. */
  abortAll(reason: unknown): void {
    const current = this.current;
    this.current = undefined;
    this.currentId = -1;
    current?.abort(reason);
    for (const item of this.asks.values()) item.abort(reason);
    this.asks.clear();
    for (const ctx of this.tells) ctx.abort(reason);
    this.tells.clear();
  }
}
