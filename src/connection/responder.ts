import type { AnyActorRef } from 'xstate';
import { ConverseError, connectionClosedError, type ErrorCode } from '../errors.js';
import { describeIssues, toValidationIssues, type ProtocolDefinition, type StandardSchemaResult, type StandardSchemaV1, type ValidationIssue } from '../protocol.js';
import { FrameKind } from '../wire/constants.js';
import { describeThrown } from '../wire/envelope.js';
import { HandlerContextImpl, type Answerer, type InFlight, type IncomingMessageImpl } from './contexts.js';
import type { InFlightTable } from './in-flight.js';
import type { Lifecycle } from './lifecycle.js';
import type { Sender } from './sender.js';
import type { StreamWriter } from './stream-writer.js';
import type { TraceCarrier, TracedSpan, Tracing } from '../otel.js';

export type Handler = (event: any, ctx: any) => unknown;

/** How an ask is answered: a reply value, what a handler threw, or an error of the library's. */
const REPLY = 0;
const THROWN = 1;
const REFUSAL = 2;

/**
 * Runs handlers and answers the peer's asks: a reply, an error, or a streamed reply, each held
 * to the declared `output` when there is one, each written once unless the asker cancelled.
 * An answer that is ready when the write budget is used up waits for room while its ask keeps
 * its in-flight slot: so `maxInFlight` bounds the answers waiting.
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

  /** A handler context for message `id` (-1: a tell); `credit` ≥ 0 asks for a streamed reply. */
  context(id: number, type: string, credit: number, session: AnyActorRef | undefined): HandlerContextImpl {
    const ctx = new HandlerContextImpl(this.life.facade, id >= 0, session);
    ctx.type = type;
    if (credit >= 0) {
      ctx.streaming = true;
      ctx.credit = credit;
    }
    return ctx;
  }

  /**
   * Call a handler; a synchronous result is answered at once, without a promise. `credit` ≥ 0 for
   * a streamed reply. `held` is the message's context when it already holds an in-flight slot (it
   * waited for an async validator). When the connection traces, the handler is a span, child of
   * the peer's `carrier` when it sent a valid one, and runs inside its context.
   */
  run(handler: Handler, event: unknown, id: number, type: string, credit: number, session: AnyActorRef | undefined, held?: HandlerContextImpl, carrier?: TraceCarrier): void {
    if (this.tracing !== undefined && type.charCodeAt(0) !== 0x24) {
      const span = this.tracing.incoming(id >= 0 ? 'ask' : 'tell', type, (this.life.facade as { id?: string } | undefined)?.id, carrier);
      span.run(() => this.call(handler, event, id, type, credit, session, held, span));
      return;
    }
    this.call(handler, event, id, type, credit, session, held, undefined);
  }

  private call(handler: Handler, event: unknown, id: number, type: string, credit: number, session: AnyActorRef | undefined, held: HandlerContextImpl | undefined, span: TracedSpan | undefined): void {
    const ctx = held ?? this.context(id, type, credit, session);
    ctx.span = span;
    // A fresh ask is in flight in the table's one synchronous slot (no Map entry) while the
    // handler runs and is answered; whatever is not answered by the end of run() moves to the Map.
    const entered = held === undefined && id >= 0;
    if (entered) this.inFlight.enter(id, ctx);
    try {
      let result: unknown;
      try {
        result = handler(event, ctx);
      } catch (error) {
        this.finishHandler(id, type, ctx, undefined, error, true);
        return;
      }
      if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
        if (id < 0 && held === undefined) this.inFlight.startTell(ctx);
        (result as PromiseLike<unknown>).then(
          (value) => this.finishHandler(id, type, ctx, value, undefined, false),
          (error) => this.finishHandler(id, type, ctx, undefined, error, true),
        );
      } else {
        this.finishHandler(id, type, ctx, result, undefined, false);
      }
    } finally {
      if (entered) this.inFlight.leave(id, ctx);
    }
  }

  /** The session machine answered ask `id` itself (see `answer()`): held to the declared `output` like a handler's reply. */
  answerFromSession(id: number, type: string, value: unknown, session: AnyActorRef, held: HandlerContextImpl | undefined): void {
    const ctx = held ?? this.context(id, type, -1, session);
    if (held === undefined) this.inFlight.startAsk(id, ctx);
    const output = this.declaredOutput(type);
    if (output === undefined) this.settle(id, type, ctx, REPLY, value);
    else this.validateReply(id, type, ctx, value, output);
  }

  /** Answer ask `id` with an error of the library's (NO_HANDLER, NOT_ACCEPTED …). `held`: its in-flight slot, if it has one. */
  refuse(id: number, type: string, code: ErrorCode, message: string, issues: ValidationIssue[] | undefined, held: InFlight | undefined): void {
    if (held === undefined) {
      this.sender.writeError(id, code, message, undefined, issues);
      return;
    }
    this.settle(id, type, held, REFUSAL, { code, message, issues });
  }

  /** Answer ask `id` with what was thrown (a session machine that failed taking it). */
  fail(id: number, type: string, error: unknown, held: InFlight | undefined): void {
    if (held === undefined) this.sender.writeRemoteError(id, type, error);
    else this.settle(id, type, held, THROWN, error);
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
        closeQuietly(value);
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
    this.settle(id, type, ctx, threw ? THROWN : REPLY, threw ? error : value);
  }

  /** Check a reply against the declared `output` schema: a bad reply fails on this side. */
  private validateReply(id: number, type: string, ctx: InFlight, value: unknown, schema: StandardSchemaV1): void {
    const settle = (result: StandardSchemaResult<unknown>): void => {
      if (result.issues === undefined) {
        this.settle(id, type, ctx, REPLY, result.value);
        return;
      }
      const issues = toValidationIssues(result.issues);
      const error = new ConverseError('INVALID_MESSAGE', `The handler for "${type}" returned a reply that does not match the declared protocol: ${describeIssues(issues)}.`, { issues });
      this.life.reportLocal(error, type);
      this.settle(id, type, ctx, THROWN, error);
    };
    let result: ReturnType<StandardSchemaV1['~standard']['validate']>;
    try {
      result = schema['~standard'].validate(value);
    } catch (error) {
      this.settle(id, type, ctx, THROWN, error);
      return;
    }
    if (result instanceof Promise) result.then(settle, (error) => this.settle(id, type, ctx, THROWN, error));
    else settle(result);
  }

  /**
   * The one way an ask is answered: once, unless the asker cancelled; when the write budget has
   * room (the ask keeps its in-flight slot while it waits); then its slot is freed.
   */
  private settle(id: number, type: string, item: InFlight, how: number, value: unknown): void {
    // The handler is done (its span ends now, not when its answer finds room).
    if (item instanceof HandlerContextImpl && item.span !== undefined) item.endSpan(value, how !== REPLY);
    this.answerWhenRoom(id, type, item, how, value);
  }

  private answerWhenRoom(id: number, type: string, item: InFlight, how: number, value: unknown): void {
    if (this.inFlight.get(id) !== item) return;
    if (!item.cancelled && this.sender.full) {
      this.sender.whenRoom(() => this.answerWhenRoom(id, type, item, how, value));
      return;
    }
    if (!item.cancelled) this.write(id, type, how, value);
    this.inFlight.finish(id, item);
  }

  private write(id: number, type: string, how: number, value: unknown): void {
    if (how === REPLY) this.sender.writeReply(id, type, value);
    else if (how === THROWN) this.sender.writeRemoteError(id, type, value);
    else {
      const refusal = value as { code: ErrorCode; message: string; issues: ValidationIssue[] | undefined };
      this.sender.writeError(id, refusal.code, refusal.message, undefined, refusal.issues);
    }
  }

  /** `message.reply(value)` / `message.fail(error)` from an application iterating the connection. */
  answer(message: IncomingMessageImpl, value: unknown, error: unknown, isError: boolean, validated = false): Promise<void> {
    const id = message.id;
    if (id < 0) {
      return Promise.reject(new ConverseError('INVALID_ARGUMENT', `The message "${message.event.type}" was told, not asked: there is no one to reply to.`));
    }
    if (!validated) {
      if (message.answered || this.inFlight.get(id) !== message) {
        if (this.life.phase === 'closed') return Promise.reject(connectionClosedError());
        return Promise.reject(new ConverseError('INVALID_ARGUMENT', `The message "${message.event.type}" was already answered (or cancelled by the asker).`));
      }
      message.answered = true;
    }
    const output = isError || validated ? undefined : this.declaredOutput(message.event.type);
    if (output !== undefined) {
      // `reply(value)` is held to the declared `output`: a bad reply fails here (reply() rejects
      // with INVALID_MESSAGE) and the asker gets REMOTE_ERROR carrying it.
      const check = (result: StandardSchemaResult<unknown>): Promise<void> => {
        if (result.issues === undefined) return this.answer(message, result.value, undefined, false, true);
        const issues = toValidationIssues(result.issues);
        const invalid = new ConverseError('INVALID_MESSAGE', `The reply to "${message.event.type}" does not match the declared protocol: ${describeIssues(issues)}.`, { issues });
        this.answer(message, undefined, invalid, true, true).catch(() => {});
        return Promise.reject(invalid);
      };
      const fail = (thrown: unknown): Promise<void> => {
        this.answer(message, undefined, thrown, true, true).catch(() => {});
        return Promise.reject(thrown);
      };
      try {
        const result = output['~standard'].validate(value);
        return result instanceof Promise ? result.then(check, fail) : check(result);
      } catch (thrown) {
        return fail(thrown);
      }
    }
    return new Promise((resolve, reject) => {
      const write = (): void => {
        if (this.inFlight.get(id) !== message) {
          reject(connectionClosedError(this.life.closeReason));
          return;
        }
        if (this.life.phase === 'closed' || this.sender.closed) {
          this.inFlight.finish(id, message);
          reject(connectionClosedError());
          return;
        }
        let failure: unknown;
        if (!message.cancelled) {
          try {
            if (isError) this.sender.writeRemoteError(id, message.event.type, error);
            else this.sender.writeEnvelope([FrameKind.REPLY, id, value]);
          } catch (encodeError) {
            this.sender.writeRemoteError(id, message.event.type, encodeError);
            failure = encodeError;
          }
        }
        // After the answer is written: closing may complete now.
        this.inFlight.finish(id, message);
        if (failure !== undefined) reject(failure);
        else resolve();
      };
      if (!message.cancelled && this.sender.full) this.sender.whenRoom(write);
      else write();
    });
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

/** End an iterable nobody will read; whatever its `return()` does (throws, rejects) stays here. */
export function closeQuietly(items: AsyncIterable<unknown>): void {
  try {
    const iterator = items[Symbol.asyncIterator]();
    Promise.resolve(iterator.return?.()).catch(() => {});
  } catch {
    // a broken iterator: nothing more to do with it
  }
}
