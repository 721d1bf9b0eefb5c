import { ConverseError } from '../errors.js';
import { describeIssues, toValidationIssues, type StandardSchemaV1 } from '../protocol.js';
import { FrameKind } from '../wire/constants.js';
import type { HandlerContextImpl } from './contexts.js';
import type { InFlightTable } from './in-flight.js';
import type { Lifecycle } from './lifecycle.js';
import type { Sender } from './sender.js';

interface Producer {
  /** Items the asker still allows before its next CREDIT. */
  credit: number;
  wake: (() => void) | undefined;
  /** Items written so far. */
  sent: number;
  type: string;
}

const NO_STREAMS: ReadonlyMap<number, Producer> = new Map();

/**
 * Streamed replies this side produces: a handler's async iterable sent as STREAM_ITEMs, as fast
 * as the asker's credit allows, then STREAM_END (or an ERROR).
 */
export class StreamWriter {
  /** Made at the first streamed reply: most connections never produce one. */
  private producing: Map<number, Producer> | undefined;

  constructor(
    private readonly sender: Sender,
    private readonly life: Lifecycle,
    private readonly inFlight: InFlightTable,
  ) {}

  /** The streams being produced (for work in flight). */
  get streams(): ReadonlyMap<number, Readonly<Producer>> {
    return this.producing ?? NO_STREAMS;
  }

  /** The asker granted `more` items for stream `id`. */
  credit(id: number, more: unknown): void {
    const producer = this.producing?.get(id);
    if (producer !== undefined && typeof more === 'number' && more > 0) {
      producer.credit += more;
      producer.wake?.();
    }
  }

  /** The asker cancelled stream `id` (its handler's signal aborts): let a waiting producer see it. */
  wake(id: number): void {
    this.producing?.get(id)?.wake?.();
  }

  /** Streams waiting for credit that will never come: let them see the abort and finish. */
  release(): void {
    if (this.producing !== undefined) for (const producer of this.producing.values()) producer.wake?.();
  }

  async produce(id: number, type: string, ctx: HandlerContextImpl, items: AsyncIterable<unknown>, output: StandardSchemaV1 | undefined): Promise<void> {
    const producer: Producer = { credit: ctx.credit, wake: undefined, sent: 0, type };
    (this.producing ??= new Map()).set(id, producer);
    let iterator: AsyncIterator<unknown> | undefined;
    let failed: unknown;
    let ended = false;
    try {
      iterator = items[Symbol.asyncIterator]();
      for (;;) {
        if (ctx.cancelled || this.life.released) break;
        if (producer.credit <= 0) {
          await new Promise<void>((resolve) => (producer.wake = resolve));
          producer.wake = undefined;
          continue;
        }
        const next = await iterator.next();
        if (next.done) {
          ended = true;
          break;
        }
        producer.credit--;
        let value = next.value;
        if (output !== undefined) {
          // Each item must match the declared `output`: a bad one ends the stream on this side.
          const result = await output['~standard'].validate(value);
          if (result.issues !== undefined) {
            const issues = toValidationIssues(result.issues);
            const error = new ConverseError('INVALID_MESSAGE', `The handler for "${type}" streamed an item that does not match the declared protocol: ${describeIssues(issues)}.`, { issues });
            this.life.reportLocal(error, type);
            throw error;
          }
          value = result.value;
        }
        // The asker may have cancelled (or the connection gone) while the source made this item.
        if (ctx.cancelled || this.life.released) break;
        // The item waits for room in the write budget: however large the asker's window, it
        // cannot make us buffer more than maxWriteBuffer for it.
        if (this.sender.full) {
          await this.writeWhenRoom(id, ctx, value, producer);
        } else {
          this.sender.writeEnvelope([FrameKind.STREAM_ITEM, id, value]);
          producer.sent++;
        }
      }
    } catch (error) {
      failed = error;
    }
    this.producing?.delete(id);
    // A generator's return() may throw or reject: that stays here, never an unhandled rejection.
    if (!ended && iterator !== undefined) {
      try {
        await iterator.return?.();
      } catch {
        // the stream is over either way
      }
    }
    if (ctx.span !== undefined) {
      if (failed === undefined && !ended && !ctx.cancelled) ctx.span.fail('CONNECTION_CLOSED');
      else ctx.endSpan(failed, failed !== undefined);
    }
    this.finish(id, type, ctx, failed, ended);
  }

  /** Write one item once there is room (written in the room callback, so writers queue fairly); rejects if it cannot be encoded. */
  private writeWhenRoom(id: number, ctx: HandlerContextImpl, value: unknown, producer: Producer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.sender.whenRoom(() => {
        if (ctx.cancelled || this.life.released) return resolve();
        try {
          this.sender.writeEnvelope([FrameKind.STREAM_ITEM, id, value]);
          producer.sent++;
          resolve();
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  /** STREAM_END or the ERROR that ended the stream, once there is room; then the ask is done. */
  private finish(id: number, type: string, ctx: HandlerContextImpl, failed: unknown, ended: boolean): void {
    if (this.inFlight.get(id) !== ctx) return;
    if (!ctx.cancelled && this.sender.full) {
      this.sender.whenRoom(() => this.finish(id, type, ctx, failed, ended));
      return;
    }
    if (!ctx.cancelled) {
      if (failed !== undefined) this.sender.writeRemoteError(id, type, failed);
      else if (ended) this.sender.writeControl(FrameKind.STREAM_END, id);
    }
    this.inFlight.finish(id, ctx);
  }
}
