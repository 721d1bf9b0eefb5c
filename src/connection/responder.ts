import type { AnyActorRef } from 'xstate';
import { ConverseError, connectionClosedError } from '../errors.js';
import { describeIssues, toValidationIssues, type ProtocolDefinition, type StandardSchemaResult, type StandardSchemaV1 } from '../protocol.js';
import { FrameKind } from '../wire/constants.js';
import { describeThrown } from '../wire/envelope.js';
import { HandlerContextImpl, type Answerer, type IncomingMessageImpl } from './contexts.js';
import type { InFlightTable } from './in-flight.js';
import type { Lifecycle } from './lifecycle.js';
import type { Sender } from './sender.js';
import type { StreamWriter } from './stream-writer.js';
import type { TraceCarrier, TracedSpan, Tracing } from '../otel.js';

export type Handler = (event: any, ctx: any) => unknown;

/**
 * Runs handlers and answers the peer's asks: a reply, an error, or a streamed reply, each held
 * to the declared `output` when there is one, each written once unless the asker cancelled.
 */
export class Responder implements Answerer {
  constructor(
    private readonly sender: Sender,
    private readonly life: Lifecycle,
    private readonly inFlight: InFlightTable,
    private readonly streams: StreamWriter,
    private readonly schemas: ProtocolDefinition | undefined,
    /** OpenTelemetry, when this connection traces (see otel.ts). */
    private readonly tracing: Tracing | undefined = undefined,
  ) {}

  /**
   * Call a handler; a synchronous result is answered at once, without a promise. `credit` ≥ 0 for
   * a streamed reply. When the connection traces, the handler is a span, child of the peer's
   * `carrier` when it sent a valid one, and runs inside its context.
   */
  run(handler: Handler, event: unknown, id: number, type: string, credit: number, session: AnyActorRef | undefined, carrier?: TraceCarrier): void {
    if (this.tracing !== undefined && type.charCodeAt(0) !== 0x24) {
      const span = this.tracing.incoming(id >= 0 ? 'ask' : 'tell', type, (this.life.facade as { id?: string } | undefined)?.id, carrier);
      span.run(() => this.call(handler, event, id, type, credit, session, span));
      return;
    }
    this.call(handler, event, id, type, credit, session, undefined);
  }

  private call(handler: Handler, event: unknown, id: number, type: string, credit: number, session: AnyActorRef | undefined, span: TracedSpan | undefined): void {
    const ctx = new HandlerContextImpl(this.life.facade, id >= 0, session);
    ctx.span = span;
    ctx.streaming = credit >= 0;
    ctx.type = type;
    if (credit >= 0) ctx.credit = credit;
    // The ask is in flight in the table's one synchronous slot (no Map entry) while the handler
    // runs and is answered; whatever is not answered by the end of run() moves to the Map.
    if (id >= 0) this.inFlight.enter(id, ctx);
    try {
      let result: unknown;
      try {
        result = handler(event, ctx);
      } catch (error) {
        this.finishHandler(id, type, ctx, undefined, error, true);
        return;
      }
      if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
        if (id < 0) this.inFlight.startTell(ctx);
        (result as PromiseLike<unknown>).then(
          (value) => this.finishHandler(id, type, ctx, value, undefined, false),
          (error) => this.finishHandler(id, type, ctx, undefined, error, true),
        );
      } else {
        this.finishHandler(id, type, ctx, result, undefined, false);
      }
    } finally {
      if (id >= 0) this.inFlight.leave(id, ctx);
    }
  }

  /** The session machine answered ask `id` itself (see `answer()`): held to the declared `output` like a handler's reply. */
  answerFromSession(id: number, type: string, value: unknown, session: AnyActorRef): void {
    const output = this.declaredOutput(type);
    if (output === undefined) {
      this.sender.writeReply(id, type, value);
      return;
    }
    const ctx = new HandlerContextImpl(this.life.facade, true, session);
    this.inFlight.startAsk(id, ctx);
    this.validateReply(id, type, ctx, value, output);
  }

  private finishHandler(id: number, type: string, ctx: HandlerContextImpl, value: unknown, error: unknown, threw: boolean): void {
    if (id < 0) {
      this.inFlight.finishTell(ctx);
      if (ctx.span !== undefined) ctx.endSpan(error, threw);
      if (threw) {
        // A tell has no asker to tell: surface it rather than lose it.
        const remote = describeThrown(error);
        this.life.reportLocal(new ConverseError('REMOTE_ERROR', `The handler for the tell "${type}" threw ${remote.name}: ${remote.message}`, { cause: error, remote }), type);
      }
      return;
    }
    if (!threw) {
      if (isAsyncIterable(value)) {
        if (ctx.streaming) {
          void this.streams.produce(id, type, ctx, value, this.declaredOutput(type));
          return;
        }
        void value[Symbol.asyncIterator]().return?.();
        threw = true;
        error = new ConverseError('INVALID_ARGUMENT', `The handler for "${type}" streams its reply; the asker must use connection.stream() instead of ask().`);
      } else {
        const output = this.declaredOutput(type);
        if (output !== undefined) {
          this.validateReply(id, type, ctx, value, output);
          return;
        }
      }
    }
    this.settleAsk(id, type, ctx, value, error, threw);
  }

  /** Check a reply against the declared `output` schema: a bad reply fails on this side. */
  private validateReply(id: number, type: string, ctx: HandlerContextImpl, value: unknown, schema: StandardSchemaV1): void {
    const settle = (result: StandardSchemaResult<unknown>): void => {
      if (result.issues === undefined) {
        this.settleAsk(id, type, ctx, result.value, undefined, false);
        return;
      }
      const issues = toValidationIssues(result.issues);
      const error = new ConverseError('INVALID_MESSAGE', `The handler for "${type}" returned a reply that does not match the declared protocol: ${describeIssues(issues)}.`, { issues });
      this.life.reportLocal(error, type);
      this.settleAsk(id, type, ctx, undefined, error, true);
    };
    let result: ReturnType<StandardSchemaV1['~standard']['validate']>;
    try {
      result = schema['~standard'].validate(value);
    } catch (error) {
      this.settleAsk(id, type, ctx, undefined, error, true);
      return;
    }
    if (result instanceof Promise) result.then(settle, (error) => this.settleAsk(id, type, ctx, undefined, error, true));
    else settle(result);
  }

  /** The one way an ask's handler is answered: once, unless the asker cancelled. */
  private settleAsk(id: number, type: string, ctx: HandlerContextImpl, value: unknown, error: unknown, threw: boolean): void {
    if (ctx.span !== undefined) ctx.endSpan(error, threw);
    if (!this.inFlight.finished(id, ctx)) return;
    if (!ctx.cancelled) {
      if (threw) this.sender.writeRemoteError(id, type, error);
      else this.sender.writeReply(id, type, value);
    }
    this.life.settled();
  }

  /** `message.reply(value)` / `message.fail(error)` from an application iterating the connection. */
  answer(message: IncomingMessageImpl, value: unknown, error: unknown, isError: boolean, validated = false): Promise<void> {
    const id = message.id;
    if (id < 0) {
      return Promise.reject(new ConverseError('INVALID_ARGUMENT', `The message "${message.event.type}" was told, not asked: there is no one to reply to.`));
    }
    const output = isError || validated || this.inFlight.get(id) !== message ? undefined : this.declaredOutput(message.event.type);
    if (output !== undefined) {
      // `reply(value)` is held to the declared `output`: a bad reply fails here (reply() rejects
      // with INVALID_MESSAGE) and the asker gets REMOTE_ERROR carrying it.
      const check = (result: StandardSchemaResult<unknown>): Promise<void> => {
        if (result.issues === undefined) return this.answer(message, result.value, undefined, false, true);
        const issues = toValidationIssues(result.issues);
        const invalid = new ConverseError('INVALID_MESSAGE', `The reply to "${message.event.type}" does not match the declared protocol: ${describeIssues(issues)}.`, { issues });
        this.answer(message, undefined, invalid, true).catch(() => {});
        return Promise.reject(invalid);
      };
      const fail = (thrown: unknown): Promise<void> => {
        this.answer(message, undefined, thrown, true).catch(() => {});
        return Promise.reject(thrown);
      };
      try {
        const result = output['~standard'].validate(value);
        return result instanceof Promise ? result.then(check, fail) : check(result);
      } catch (thrown) {
        return fail(thrown);
      }
    }
    if (!this.inFlight.finished(id, message)) {
      if (this.life.phase === 'closed') return Promise.reject(connectionClosedError());
      return Promise.reject(new ConverseError('INVALID_ARGUMENT', `The message "${message.event.type}" was already answered (or cancelled by the asker).`));
    }
    try {
      if (this.life.phase === 'closed' || this.sender.closed) return Promise.reject(connectionClosedError());
      if (message.cancelled) return Promise.resolve();
      try {
        if (isError) this.sender.writeRemoteError(id, message.event.type, error);
        else this.sender.writeEnvelope([FrameKind.REPLY, id, value]);
      } catch (encodeError) {
        this.sender.writeRemoteError(id, message.event.type, encodeError);
        return Promise.reject(encodeError);
      }
      return Promise.resolve();
    } finally {
      // After the answer is written: closing may complete now.
      this.life.settled();
    }
  }

  /** The declared `output` schema of a message type this side serves, if any. */
  private declaredOutput(type: string): StandardSchemaV1 | undefined {
    const schemas = this.schemas;
    return schemas !== undefined && Object.hasOwn(schemas, type) ? schemas[type]!.output : undefined;
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}
