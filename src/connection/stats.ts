/** Counters for one connection, kept by the parts that see each event (live, never copied). */
export interface ConnectionStats {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Replies that arrived after their ask timed out or was aborted (dropped). */
  lateReplies: number;
  /** Tells of a type without a handler (dropped; there is no one to tell). */
  unhandledTells: number;
  /** Broadcasts skipped because the peer was not reading (its write budget was used up). */
  broadcastsSkipped: number;
}

export function newStats(): ConnectionStats {
  return { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, lateReplies: 0, unhandledTells: 0, broadcastsSkipped: 0 };
}
