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

  get size(): number {
    return this.asks.size;
  }

  /** An ask with this id is in progress and not cancelled (the peer may not reuse its id). */
  isBusy(id: number): boolean {
    return this.asks.get(id)?.cancelled === false;
  }

  get(id: number): InFlight | undefined {
    return this.asks.get(id);
  }

  startAsk(id: number, item: InFlight): void {
    this.asks.set(id, item);
  }

  /** Remove `item`'s entry; false if it is not (any more) the one under `id`. */
  finished(id: number, item: InFlight): boolean {
    if (this.asks.get(id) !== item) return false;
    this.asks.delete(id);
    return true;
  }

  startTell(ctx: HandlerContextImpl): void {
    this.tells.add(ctx);
  }

  finishTell(ctx: HandlerContextImpl): void {
    this.tells.delete(ctx);
  }

  /** The connection is gone: every handler sees its signal abort. */
  abortAll(reason: unknown): void {
    for (const item of this.asks.values()) item.abort(reason);
    this.asks.clear();
    for (const ctx of this.tells) ctx.abort(reason);
    this.tells.clear();
  }
}
