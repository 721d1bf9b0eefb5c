import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { connectionId } from './connection-id.js';
import { createActor, waitFor, type AnyStateMachine } from 'xstate';
import { connectionMachine, type ConnectionState } from '../machines/connection.machine.js';
import type { PeerIdentity } from '../machines/identity-slots.js';
import {
  connectionGroupMachine,
  supervisorMachine,
  type AcceptedSocketEvent,
  type RefusalCode,
  type RefusalReason,
  type SupervisorActorRef,
  type SupervisorPort,
} from '../machines/supervisor.machine.js';
import { AsyncQueue } from './async-queue.js';
import { ConnectionCore, type CoreOptions } from './connection/core.js';
import { Connection } from './connection/connection.js';
import { warnUnobserved } from './connection/unobserved.js';
import { ConverseError } from './errors.js';
import { checkTimeout } from './timeouts.js';
import type { ListenOptions, ResolvedOptions } from './options.js';
import { parseAddress, type TransportAddress } from './transport/address.js';
import { peerCredentialsUnavailableReason, type PeerCredentials } from './transport/peer-credentials.js';
import type { TransportListener } from './transport/transport.js';
import type { EventOf, MessageFields, MessageType } from './types.js';
import { FrameKind } from './wire/constants.js';
import { encodeReject } from './wire/handshake.js';
import { SharedFrame } from './wire/shared-frame.js';

/** @internal Who may connect at all (plain code). How many may stay is the supervisor's to count. */
export interface AccessPolicy {
  allow: ((peer: PeerCredentials) => boolean) | undefined;
  allowUids: ReadonlySet<number> | undefined;
}

/**
 * @internal Something `listen()` composes into a server (introspection is one): handlers for
 * reserved `$…` message types, and a look at every connection as it is made.
 */
export interface ServerPlugin {
  handlers?: Record<string, (event: any, ctx: any) => unknown> | undefined;
  connectionMade?(connection: Connection): void;
}

/** How long a refused socket may linger after its REJECT before it is cut off. */
const REFUSED_LINGER_MS = 1000;

/** What `broadcast()` did. */
export interface BroadcastResult {
  /** Connections the message was written to. */
  sent: number;
  /** Connections skipped because their peer is not reading (their write budget is used up). */
  skipped: number;
}

export interface ServerEvents<ServerApi, ClientApi> {
  /** A connection finished its handshake. */
  connection: [connection: Connection<ServerApi, ClientApi>];
  /** A connection closed because of an error, or a socket was refused (SERVER_FULL, handshake failures …). */
  connectionError: [error: ConverseError, connection: Connection<ServerApi, ClientApi> | undefined];
  /**
   * An error of this server's own making that no asker could be told of: a tell's handler threw,
   * a handler returned a reply that fails the declared protocol, a tell failed validation.
   */
  handlerError: [error: ConverseError, connection: Connection<ServerApi, ClientApi>];
}

/** The supervisor, with the user's session machine provided to every connection (and group). */
function supervisorFor(session: AnyStateMachine | undefined): typeof supervisorMachine {
  if (session === undefined) return supervisorMachine;
  const connection = connectionMachine.provide({ actors: { session: session as never } });
  return supervisorMachine.provide({
    actors: { connection, connectionGroup: connectionGroupMachine.provide({ actors: { connection } }) },
  }) as typeof supervisorMachine;
}

/**
 * A listening server: a supervisor actor with one child connection actor per client.
 * Emits `connection` and `connectionError` (never `error`: a bad peer is never the server's failure).
 */
export class Server<ServerApi = any, ClientApi = any>
  extends EventEmitter<ServerEvents<ServerApi, ClientApi>>
  implements AsyncIterable<Connection<ServerApi, ClientApi>>
{
  /** The name the server listens on (for `tcp://…:0`, with the port it got). */
  readonly name: string;
  /** The supervisor actor: the root of the server's supervision tree. */
  readonly actor: SupervisorActorRef;
  private readonly live = new Map<string, Connection<ServerApi, ClientApi>>();
  /** Every connection not yet closed, including those still in their handshake. */
  private readonly cores = new Set<ConnectionCore>();
  /** Every connection's phase listener: one function for the server, told which core moved (a closure per connection cost ~0.13 KiB). */
  private readonly phaseListener = (phase: ConnectionState, core: ConnectionCore): void => this.phaseChanged(phase, core);
  private readonly acceptQueue = new AsyncQueue<Connection<ServerApi, ClientApi>>();
  private closing: Promise<void> | undefined;
  /**
   * Child actor ids no longer in use. XState memoises transition candidates per event type on
   * each state node for the life of the machine, and every child's completion reaches its parent
   * as `xstate.done.actor.<child id>`: with a fresh id per connection that cache would grow by
   * ~0.7 KiB for every connection ever accepted. Recycled ids bound it by the peak number of
   * connections at once.
   *
   * Names, not decimal numbers: XState copies its children object (with the new id added) on
   * every spawn, and a copy of integer-keyed entries took about eight times as long (the name
   * keys cost a hidden class per id instead, ~70 B a connection).
   */
  private readonly freeActorIds: string[] = [];
  private actorIdsIssued = 0;
  /** The plug-in's handlers for reserved `$…` types (introspection), if any. */
  private readonly internalHandlers: Record<string, (event: any, ctx: any) => unknown> | undefined;
  private readonly plugin: ServerPlugin;
  /** What every connection's core is given (shared: see prepareConnection). */
  private readonly coreOptions: CoreOptions;

  /** @internal Use `listen()`. */
  constructor(
    name: string,
    private readonly bound: TransportListener,
    private readonly options: ResolvedOptions,
    inspect: ListenOptions<ServerApi, ClientApi>['inspect'],
    private readonly access: AccessPolicy,
    plugin?: (server: Server<ServerApi, ClientApi>) => ServerPlugin,
  ) {
    super();
    this.name = name;
    this.plugin = plugin?.(this) ?? {};
    this.internalHandlers = this.plugin.handlers;
    this.coreOptions = {
      role: 'server',
      handlers: options.handlers,
      maxMessageSize: options.maxMessageSize,
      replyTimeout: options.replyTimeout,
      checksum: options.checksum,
      frameTimeout: options.frameTimeout,
      maxWriteBuffer: options.maxWriteBuffer,
      maxInFlight: options.maxInFlight,
      keepalive: options.keepalive,
      internalHandlers: this.internalHandlers,
      schemas: options.protocol?.definition,
      protocolMeta: options.protocol,
      hasSession: options.session !== undefined,
      trace: options.trace,
      reportError: (error, messageType, connection) => this.reportHandlerError(error, messageType, connection as Connection<ServerApi, ClientApi>),
    };
    const port: SupervisorPort = {
      refuse: (event, code, why) => this.refuse(event, code, why),
      stopAccepting: () => void this.bound.close(),
      closeAllConnections: (timeout) => {
        for (const core of this.cores.values()) core.actor?.send({ type: 'CLOSE', timeout });
      },
      destroyAllConnections: () => {
        for (const core of this.cores.values()) {
          core.actor?.send({
            type: 'DESTROY',
            error: new ConverseError('CONNECTION_CLOSED', 'The server was closed and this connection did not finish in time (close timeout); it was cut off.'),
          });
        }
      },
    };
    this.actor = createActor(supervisorFor(options.session), {
      input: {
        port,
        maxConnections: options.maxConnections,
        maxConnectionsPerPeer: options.maxConnectionsPerPeer,
        closeTimeout: options.closeTimeout,
      },
      inspect,
    });
    this.actor.start();
    // Every accepted stream becomes a SOCKET.ACCEPTED event; the supervisor spawns or refuses it.
    bound.onConnection = ({ socket, peer }) => this.actor.send(this.prepareConnection(socket, peer));
    bound.onRefused = (error) => this.emit('connectionError', error instanceof ConverseError ? error : new ConverseError('HANDSHAKE_FAILED', error.message, { cause: error }), undefined);
  }

  /** The live connections (handshake done, not yet closed), keyed by connection id. */
  get connections(): ReadonlyMap<string, Connection<ServerApi, ClientApi>> {
    return this.live;
  }

  /** The next accepted connection (the Rust `accept()`). Rejects with CONNECTION_CLOSED once the server is closed. */
  async accept(): Promise<Connection<ServerApi, ClientApi>> {
    const next = await this.acceptQueue.next();
    if (next.done) throw new ConverseError('CONNECTION_CLOSED', 'The server is closed; it accepts no more connections.');
    return next.value;
  }

  [Symbol.asyncIterator](): AsyncIterator<Connection<ServerApi, ClientApi>> {
    return { next: () => this.acceptQueue.next(), return: () => Promise.resolve({ value: undefined, done: true }) };
  }

  /**
   * Tell every active connection. The message is encoded once and the same bytes are written to
   * every socket. A connection whose peer has not read what it was sent before (its write
   * budget, `maxWriteBuffer`, is used up) is skipped: a broadcast never queues bytes beyond the
   * budget for a slow reader; each skip is counted in that connection's `stats.broadcastsSkipped`.
   * With `{ report: true }` it resolves with how many connections were sent the message and how
   * many were skipped (without, it resolves `void`, as the contract has it). Rejects (after
   * telling everyone it could) if some connection's agreed limit is smaller than the message.
   */
  broadcast<K extends MessageType<ClientApi>>(event: { type: K } & MessageFields<ClientApi, K>): Promise<void>;
  broadcast<K extends MessageType<ClientApi>>(event: { type: K } & MessageFields<ClientApi, K>, options: { report: true }): Promise<BroadcastResult>;
  async broadcast<K extends MessageType<ClientApi>>(event: { type: K } & MessageFields<ClientApi, K>, options?: { report?: boolean }): Promise<BroadcastResult | void> {
    if (typeof event !== 'object' || event === null || typeof (event as { type?: unknown }).type !== 'string') {
      throw new ConverseError('INVALID_ARGUMENT', 'A message must be an object with a string "type".');
    }
    const frames = new SharedFrame([FrameKind.TELL, event]);
    frames.get(false, this.options.maxMessageSize); // encode now: an unencodable event fails before anything is sent
    const result: BroadcastResult = { sent: 0, skipped: 0 };
    let missed = 0;
    let firstError: unknown;
    for (const connection of this.live.values()) {
      try {
        if (connection.core.writeShared(frames)) result.sent++;
        else result.skipped++;
      } catch (error) {
        missed++;
        firstError ??= error;
      }
    }
    if (missed > 0) {
      throw new ConverseError(
        (firstError as ConverseError).code ?? 'MESSAGE_TOO_LARGE',
        `The broadcast reached all but ${missed} connection(s): ${(firstError as Error).message}`,
        { cause: firstError },
      );
    }
    if (options?.report === true) return result;
  }

  /**
   * Graceful shutdown: stop accepting, let in-flight handlers finish and their replies go out,
   * close every connection, remove the socket file. Past `timeout` (default `closeTimeout`),
   * connections still open are cut off.
   */
  close(options?: { timeout?: number }): Promise<void> {
    if (options?.timeout !== undefined) checkTimeout('timeout', options.timeout);
    this.closing ??= (async () => {
      this.actor.send({ type: 'CLOSE', timeout: options?.timeout });
      await waitFor(this.actor, (snapshot) => snapshot.status !== 'active', { timeout: Infinity });
      await this.bound.close();
      this.acceptQueue.end();
    })();
    return this.closing;
  }

  private takeActorId(): string {
    return this.freeActorIds.pop() ?? `c${this.actorIdsIssued++}`;
  }

  /** Build the plain-code side of a new connection; the supervisor decides whether it lives. */
  private prepareConnection(socket: Duplex, peer: PeerCredentials): AcceptedSocketEvent {
    const id = connectionId();
    // The child actor's id is recycled (see takeActorId); the connection's public id is the nanoid.
    const actorId = this.takeActorId();
    // Each connection reads the server's one options object through its own (empty) object:
    // a copy per connection cost ~0.3 KiB, and what is set on one (an internal handler added
    // to it) stays its own.
    const core = new ConnectionCore(socket, Object.create(this.coreOptions) as CoreOptions, peer);
    const connection = new Connection<ServerApi, ClientApi>(core, id);
    this.plugin.connectionMade?.(connection);
    this.cores.add(core);
    core.onPhase = this.phaseListener;
    return {
      type: 'SOCKET.ACCEPTED',
      connectionId: actorId,
      identity: peerIdentity(peer),
      refusal: this.deniedByPolicy(peer) ? 'ACCESS_DENIED' : undefined,
      input: {
        id,
        role: 'server',
        transport: core,
        pending: core.pending,
        handshakeTimeout: this.options.handshakeTimeout,
        closeTimeout: this.options.closeTimeout,
        sessionInput: this.options.session === undefined ? undefined : { connectionId: id, peer },
      },
    };
  }

  /** A connection finished its handshake, or closed. */
  private phaseChanged(phase: ConnectionState, core: ConnectionCore): void {
    const connection = core.facade as Connection<ServerApi, ClientApi>;
    if (phase === 'active') {
      this.live.set(connection.id, connection);
      this.acceptQueue.push(connection);
      this.emit('connection', connection);
    } else if (phase === 'closed') {
      this.cores.delete(core);
      // Free the actor id once the supervisor has reaped the child (it does so as the child closes).
      const actorId = core.actor?.id;
      if (actorId !== undefined) setImmediate(() => this.freeActorIds.push(actorId));
      if (this.live.delete(connection.id)) this.acceptQueue.remove((c) => c === connection);
      if (core.closeReason !== undefined && core.closeReason.code !== 'CONNECTION_CLOSED') {
        this.emit('connectionError', core.closeReason, connection);
      }
    }
  }

  /** The allow-list, in plain code (user predicates never run inside a transition). Counts nothing. */
  private deniedByPolicy(peer: PeerCredentials): boolean {
    const { allow, allowUids } = this.access;
    if (allow === undefined && allowUids === undefined) return false;
    // Fail closed: the transport could not tell who it is (no kernel credentials, no verified certificate).
    if (peer.uid === undefined && peer.fingerprint === undefined) return true;
    if (allowUids !== undefined && (peer.uid === undefined || !allowUids.has(peer.uid))) return true;
    if (allow === undefined) return false;
    try {
      return allow(peer) !== true;
    } catch {
      return true;
    }
  }

  /** A `handlerError` listener observes these; with none, they are said once per kind (see warnUnobservedErrors). */
  private reportHandlerError(error: ConverseError, messageType: string | undefined, connection: Connection<ServerApi, ClientApi>): void {
    if (this.listenerCount('handlerError') > 0) this.emit('handlerError', error, connection);
    else if (this.options.warnUnobservedErrors) warnUnobserved(error, messageType, "listen for the server's 'handlerError' event to handle these, or pass warnUnobservedErrors: false to listen()");
  }

  private refuse(event: AcceptedSocketEvent, code: RefusalCode, why: RefusalReason): void {
    const core = event.input.transport as ConnectionCore;
    if (!this.cores.delete(core)) return;
    setImmediate(() => this.freeActorIds.push(event.connectionId));
    const socket = core.socket;
    const message =
      why === 'perPeer'
        ? `${typeof event.identity === 'number' ? `this user (uid ${event.identity})` : 'this client certificate'} already has ${this.options.maxConnectionsPerPeer} connections (maxConnectionsPerPeer)`
        : why === 'total'
          ? `the server is at its limit of ${this.options.maxConnections} connections`
          : why === 'policy'
            ? accessDeniedMessage((core.facade as Connection).peer, parseAddress(this.name).kind)
            : 'the server is shutting down';
    socket.on('error', () => {});
    socket.resume(); // discard the client's HELLO so the close completes
    socket.end(encodeReject(code, message, this.options.maxMessageSize));
    setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
    this.emit('connectionError', new ConverseError(code, `Refused a connection: ${message}.`), undefined);
  }
}

/**
 * Who a peer is for `maxConnectionsPerPeer`: what its transport verified, never what it claims.
 * The kernel-reported uid on a local socket; over TLS the SHA-256 fingerprint of its verified
 * client certificate (the certificate, not its subject: two certificates with one subject are two
 * peers, as the CA issued them). Plain TCP and NATS verify nothing: undefined, not counted.
 */
function peerIdentity(peer: PeerCredentials): PeerIdentity | undefined {
  if (peer.uid !== undefined) return peer.uid;
  if (peer.fingerprint !== undefined) return `sha256:${peer.fingerprint}`;
  return undefined;
}

/**
 * Why a peer was refused, naming it as its transport identifies it: by uid on a local socket, by
 * certificate over TLS. When nothing identifies it, say why (on a local socket the server's missing
 * peer credentials; the details, which may name files, went to the server's own warning).
 */
function accessDeniedMessage(peer: PeerCredentials, transport: TransportAddress['kind']): string {
  if (peer.uid !== undefined) return `this peer (uid ${peer.uid}) is not allowed to connect`;
  if (peer.subject !== undefined) return `this peer (certificate ${Object.entries(peer.subject).map(([k, v]) => `${k}=${v}`).join(', ')}) is not allowed to connect`;
  if (transport === 'tcp') return `this peer (at ${peer.address ?? 'an unknown address'}) has no verified identity over plain TCP, and the server's allow/allowUids need one: use tls:// with client certificates`;
  if (transport === 'tls') return `this peer presented no client certificate (requestCert is off), and the server's allow/allowUids need one`;
  if (transport === 'nats') return `NATS tells a server nothing verified about a client, and the server's allow/allowUids need an identity: control access with NATS permissions instead`;
  const why = peerCredentialsUnavailableReason === undefined ? 'this platform does not report them' : 'its peer-credential addon is not loaded';
  return `this peer's uid is unknown because the server has no peer credentials (${why}), and its allow/allowUids need them`;
}

export type { EventOf };
