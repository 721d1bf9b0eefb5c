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

/**
 * Streamed replies this side produces: a handler's async iterable sent as STREAM_ITEMs, as fast
 * as the asker's credit allows, then STREAM_END (or an ERROR).
 */
export class StreamWriter {
  private readonly producing = new Map<number, Producer>();

  constructor(
    private readonly sender: Sender,
    private readonly life: Lifecycle,
    private readonly inFlight: InFlightTable,
  ) {}

  /** The streams being produced (for work in flight). */
  get streams(): ReadonlyMap<number, Readonly<Producer>> {
    return this.producing;
  }

  /** The asker granted `more` items for stream `id`. */
  credit(id: number, more: unknown): void {
    const producer = this.producing.get(id);
    if (producer !== undefined && typeof more === 'number' && more > 0) {
      producer.credit += more;
      producer.wake?.();
    }
  }

  /** The asker cancelled stream `id` (its handler's signal aborts): let a waiting producer see it. */
  wake(id: number): void {
    this.producing.get(id)?.wake?.();
  }

  /** Streams waiting for credit that will never come: let them see the abort and finish. */
  release(): void {
    for (const producer of this.producing.values()) producer.wake?.();
  }

  async produce(id: number, type: string, ctx: HandlerContextImpl, items: AsyncIterable<unknown>, output: StandardSchemaV1 | undefined): Promise<void> {
    const producer: Producer = { credit: ctx.credit, wake: undefined, sent: 0, type };
    this.producing.set(id, producer);
    const iterator = items[Symbol.asyncIterator]();
    let failed: unknown;
    let ended = false;
    try {
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
        this.sender.writeEnvelope([FrameKind.STREAM_ITEM, id, value]);
        producer.sent++;
      }
    } catch (error) {
      failed = error;
    } finally {
      this.producing.delete(id);
      if (!ended) await Promise.resolve(iterator.return?.()).catch(() => {});
      if (ctx.span !== undefined) {
        if (failed === undefined && !ended && !ctx.cancelled) ctx.span.fail('CONNECTION_CLOSED');
        else ctx.endSpan(failed, failed !== undefined);
      }
      if (this.inFlight.finished(id, ctx) && !ctx.cancelled) {
        if (failed !== undefined) this.sender.writeRemoteError(id, type, failed);
        else if (ended) this.sender.writeControl(FrameKind.STREAM_END, id);
      }
      this.life.settled();
    }
  }
}
