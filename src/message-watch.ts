import type { Connection } from './connection/connection.js';
import { lossyTeller } from './lossy-tell.js';
import type { TraceRecord, TraceSink } from './trace.js';
import type { AskOptions } from './types.js';

/**
 * Watching messages over introspection (`interprocess-converse monitor --messages`): a watcher's
 * sink is attached to the message tracer of every connection of the server except the watchers
 * themselves (two monitors would otherwise trace each other's trace messages without end), and
 * to every connection made while it watches. Each traced record is told to the watcher as a
 * `$converse.message`; a watcher that stops reading loses records (counted as `dropped`), it
 * never makes the server buffer without bound. A connection nobody traces has no tracer.
 */

export const MessageWatchTypes = {
  WATCH: '$converse.watchMessages',
  UNWATCH: '$converse.unwatchMessages',
  MESSAGE: '$converse.message',
} as const;

/** Outstanding `$converse.message` tells per watcher beyond which records are dropped. */
const MAX_UNSENT_RECORDS = 1024;

export class MessageWatchers {
  private readonly sinks = new Map<Connection, TraceSink>();

  constructor(private readonly connections: () => Iterable<Connection>) {}

  /** `watcher` gets every message of every other connection from now on. */
  add(watcher: Connection): void {
    if (this.sinks.has(watcher)) return;
    const sink: TraceSink = lossyTeller(watcher, MessageWatchTypes.MESSAGE, 'record', MAX_UNSENT_RECORDS);
    // A watcher is never traced for other watchers.
    for (const other of this.sinks.values()) watcher.core.untrace(other);
    this.sinks.set(watcher, sink);
    for (const connection of this.connections()) if (!this.sinks.has(connection)) connection.core.traceMessages().sinks.add(sink);
    void watcher.closed.then(() => this.remove(watcher));
  }

  remove(watcher: Connection): void {
    const sink = this.sinks.get(watcher);
    if (sink === undefined) return;
    this.sinks.delete(watcher);
    for (const connection of this.connections()) connection.core.untrace(sink);
  }

  /** A connection was made: the current watchers see its messages. */
  connectionMade(connection: Connection): void {
    if (this.sinks.size === 0) return;
    const tracer = connection.core.traceMessages();
    for (const sink of this.sinks.values()) tracer.sinks.add(sink);
  }
}

/** The client side: `listener` gets each record the server traces until `stop()`. */
export async function watchMessages(
  connection: Connection<any, any>,
  listener: (record: TraceRecord, dropped: number) => void,
  options?: AskOptions,
): Promise<{ stop(): Promise<void> }> {
  const core = connection.core;
  core.options.internalHandlers = {
    ...core.options.internalHandlers,
    [MessageWatchTypes.MESSAGE]: (message: { record?: TraceRecord; dropped?: number }) => {
      const record = message.record;
      if (typeof record !== 'object' || record === null) return;
      listener(record, typeof message.dropped === 'number' ? message.dropped : 0);
    },
  };
  await connection.ask({ type: MessageWatchTypes.WATCH } as never, options);
  let stopped = false;
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      if (connection.state === 'active') await connection.ask({ type: MessageWatchTypes.UNWATCH } as never).catch(() => undefined);
    },
  };
}
