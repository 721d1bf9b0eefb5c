import type { AnyMachineSnapshot } from 'xstate';
import type { Connection } from './connection/connection.js';
import type { EventFor, MessageType, ReplyOf } from './types.js';

/** What a side that serves a protocol writes: its handlers, and what each handler is given. */

/** Handlers for a protocol this side serves. */
export type Handlers<Local, Remote> = {
  [K in MessageType<Local>]?: (
    event: EventFor<Local, K>,
    ctx: HandlerContext<Local, Remote>,
  ) => ReplyOf<Local, K> | Promise<ReplyOf<Local, K>>;
};

/** What a handler gets besides the event. */
export interface HandlerContext<Local, Remote> {
  /** The connection the message came on (ask the peer back through it). */
  readonly connection: Connection<Local, Remote>;
  /** Aborts when the asker cancels or times out, or when the connection closes. */
  readonly signal: AbortSignal;
  /** True when the peer asked (it waits for the return value); false for a tell. */
  readonly expectsReply: boolean;
  /** The connection's session snapshot, after it took this message (when a `session` machine is used). */
  readonly session: AnyMachineSnapshot | undefined;
  /** True when the asker called `stream()`: the handler may return an async iterable of items. */
  readonly streaming: boolean;
}
