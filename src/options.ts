import type { AnyStateMachine, InspectionEvent, Observer } from 'xstate';
import type { DeclaredProtocol } from './protocol.js';
import { ConverseError } from './errors.js';
import { checkTimeout } from './timeouts.js';
import { MIN_MAX_MESSAGE_SIZE } from './wire/handshake.js';
import type { NatsOptions } from './transport/nats/options.js';
import type { TlsOptions } from './transport/network.js';
import type { PeerCredentials } from './transport/peer-credentials.js';
import type { Handlers } from './handlers.js';
import { resolveTrace, type TraceOption, type TraceOptions } from './trace.js';
import {
  DEFAULT_CLOSE_TIMEOUT,
  DEFAULT_CONNECT_TIMEOUT,
  DEFAULT_FRAME_TIMEOUT,
  DEFAULT_MAX_WRITE_BUFFER,
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_REPLY_TIMEOUT,
} from './wire/constants.js';

/** `listen(name, { introspection })` as an object. */
export interface IntrospectionOptions {
  /**
   * The message types to report (declare them when the server iterates instead of using
   * handlers). @default the names of `handlers`
   */
  messageTypes?: readonly string[];
  /**
   * Which peers may introspect, from their kernel-reported credentials (on top of the server's
   * own `allow` / `allowUids`, which every peer has already passed). A refused peer's
   * `$converse.*` asks fail with REMOTE_ERROR whose `remote.code` is ACCESS_DENIED.
   * @default the daemon's own user and root (by kernel-reported uid); a peer with a verified TLS
   * certificate; a peer with no identity only on a local socket no other user can open (the
   * default socketMode 0600). Plain TCP and NATS peers are refused unless `allow` admits them.
   */
  allow?: (peer: PeerCredentials) => boolean;
}

/**
 * Handlers in progress at once per connection, by default. Enough for a pipelining client (a
 * synchronous handler never holds a slot, an async one only until it settles) and about what
 * HTTP/2 servers allow concurrent streams per connection; small enough that the answers a
 * non-reading peer can make us hold, 64 × maxMessageSize (64 MiB at the default 1 MiB), stay
 * the same order as the write budget (docs/RELIABILITY.md §5).
 */
export const DEFAULT_MAX_IN_FLIGHT = 64;

/** An XState inspection observer (what `@statelyai/inspect`'s `inspector.inspect` is). */
export type InspectOption = Observer<InspectionEvent> | ((event: InspectionEvent) => void);

/** Options both `listen` and `connect` take. */
export interface ConversationOptions<Local, Remote> {
  /** Per message type: `(event, ctx) => reply | Promise<reply>`. Without handlers, iterate the connection instead. */
  handlers?: Handlers<Local, Remote>;
  /**
   * Largest encoded message (frame body) in bytes that this side accepts; a connection sends at
   * most the smaller of the two sides' values. @default 1048576 (1 MiB)
   */
  maxMessageSize?: number;
  /** Default timeout of asks this side makes, ms. @default 5000 */
  replyTimeout?: number;
  /** Per-frame CRC-32; on for a connection if either side asks for it. @default false */
  checksum?: boolean;
  /** A peer must finish the handshake within this many ms. @default 5000 */
  handshakeTimeout?: number;
  /** Default time a graceful close may take before what is left is cut off, ms. @default 5000 */
  closeTimeout?: number;
  /** An XState inspection observer attached to every actor (supervisor and connections). */
  inspect?: InspectOption;
  /**
   * Errors of this side's own making that no asker can be told of — a tell's handler threw, a
   * tell was dropped (no handler, invalid, not accepted), a reply failed the declared protocol —
   * are said as process warnings when nobody observes them (a server observes them with a
   * `handlerError` listener), once per kind (error code and message type) per process, the way an
   * unhandled `'error'` event would be heard. `false` silences them. @default true
   */
  warnUnobservedErrors?: boolean;
  /**
   * Once the first byte of a frame has arrived, the whole frame must arrive within this many ms,
   * or the connection is closed with FRAME_TIMEOUT (a defence against slowloris peers). The same
   * limit applies to a peer that leaves our data unread (PEER_NOT_READING). @default 30000
   */
  frameTimeout?: number;
  /**
   * When more than this many bytes wait in the socket's buffer for the peer to read them, `ask`,
   * `send` and `tell` wait for room (up to their timeout) and reading the peer's asks pauses.
   * @default 8388608 (8 MiB)
   */
  maxWriteBuffer?: number;
  /**
   * Handlers (and messages awaiting `reply`) in progress at once for one connection, asks and
   * tells together. At the bound this side stops reading from that peer until half of them
   * have finished: nothing is refused or dropped, the peer's writes wait in its own buffers.
   * @default 64
   */
  maxInFlight?: number;
  /**
   * Detect a peer that stopped answering (a stopped or hung process): after `interval` ms
   * without hearing from it, send a probe; if nothing arrives within `timeout` ms more, close the
   * connection (pending asks get CONNECTION_CLOSED). Off by default.
   */
  keepalive?: { interval: number; timeout?: number };
  /**
   * A per-connection protocol state machine. Every incoming message is offered to it first: one it
   * cannot take in its current state (`snapshot.can(event)` is false) is answered NOT_ACCEPTED and
   * its handler is not called; otherwise the session takes the event, then the handler runs (and
   * sees `ctx.session`). The session can answer an ask itself with `answer(event, value)`. When it
   * reaches a final state, the connection closes gracefully.
   */
  session?: AnyStateMachine;
  /**
   * For `tls://` names: PEM contents as node:tls takes them. A server needs `key` and `cert`, and
   * with `requestCert` (the default) `ca`, the CA its clients' certificates must chain to; a client
   * needs `ca` to verify the server (else the system's CAs) and `key`/`cert` when the server asks.
   */
  tls?: TlsOptions;
  /**
   * Plain `tcp://` is refused on any address that is not loopback (INSECURE_NETWORK): it is
   * unencrypted and proves nothing about the peer. `true` allows it, for networks you trust.
   * @default false
   */
  allowInsecureNetwork?: boolean;
  /** For `nats://` names: how to reach NATS, stream liveness and flow control. */
  nats?: NatsOptions;
  /**
   * Trace every message this side sends and receives (direction, kind, type, id, size, timing):
   * `'messages'`, or `'verbose'` to show field values too. As an object, `redact` masks secrets
   * in the fields and `log` takes each record (default: a line on stderr). Costs one branch a
   * frame when off. @default 'off'
   */
  trace?: TraceOption;
}

export interface ListenOptions<Local, Remote> extends ConversationOptions<Local, Remote> {
  /**
   * The declared protocol this server serves (`defineProtocol`): incoming messages are validated
   * (INVALID_MESSAGE with the validator's issues), replies are checked against `output`, and its
   * name and version travel in the handshake.
   */
  protocol?: DeclaredProtocol<Local>;
  /** Refuse connections past this many (they get SERVER_FULL). @default 4096 */
  maxConnections?: number;
  /** Listen backlog (Linux caps it at net.core.somaxconn). @default 4096 */
  backlog?: number;
  /** File mode of the socket file. The default lets only this user connect. @default 0o600 */
  socketMode?: number;
  /**
   * Decide per peer, from its kernel-reported credentials (local sockets) or its verified
   * certificate (`subject`, `fingerprint` over TLS), whether it may connect. Refused peers get
   * ACCESS_DENIED. A predicate that throws refuses. With `allow` or `allowUids` set and no identity
   * available (no peer credentials on this platform, plain TCP, NATS), every peer is refused (fail closed).
   */
  allow?: (peer: PeerCredentials) => boolean;
  /** Only these uids may connect (checked with `allow` when both are given: both must pass). */
  allowUids?: readonly number[];
  /**
   * At most this many live connections per peer identity, as the transport verified it: the uid on
   * a local socket, the client certificate's SHA-256 fingerprint over TLS. Past it the peer gets
   * SERVER_FULL. Peers without a verified identity (plain TCP, NATS, no peer credentials) are
   * bounded by `maxConnections` only. @default 1024
   */
  maxConnectionsPerPeer?: number;
  /** @deprecated The same as `maxConnectionsPerPeer` (which wins when both are given). */
  maxConnectionsPerUid?: number;
  /**
   * Answer the reserved `$converse.*` introspection messages (server version, message types,
   * connections and their states, a stream of state changes) for `interprocess-converse info`,
   * `monitor`, `dashboard` and `introspect(connection)`. Any peer allowed to connect may
   * introspect unless `introspection.allow` narrows it. @default false
   */
  introspection?: boolean | IntrospectionOptions;
}

export interface ConnectOptions<Local, Remote> extends ConversationOptions<Local, Remote> {
  /** The server's declared protocol: gives `ask` its types; its name and version travel in the handshake. */
  protocol?: DeclaredProtocol<Remote>;
  /**
   * Give up connecting after this many ms: retrying a busy server (a full backlog), and, with
   * `waitForServer`, waiting for one to appear. @default 5000
   */
  connectTimeout?: number;
  /**
   * Wait up to `connectTimeout` for a server that is not listening yet (starting, or restarting)
   * instead of failing at once with CONNECT_FAILED. `reconnect` implies it for the first connect.
   * @default false
   */
  waitForServer?: boolean;
  /**
   * Require the server process to run as this uid (from the kernel, before anything is sent), so
   * a process that grabbed the name first cannot impersonate the daemon. Fails closed with
   * ACCESS_DENIED where credentials are unavailable.
   */
  expectServerUid?: number;
  /**
   * Keep the logical connection across server restarts (backoff with jitter, a cap, a limit on
   * attempts). `true` takes the defaults. Asks in flight when the connection drops reject with
   * CONNECTION_CLOSED; messages made while disconnected wait or fail as `whileDisconnected` says.
   */
  reconnect?: boolean | import('./reconnect.js').ReconnectOptions;
}

export interface ResolvedOptions {
  handlers: Record<string, ((event: any, ctx: any) => unknown) | undefined> | undefined;
  maxMessageSize: number;
  replyTimeout: number;
  checksum: boolean;
  handshakeTimeout: number;
  closeTimeout: number;
  connectTimeout: number;
  maxConnections: number;
  maxConnectionsPerPeer: number;
  frameTimeout: number;
  maxWriteBuffer: number;
  maxInFlight: number;
  keepalive: { interval: number; timeout: number } | undefined;
  protocol: DeclaredProtocol | undefined;
  session: AnyStateMachine | undefined;
  trace: TraceOptions | undefined;
  warnUnobservedErrors: boolean;
}

export function resolveOptions(options: ListenOptions<any, any> & ConnectOptions<any, any>): ResolvedOptions {
  const resolved: ResolvedOptions = {
    handlers: options.handlers as ResolvedOptions['handlers'],
    maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
    replyTimeout: options.replyTimeout ?? DEFAULT_REPLY_TIMEOUT,
    checksum: options.checksum ?? false,
    handshakeTimeout: options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
    closeTimeout: options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT,
    connectTimeout: options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT,
    maxConnections: options.maxConnections ?? 4096,
    maxConnectionsPerPeer: options.maxConnectionsPerPeer ?? options.maxConnectionsPerUid ?? 1024,
    frameTimeout: options.frameTimeout ?? DEFAULT_FRAME_TIMEOUT,
    protocol: options.protocol,
    session: options.session,
    trace: resolveTrace(options.trace),
    warnUnobservedErrors: options.warnUnobservedErrors !== false,
    maxWriteBuffer: options.maxWriteBuffer ?? DEFAULT_MAX_WRITE_BUFFER,
    maxInFlight: options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
    keepalive:
      options.keepalive === undefined
        ? undefined
        : { interval: options.keepalive.interval, timeout: options.keepalive.timeout ?? options.keepalive.interval },
  };
  if (!Number.isInteger(resolved.maxMessageSize) || resolved.maxMessageSize < MIN_MAX_MESSAGE_SIZE || resolved.maxMessageSize > 0xffffffff) {
    throw new ConverseError('INVALID_ARGUMENT', `maxMessageSize must be an integer from ${MIN_MAX_MESSAGE_SIZE} to ${0xffffffff} bytes (got ${String(resolved.maxMessageSize)}).`);
  }
  positiveInteger('maxWriteBuffer', resolved.maxWriteBuffer, Number.MAX_SAFE_INTEGER);
  positiveInteger('maxInFlight', resolved.maxInFlight, Number.MAX_SAFE_INTEGER);
  if (resolved.keepalive !== undefined && !(resolved.keepalive.interval > 0 && resolved.keepalive.timeout > 0)) {
    throw new ConverseError('INVALID_ARGUMENT', 'keepalive.interval and keepalive.timeout must be positive numbers of milliseconds.');
  }
  for (const key of ['replyTimeout', 'handshakeTimeout', 'closeTimeout', 'connectTimeout', 'frameTimeout'] as const) checkTimeout(key, resolved[key]);
  if (resolved.keepalive !== undefined) {
    checkTimeout('keepalive.interval', resolved.keepalive.interval);
    checkTimeout('keepalive.timeout', resolved.keepalive.timeout);
  }
  positiveInteger('maxConnections', resolved.maxConnections, Number.MAX_SAFE_INTEGER);
  positiveInteger(options.maxConnectionsPerPeer === undefined && options.maxConnectionsPerUid !== undefined ? 'maxConnectionsPerUid' : 'maxConnectionsPerPeer', resolved.maxConnectionsPerPeer, Number.MAX_SAFE_INTEGER);
  if (resolved.handlers !== undefined && (typeof resolved.handlers !== 'object' || resolved.handlers === null)) {
    throw new ConverseError('INVALID_ARGUMENT', 'handlers must be an object mapping message types to functions.');
  }
  return resolved;
}

function positiveInteger(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new ConverseError('INVALID_ARGUMENT', `${name} must be an integer from 1 to ${max} (got ${String(value)}).`);
  }
}
