/**
 * Protocols are TypeScript types: a map from message type to the signature of its handler.
 *
 * ```ts
 * type ServerApi = {
 *   add(e: { a: number; b: number }): number;
 *   status(): { uptime: number };
 *   log(e: { line: string }): void;
 * };
 * ```
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Protocol = { [type: string]: (...args: any[]) => unknown };

/** The message type names of a protocol. */
export type MessageType<P> = Extract<keyof P, string>;

/** The fields of message `K` (without `type`). */
export type MessageFields<P, K extends keyof P> = IsAny<P> extends true
  ? Record<string, any> // an untyped connection accepts any fields
  : P[K] extends (event: infer E) => unknown
    ? unknown extends E
      ? {} // a handler without a parameter: the message has only `type`
      : E
    : {};

/** The event object for message `K`: `{ type: K, ...fields }`. */
export type EventFor<P, K extends keyof P> = { type: K } & MessageFields<P, K>;

/** Any event of protocol `P`. */
export type EventOf<P> = { [K in MessageType<P>]: EventFor<P, K> }[MessageType<P>];

/** The reply type of message `K`. */
export type ReplyOf<P, K extends keyof P> = IsAny<P> extends true ? any : P[K] extends (...args: never[]) => infer R ? Awaited<R> : never;

type IsAny<T> = 0 extends 1 & T ? true : false;

/** The items of a streamed reply: what the handler's async iterable yields. */
export type StreamItemOf<P, K extends keyof P> = IsAny<P> extends true
  ? any
  : P[K] extends (...args: never[]) => infer R
    ? R extends AsyncIterable<infer T>
      ? T
      : Awaited<R>
    : never;

export interface StreamOptions extends AskOptions {
  /** How many items may be in flight ahead of the consumer (credit-based backpressure). @default 16 */
  window?: number;
  /** ms to wait for each next item (defaults to the connection's `replyTimeout`). */
  timeout?: number;
}

export interface AskOptions {
  /** ms; defaults to the connection's `replyTimeout`. */
  timeout?: number;
  /** Aborting rejects the ask with `ABORTED` and tells the peer, whose handler's `ctx.signal` aborts. */
  signal?: AbortSignal;
}
