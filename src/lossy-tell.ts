import type { Connection } from './connection/connection.js';

/**
 * A sender of `{ type, [key]: value }` tells to a watcher that may stop reading: past `limit`
 * tells not yet written, values are dropped and counted instead of buffered, and the next tell
 * that goes out carries the count as `dropped`. Nothing is sent once the watcher is not active.
 * Used for introspection events and watched message records.
 */
export function lossyTeller(watcher: Connection, type: string, key: string, limit: number): (value: unknown) => void {
  let unsent = 0;
  let dropped = 0;
  const sent = (): void => {
    unsent--;
  };
  return (value) => {
    if (watcher.state !== 'active') return;
    if (unsent >= limit) {
      dropped++;
      return;
    }
    unsent++;
    const message: Record<string, unknown> = { type, [key]: value };
    if (dropped > 0) {
      message.dropped = dropped;
      dropped = 0;
    }
    (watcher as Connection<any, any>).tell(message as never).then(sent, sent);
  };
}
