/**
 * How `nats://` names reach NATS. `@nats-io/transport-node` is an optional peer dependency, so its
 * types are not named here: `connectOptions` is what its `connect()` takes, `connection` is a
 * `NatsConnection` it returned.
 */
export interface NatsOptions {
  /**
   * Options for `connect()` of `@nats-io/transport-node` (credentials, `tls`, `authenticator`,
   * `name`, reconnect settings …). `servers` defaults to the host and port of the `nats://` name.
   */
  connectOptions?: Record<string, unknown>;
  /** Use this existing `NatsConnection` instead of opening one; it is never closed or drained by this library. */
  connection?: unknown;
  /**
   * Liveness of each virtual stream: with nothing else to send, a heartbeat goes to the peer every
   * `interval` ms; a stream that hears nothing from its peer for `timeout` ms is reset (the peer
   * process died, or NATS lost it). @default { interval: 2000, timeout: 6000 }
   */
  heartbeat?: { interval: number; timeout?: number };
  /**
   * Flow control: bytes a peer may send on one virtual stream before this side grants more (credit);
   * the bound on what a connection's peer can make this side buffer. @default 262144 (256 KiB)
   */
  window?: number;
}
