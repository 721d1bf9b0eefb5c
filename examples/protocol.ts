/**
 * The protocol the examples speak: two TypeScript types, nothing at run time.
 *
 * Each key is a message type; the parameter is the message's fields and the return type is the
 * reply. `void` means the message is only ever *told* (one-way, no reply). On the wire a message
 * is a plain object: `{ type: 'add', a: 1, b: 2 }`.
 *
 * Both the daemon and the client import this one file and name the pair in the same order,
 * `<ServerApi, ClientApi>`, so the compiler checks both ends of every conversation.
 */

/** What clients may send to the daemon (the daemon's handlers). */
export type ServerApi = {
  /** Ask: add two numbers. */
  add(e: { a: number; b: number }): number;
  /** Ask: how long the daemon has been up (ms) and how many clients are connected. */
  status(): { uptime: number; clients: number };
  /** Tell: write a line to the daemon's log. No reply, so the client never waits for it. */
  log(e: { line: string }): void;
  /** Ask: subscribe to a topic. The daemon asks the client to `confirm` first, then answers. */
  subscribe(e: { topic: string }): boolean;
};

/** What the daemon may send to a client (the client's handlers). */
export type ClientApi = {
  /** Tell: a notice for the client (the daemon broadcasts these). */
  notify(e: { text: string }): void;
  /** Ask: a yes/no question the daemon puts to the client. */
  confirm(e: { question: string }): boolean;
};
