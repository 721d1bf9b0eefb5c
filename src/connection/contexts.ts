import type { AnyActorRef } from 'xstate';
import type { TracedSpan } from '../otel.js';

/**
 * What a handler or an iterating application holds of one incoming message: the handler's
 * `ctx`, and the `IncomingMessage` of `for await (const message of connection)`.
 */

/** Something in flight that the peer asked or told: a handler running, or a message awaiting `reply`. */
export interface InFlight {
  abort(reason: unknown): void;
  /** The asker cancelled it (or it was aborted): its id may be reused. */
  readonly cancelled: boolean;
  /** performance.now() when it became work in flight (stamped only once it outlives its message's turn). */
  since?: number;
}

/** Answers an IncomingMessage's ask (the responder). */
export interface Answerer {
  answer(message: IncomingMessageImpl, value: unknown, error: unknown, isError: boolean): Promise<void>;
}

export class HandlerContextImpl implements InFlight {
  private controller: AbortController | undefined;
  cancelled = false;
  /** The asker wants a streamed reply (it called `stream()`). */
  streaming = false;
  /** @internal Items the asker allowed before its first CREDIT. */
  credit = 0;
  /** @internal The message type (for work in flight). */
  type = '';
  /** @internal See InFlight. */
  since: number | undefined = undefined;
  /** @internal The handler's OpenTelemetry span, when the connection traces. */
  span: TracedSpan | undefined = undefined;
  constructor(
    readonly connection: unknown,
    readonly expectsReply: boolean,
    private readonly sessionActor: AnyActorRef | undefined,
  ) {}
  /** The session's current snapshot (when the connection has a session machine). */
  get session(): unknown {
    return this.sessionActor?.getSnapshot();
  }
  /** Created on first use: most handlers never look at it, and an AbortController is not free. */
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }
  abort(reason: unknown): void {
    this.cancelled = true;
    (this.controller ??= new AbortController()).abort(reason);
  }
  /** @internal End the handler's span with its outcome: the asker cancelled, it failed (the asker gets REMOTE_ERROR), or ok. */
  endSpan(error: unknown, threw: boolean): void {
    const span = this.span!;
    if (this.cancelled) span.cancelled();
    else if (threw) span.fail('REMOTE_ERROR', error);
    else span.ok();
  }
}

export class IncomingMessageImpl implements InFlight {
  private controller: AbortController | undefined;
  cancelled = false;
  /** @internal See InFlight. */
  since: number | undefined = undefined;
  /** `reply` or `fail` was called (its answer may still wait for room). */
  answered = false;
  constructor(
    private readonly answerer: Answerer,
    private readonly owner: { readonly facade: unknown },
    readonly event: { type: string },
    readonly id: number,
  ) {}
  get expectsReply(): boolean {
    return this.id >= 0;
  }
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }
  get connection(): unknown {
    return this.owner.facade;
  }
  abort(reason: unknown): void {
    this.cancelled = true;
    (this.controller ??= new AbortController()).abort(reason);
  }
  reply(value: unknown): Promise<void> {
    return this.answerer.answer(this, value, undefined, false);
  }
  fail(error: unknown): Promise<void> {
    return this.answerer.answer(this, undefined, error, true);
  }
}
