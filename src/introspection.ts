import diagnosticsChannel from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import type { AnyActorRef, InspectionEvent, Subscription } from 'xstate';
import { Connection, type ConnectionStateName as ConnectionState } from './connection/connection.js';
import type { ConnectionStats } from './connection/stats.js';
import type { WorkInFlight } from './connection/work.js';
import { ConverseError } from './errors.js';
import type { IntrospectionOptions } from './options.js';
import { DEFAULT_ACCESS_REFUSAL, defaultIntrospectionAccess } from './introspection-access.js';
import type { Server, ServerPlugin } from './server.js';
import type { PeerCredentials } from './transport/peer-credentials.js';
import type { AskOptions } from './types.js';
import { PROTOCOL_VERSION } from './wire/constants.js';
import { lossyTeller } from './lossy-tell.js';
import { MessageWatchers, MessageWatchTypes } from './message-watch.js';
import { cachedMachineGraph, leafPaths, machineKey, type MachineGraph } from './machine-graph.js';

/**
 * Introspection: what a server knows about itself and its connections, in plain data, for the
 * dashboard, the CLI and any other tool.
 *
 * - In process, `serverSnapshot(server)` and `describeConnection(connection)` read it directly,
 *   and `observeServer(server, listener)` reports every connection state change as it happens
 *   (it attaches an XState inspection observer to the server's actor system only while someone
 *   listens, so an unobserved server pays nothing).
 * - Over the socket, a server started with `listen(name, { introspection: true })` answers the
 *   reserved message types `$converse.info`, `$converse.connections`, `$converse.watch` and
 *   `$converse.unwatch`, and tells `$converse.event` messages to the connections that watch it.
 *   `introspect(connection)` is the client side of that.
 */

/** Bumped when the shape of the `$converse.*` messages changes incompatibly. */
export const INTROSPECTION_VERSION = 1;

export type { IntrospectionOptions };

/** The reserved message types (docs/PROTOCOL.md, "Introspection"). */
export const IntrospectionMessages = {
  INFO: '$converse.info',
  CONNECTIONS: '$converse.connections',
  WATCH: '$converse.watch',
  UNWATCH: '$converse.unwatch',
  EVENT: '$converse.event',
  MACHINES: '$converse.machines',
} as const;

/** An error as introspection reports it. */
export interface ErrorInfo {
  code: string;
  message: string;
  /** When it happened (epoch ms), when known. */
  at?: number;
}

/** One connection, as introspection reports it. */
export interface ConnectionInfo {
  /** The server's id for the connection (a nanoid). */
  id: string;
  state: ConnectionState;
  /** The peer's credentials as the kernel reported them (fields absent where unknown). */
  peer: PeerCredentials;
  /** Messages and bytes each way, late replies, unhandled tells (a copy). */
  stats: ConnectionStats;
  /** Asks this side sent on the connection that still wait for their reply. */
  pendingAsks: number;
  /** Work in flight: handlers running, asks waiting, streams, whether reading is paused (see `connection.work()`). */
  work?: WorkInFlight;
  /** When the server accepted the socket (epoch ms). */
  openedAt?: number;
  /** ms since `openedAt`, when this was taken. */
  age?: number;
  /** The peer's wire protocol version, once the handshake is done. */
  peerVersion?: number;
  /** The last failure seen on this connection: an ask of ours that failed, or why it closed. */
  lastError?: ErrorInfo;
  /** Its session machine, when it has one. */
  session?: SessionInfo;
}

/** A connection's session machine (the `session` given to listen/connect), as introspection reports it. */
export interface SessionInfo {
  /** The machine's id. */
  machine: string;
  /** The name of its graph in `$converse.machines` (unique per machine definition in the process). */
  graph: string;
  /** The actor's status: `active`, `done` (it reached a final state), `error`, `stopped`. */
  status: string;
  /** Its state value, as XState gives it (`'idle'`, `{ authed: 'paying' }`). */
  value: unknown;
  /** The innermost states it is in, as paths (`authed.paying`; several when parallel). */
  state: string[];
  /**
   * Its last transitions (at most 16), oldest first: when, the peer's message type that moved it
   * (absent when a timer or the application did, and for its initial state), the states after.
   */
  transitions: Array<{ at: number; event?: string; state: string[] }>;
}

/** The server, as introspection reports it. */
export interface ServerInfo {
  library: 'interprocess-converse';
  /** The package version the server runs. */
  version: string;
  /** The wire protocol version (PROTOCOL_VERSION). */
  protocolVersion: number;
  introspectionVersion: number;
  /** The socket name it listens on. */
  socket: string;
  pid: number;
  /** When the server started listening (epoch ms). */
  startedAt: number;
  /** ms since `startedAt`. */
  uptime: number;
  /** The supervisor's state. */
  state: 'listening' | 'draining' | 'closed';
  /** Connections not yet closed (handshake included). */
  live: number;
  /** Connections accepted since start. */
  accepted: number;
  /** Sockets refused since start (SERVER_FULL, ACCESS_DENIED, shutting down). */
  refused: number;
  maxConnections: number;
  /** Declared message types, else the handlers' names; undefined when neither is known. */
  messageTypes: string[] | undefined;
  /** The declared protocol's name and version, when the server declared one. */
  protocol?: { name?: string; version?: string | number };
  /** Over the socket: the asker's own connection id, as the server knows it. */
  you?: string;
}

/** What changed, as `observeServer` listeners and `$converse.event` messages report it. */
export type IntrospectionEvent =
  | {
      kind: 'connection';
      seq: number;
      /** epoch ms */
      at: number;
      id: string;
      /** null for a connection that just appeared (its socket was accepted). */
      from: ConnectionState | null;
      to: ConnectionState;
      /** The connection as it was right after the change. */
      connection: ConnectionInfo;
      /** Why it closed, when it did not close cleanly (only with `to: 'closed'`). */
      error?: ErrorInfo;
    }
  | { kind: 'server'; seq: number; at: number; from: string; to: string }
  | { kind: 'refused'; seq: number; at: number; code: string; message: string };

/** What `$converse.watch` answers: the state at the moment watching started. */
export interface WatchStart {
  /** Events with `seq` up to this one are already reflected here. */
  seq: number;
  server: ServerInfo;
  connections: ConnectionInfo[];
  /** Connections that closed recently (since someone started observing), newest last. */
  recentlyClosed: ConnectionInfo[];
  /** Recent events (since someone started observing), oldest first. */
  timeline: IntrospectionEvent[];
}

const TIMELINE_LENGTH = 200;
const RECENTLY_CLOSED_LENGTH = 20;

// ── Facts recorded cheaply outside the hot path ─────────────────────────────────────────────

const serverStartedAt = new WeakMap<object, number>();
const lastErrors = new WeakMap<object, ErrorInfo>();

/**
 * @internal Called by the server when it accepts a socket. A field of the connection rather than
 * a WeakMap entry: with thousands of connections a WeakMap is a large ephemeron table that every
 * full collection walks, and setting one cost ~20 µs of each accept in a 10,000-client profile.
 */
export function markConnectionOpened(connection: Connection): void {
  connection.openedAt = Date.now();
}

let packageVersion: string | undefined;

/** The version of this package, from its package.json. */
export function libraryVersion(): string {
  if (packageVersion !== undefined) return packageVersion;
  packageVersion = 'unknown';
  // src/introspection.ts (tests) and dist/src/introspection.js (built, installed) both find it.
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(fs.readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'interprocess-converse' && typeof pkg.version === 'string') {
        packageVersion = pkg.version;
        break;
      }
    } catch {
      // try the next candidate
    }
  }
  return packageVersion;
}

function errorInfo(error: unknown, at?: number): ErrorInfo | undefined {
  if (error === undefined || error === null) return undefined;
  const e = error as { code?: unknown; message?: unknown };
  const info: ErrorInfo = {
    code: typeof e.code === 'string' ? e.code : 'ERROR',
    message: typeof e.message === 'string' ? e.message : String(error),
  };
  if (at !== undefined) info.at = at;
  return info;
}

// ── Describing a server and its connections ─────────────────────────────────────────────────

/** A connection as plain data (a copy: safe to serialize, send or keep). */
export function describeConnection(connection: Connection, now = Date.now()): ConnectionInfo {
  const info: ConnectionInfo = {
    id: connection.id,
    state: connection.state,
    peer: copyPeer(connection.peer),
    stats: { ...connection.stats },
    pendingAsks: connection.pendingAsks,
    work: connection.state === 'closed' ? emptyWork() : connection.work(),
  };
  const opened = connection.openedAt;
  if (opened !== undefined) {
    info.openedAt = opened;
    info.age = Math.max(0, now - opened);
  }
  if (connection.peerVersion !== undefined) info.peerVersion = connection.peerVersion;
  const lastError = errorInfo(connection.closeReason) ?? lastErrors.get(connection);
  if (lastError !== undefined) info.lastError = lastError;
  const session = describeSession(connection);
  if (session !== undefined) info.session = session;
  return info;
}

/** The connection's session machine as plain data, when it has one. */
export function describeSession(connection: Connection): SessionInfo | undefined {
  const machine = connection.core.sessionMachine();
  if (machine === undefined) return undefined;
  const snapshot = connection.session?.getSnapshot() as { value?: unknown; status?: string } | undefined;
  const transitions = connection.core.sessionTransitions().map((t) => ({ at: t.at, ...(t.event === undefined ? {} : { event: t.event }), state: leafPaths(t.value) }));
  const value = snapshot?.value ?? connection.core.sessionTransitions().at(-1)?.value;
  return {
    machine: machine.id,
    graph: machineKey(machine),
    status: snapshot?.status ?? 'stopped',
    value: value ?? null,
    state: leafPaths(value),
    transitions,
  };
}

/** The graphs of the session machines of `connections` (by `SessionInfo.graph`), those named in `keys` or all. */
export function sessionGraphs(connections: Iterable<Connection>, keys?: readonly string[]): Record<string, MachineGraph> {
  const wanted = keys === undefined ? undefined : new Set(keys);
  const graphs: Record<string, MachineGraph> = {};
  for (const connection of connections) {
    const machine = connection.core.sessionMachine();
    if (machine === undefined) continue;
    const key = machineKey(machine);
    if (Object.hasOwn(graphs, key) || (wanted !== undefined && !wanted.has(key))) continue;
    graphs[key] = cachedMachineGraph(machine);
  }
  return graphs;
}

function emptyWork(): WorkInFlight {
  return { handling: [], asking: [], streaming: [], reading: { paused: false, reasons: [] } };
}

function copyPeer(peer: PeerCredentials): PeerCredentials {
  const copy: { -readonly [K in keyof PeerCredentials]: PeerCredentials[K] } = {};
  if (peer.pid !== undefined) copy.pid = peer.pid;
  if (peer.uid !== undefined) copy.uid = peer.uid;
  if (peer.gid !== undefined) copy.gid = peer.gid;
  if (peer.subject !== undefined) copy.subject = { ...peer.subject };
  if (peer.fingerprint !== undefined) copy.fingerprint = peer.fingerprint;
  if (peer.address !== undefined) copy.address = peer.address;
  return copy;
}

/** The connection facade behind a connection actor, if `actor` is one. */
function connectionOf(actor: AnyActorRef): Connection | undefined {
  const facade = (actor.getSnapshot() as { context?: { transport?: { facade?: unknown } } } | undefined)?.context?.transport?.facade;
  return facade instanceof Connection ? facade : undefined;
}

/**
 * The server's connections that are not closed yet, handshake included, read from its
 * supervision tree (direct children and those grouped under intermediate supervisors).
 */
export function serverConnections(server: Server): Connection[] {
  const found: Connection[] = [];
  const visit = (actor: AnyActorRef, depth: number): void => {
    const children = (actor.getSnapshot() as { children?: Record<string, AnyActorRef> }).children;
    if (children === undefined) return;
    for (const child of Object.values(children)) {
      if (child === undefined) continue;
      const connection = connectionOf(child);
      if (connection !== undefined) {
        if (connection.state !== 'closed') found.push(connection);
      } else if (depth < 2) {
        visit(child, depth + 1); // an intermediate group of connections
      }
    }
  };
  visit(server.actor, 0);
  return found;
}

interface ServerMeta {
  messageTypes: string[] | undefined;
  protocol: { name?: string; version?: string | number } | undefined;
}
const serverMeta = new WeakMap<object, ServerMeta>();

/**
 * @internal Called once by the server's constructor with its resolved options. Message types
 * come from `introspection.messageTypes`, else a declared protocol's definition, else the
 * handlers' names.
 */
export function registerServer(server: Server, options: object, introspection: boolean | IntrospectionOptions | undefined): void {
  serverStartedAt.set(server, Date.now());
  const o = options as {
    handlers?: Record<string, unknown>;
    schemas?: Record<string, unknown>;
    protocol?: { definition?: Record<string, unknown>; name?: string; version?: string | number };
    protocolMeta?: { name?: string; version?: string | number };
  };
  const declared = typeof introspection === 'object' && introspection !== null ? introspection.messageTypes : undefined;
  const definition = o.protocol?.definition ?? o.schemas;
  const messageTypes =
    declared !== undefined
      ? [...declared]
      : definition !== undefined && definition !== null
        ? Object.keys(definition)
        : o.handlers !== undefined && o.handlers !== null
          ? Object.keys(o.handlers)
          : undefined;
  const meta = o.protocolMeta ?? o.protocol;
  const protocol =
    meta !== undefined && (meta.name !== undefined || meta.version !== undefined)
      ? { ...(meta.name !== undefined ? { name: meta.name } : {}), ...(meta.version !== undefined ? { version: meta.version } : {}) }
      : undefined;
  serverMeta.set(server, { messageTypes, protocol });
}

/** Throws INVALID_ARGUMENT for an unusable `introspection` option (before anything is bound). */
export function validateIntrospectionOptions(options: unknown): void {
  if (options === undefined || options === true || options === false) return;
  if (typeof options !== 'object' || options === null) {
    throw new ConverseError('INVALID_ARGUMENT', 'introspection must be true, false or an object ({ messageTypes?, allow? }).');
  }
  const { allow, messageTypes } = options as IntrospectionOptions;
  if (allow !== undefined && typeof allow !== 'function') {
    throw new ConverseError('INVALID_ARGUMENT', 'introspection.allow must be a function (peer) => boolean.');
  }
  if (messageTypes !== undefined && (!Array.isArray(messageTypes) || messageTypes.some((t) => typeof t !== 'string'))) {
    throw new ConverseError('INVALID_ARGUMENT', 'introspection.messageTypes must be an array of strings.');
  }
}

/** The server as plain data. */
export function describeServer(server: Server, now = Date.now()): ServerInfo {
  const snapshot = server.actor.getSnapshot();
  const context = snapshot.context;
  const startedAt = serverStartedAt.get(server) ?? now;
  return {
    library: 'interprocess-converse',
    version: libraryVersion(),
    protocolVersion: PROTOCOL_VERSION,
    introspectionVersion: INTROSPECTION_VERSION,
    socket: server.name,
    pid: process.pid,
    startedAt,
    uptime: Math.max(0, now - startedAt),
    state: snapshot.value as ServerInfo['state'],
    live: context.live,
    accepted: context.accepted,
    refused: context.refused,
    maxConnections: context.maxConnections,
    messageTypes: serverMeta.get(server)?.messageTypes,
    ...(serverMeta.get(server)?.protocol !== undefined ? { protocol: serverMeta.get(server)!.protocol } : {}),
  };
}

// ── Observing a server ──────────────────────────────────────────────────────────────────────

const askErrorChannel = 'interprocess-converse:ask:error';

/**
 * Watches one server while it has listeners: an XState inspection observer on the server's
 * actor system turns connection snapshots into state-change events. Nothing is attached while
 * nobody listens.
 */
class ServerObserver {
  readonly listeners = new Set<(event: IntrospectionEvent) => void>();
  timeline: IntrospectionEvent[] = [];
  recentlyClosed: ConnectionInfo[] = [];
  seq = 0;
  private inspection: Subscription | undefined;
  private states = new WeakMap<AnyActorRef, ConnectionState>();
  private serverState = '';
  private readonly onInspect = (event: InspectionEvent): void => this.inspect(event);
  private readonly onAskError = (message: unknown): void => {
    const { connection, error } = message as { connection?: unknown; error?: unknown };
    if (connection instanceof Connection && this.server.connections.get(connection.id) === connection) {
      const info = errorInfo(error, Date.now());
      if (info !== undefined) lastErrors.set(connection, info);
    }
  };
  private readonly onConnectionError = (error: ConverseError, connection: Connection | undefined): void => {
    // Errors of live connections arrive as their `closed` transition; refusals have no connection.
    if (connection === undefined) this.emit({ kind: 'refused', seq: 0, at: Date.now(), code: error.code, message: error.message });
  };

  constructor(private readonly server: Server) {}

  subscribe(listener: (event: IntrospectionEvent) => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.attach();
    return () => {
      if (this.listeners.delete(listener) && this.listeners.size === 0) this.detach();
    };
  }

  private attach(): void {
    this.serverState = String(this.server.actor.getSnapshot().value);
    for (const connection of serverConnections(this.server)) this.states.set(connection.actor, connection.state);
    this.inspection = this.server.actor.system.inspect(this.onInspect);
    diagnosticsChannel.subscribe(askErrorChannel, this.onAskError);
    this.server.on('connectionError', this.onConnectionError);
  }

  private detach(): void {
    this.inspection?.unsubscribe();
    this.inspection = undefined;
    diagnosticsChannel.unsubscribe(askErrorChannel, this.onAskError);
    this.server.off('connectionError', this.onConnectionError);
    this.timeline = [];
    this.recentlyClosed = [];
    this.states = new WeakMap();
  }

  /** Runs inside XState's processing: only snapshots matter, and only changes of value. */
  private inspect(event: InspectionEvent): void {
    if (event.type !== '@xstate.snapshot') return;
    const actor = event.actorRef as AnyActorRef;
    if (actor === this.server.actor) {
      const to = String((event.snapshot as { value?: unknown }).value);
      if (to !== this.serverState) {
        const from = this.serverState;
        this.serverState = to;
        this.emit({ kind: 'server', seq: 0, at: Date.now(), from, to });
      }
      return;
    }
    const connection = connectionOf(actor);
    if (connection === undefined) return;
    const to = (event.snapshot as { value?: unknown }).value as ConnectionState;
    const from = this.states.get(actor) ?? null;
    if (from === to) return;
    this.states.set(actor, to);
    const now = Date.now();
    const info = describeConnection(connection, now);
    info.state = to;
    const change: IntrospectionEvent = { kind: 'connection', seq: 0, at: now, id: connection.id, from, to, connection: info };
    if (to === 'closed') {
      const error = errorInfo(connection.closeReason, now);
      if (error !== undefined) {
        change.error = error;
        info.lastError = error;
      }
      this.recentlyClosed.push(info);
      if (this.recentlyClosed.length > RECENTLY_CLOSED_LENGTH) this.recentlyClosed.shift();
    }
    this.emit(change);
  }

  private emit(event: IntrospectionEvent): void {
    event.seq = ++this.seq;
    this.timeline.push(event);
    if (this.timeline.length > TIMELINE_LENGTH) this.timeline.shift();
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        process.emitWarning(`interprocess-converse: an introspection listener threw: ${(error as Error)?.message ?? String(error)}`, {
          code: 'INTERPROCESS_CONVERSE_INTROSPECTION_LISTENER_FAILED',
        });
      }
    }
  }
}

const observers = new WeakMap<object, ServerObserver>();

function observerOf(server: Server): ServerObserver {
  let observer = observers.get(server);
  if (observer === undefined) observers.set(server, (observer = new ServerObserver(server)));
  return observer;
}

/**
 * Call `listener` for every connection state change of `server` (a connection appearing,
 * handshake → active → closing → closed), every change of the supervisor's state, and every
 * refused socket. Returns a function that stops it. While at least one listener is attached the
 * server keeps a short timeline and the recently closed connections (see `watchStart`).
 */
export function observeServer(server: Server, listener: (event: IntrospectionEvent) => void): () => void {
  return observerOf(server).subscribe(listener);
}

/** The state of `server` now, with the timeline kept while it is observed. */
export function watchStart(server: Server): WatchStart {
  const now = Date.now();
  const observer = observerOf(server);
  return {
    seq: observer.seq,
    server: describeServer(server, now),
    connections: serverConnections(server).map((c) => describeConnection(c, now)),
    recentlyClosed: [...observer.recentlyClosed],
    timeline: [...observer.timeline],
  };
}

// ── The reserved message types, server side ─────────────────────────────────────────────────

/** Outstanding `$converse.event` tells per watcher beyond which events are dropped (a watcher that stopped reading). */
const MAX_UNSENT_EVENTS = 1024;

/**
 * @internal Introspection as a server plug-in (composed by `listen()`): it notes when the
 * server started and when each connection opened, and answers the reserved `$converse.*`
 * types when `introspection` is on.
 */
export function introspectionPlugin(
  server: Server,
  options: object,
  introspection: boolean | IntrospectionOptions | undefined,
  socketMode?: number,
): ServerPlugin {
  registerServer(server, options, introspection);
  const messageWatchers = new MessageWatchers(() => serverConnections(server));
  return {
    handlers: introspectionHandlers(server, introspection, messageWatchers, defaultIntrospectionAccess(server.name, socketMode)),
    connectionMade: (connection) => {
      markConnectionOpened(connection);
      messageWatchers.connectionMade(connection);
    },
  };
}

/**
 * @internal The server's handlers for the reserved `$converse.*` types, passed to each
 * connection as `internalHandlers` when `introspection` is on.
 */
export function introspectionHandlers(
  server: Server,
  options: boolean | IntrospectionOptions | undefined,
  messageWatchers?: MessageWatchers,
  defaultAllow?: (peer: PeerCredentials) => boolean,
): Record<string, (event: any, ctx: any) => unknown> | undefined {
  if (options === undefined || options === false) return undefined;
  validateIntrospectionOptions(options);
  const own = options === true ? undefined : options.allow;
  const allow = own ?? defaultAllow;
  const refusal = own === undefined ? DEFAULT_ACCESS_REFUSAL : 'introspection.allow refused it';
  const watchers = new Map<Connection, () => void>();

  const check = (connection: Connection): void => {
    if (allow === undefined) return;
    let allowed = false;
    try {
      allowed = allow(connection.peer) === true;
    } catch {
      allowed = false;
    }
    if (!allowed) {
      throw new ConverseError('ACCESS_DENIED', `This peer (uid ${connection.peer.uid ?? 'unknown'}) may not introspect the server (${refusal}).`);
    }
  };

  return {
    [IntrospectionMessages.INFO]: (_event: unknown, ctx: { connection: Connection }) => {
      check(ctx.connection);
      return { ...describeServer(server), you: ctx.connection.id };
    },
    [IntrospectionMessages.CONNECTIONS]: (_event: unknown, ctx: { connection: Connection }) => {
      check(ctx.connection);
      const now = Date.now();
      return serverConnections(server).map((c) => describeConnection(c, now));
    },
    [IntrospectionMessages.MACHINES]: (event: { keys?: unknown }, ctx: { connection: Connection }) => {
      check(ctx.connection);
      const keys = Array.isArray(event.keys) ? event.keys.filter((k): k is string => typeof k === 'string').slice(0, 256) : undefined;
      return sessionGraphs(serverConnections(server), keys);
    },
    [IntrospectionMessages.WATCH]: (_event: unknown, ctx: { connection: Connection }) => {
      const connection = ctx.connection;
      check(connection);
      if (!watchers.has(connection)) {
        const stop = observeServer(server, lossyTeller(connection, IntrospectionMessages.EVENT, 'event', MAX_UNSENT_EVENTS));
        watchers.set(connection, stop);
        void connection.closed.then(() => {
          watchers.get(connection)?.();
          watchers.delete(connection);
        });
      }
      const start = watchStart(server);
      start.server.you = connection.id;
      return start;
    },
    [MessageWatchTypes.WATCH]: (_event: unknown, ctx: { connection: Connection }) => {
      check(ctx.connection);
      if (messageWatchers === undefined) throw new ConverseError('NO_HANDLER', 'This server does not offer message watching.');
      messageWatchers.add(ctx.connection);
      return { watching: true };
    },
    [MessageWatchTypes.UNWATCH]: (_event: unknown, ctx: { connection: Connection }) => {
      messageWatchers?.remove(ctx.connection);
      return { watching: false };
    },
    [IntrospectionMessages.UNWATCH]: (_event: unknown, ctx: { connection: Connection }) => {
      const stop = watchers.get(ctx.connection);
      watchers.delete(ctx.connection);
      stop?.();
      return { watching: false };
    },
  };
}

// ── The client side ─────────────────────────────────────────────────────────────────────────

/** A running `$converse.watch`. */
export interface ServerWatch {
  /** The server's state when watching started. Events with `seq` ≤ `initial.seq` are already in it. */
  readonly initial: WatchStart;
  /** Stop watching (asks `$converse.unwatch` once no other watch of this connection remains). */
  stop(): Promise<void>;
}

/** Introspection of a server over a connection to it (the server must listen with `introspection: true`). */
export interface IntrospectionClient {
  /** `$converse.info`: versions, socket, pid, uptime, counts, message types. */
  info(options?: AskOptions): Promise<ServerInfo>;
  /** `$converse.connections`: every connection not yet closed. */
  connections(options?: AskOptions): Promise<ConnectionInfo[]>;
  /** `$converse.machines`: the graphs of live connections' session machines, by `SessionInfo.graph` (those in `keys`, or all). */
  machines(keys?: string[], options?: AskOptions): Promise<Record<string, MachineGraph>>;
  /**
   * `$converse.watch`: `listener` gets every state change from now on (never before this
   * promise resolves, and never one already reflected in `initial`).
   */
  watch(listener: (event: IntrospectionEvent, dropped: number) => void, options?: AskOptions): Promise<ServerWatch>;
}

interface WatchRegistry {
  listeners: Set<(event: IntrospectionEvent, dropped: number) => void>;
}
const registries = new WeakMap<object, WatchRegistry>();

/**
 * The client side of introspection, over `connection` (from `connect`). Asks fail with
 * NO_HANDLER when the server did not enable introspection, and with REMOTE_ERROR (remote.code
 * ACCESS_DENIED) when its `introspection.allow` refuses this peer.
 */
export function introspect(connection: Connection<any, any>): IntrospectionClient {
  const ask = <T>(type: string, options?: AskOptions): Promise<T> => connection.ask({ type } as never, options) as Promise<T>;
  return {
    info: (options) => ask<ServerInfo>(IntrospectionMessages.INFO, options),
    connections: (options) => ask<ConnectionInfo[]>(IntrospectionMessages.CONNECTIONS, options),
    machines: (keys, options) => connection.ask({ type: IntrospectionMessages.MACHINES, ...(keys === undefined ? {} : { keys }) } as never, options) as Promise<Record<string, MachineGraph>>,
    async watch(listener, options) {
      const registry = registryOf(connection);
      let ready = false;
      let early: Array<[IntrospectionEvent, number]> = [];
      let floor = Infinity;
      const deliver = (event: IntrospectionEvent, dropped: number): void => {
        if (!ready) {
          early.push([event, dropped]);
          return;
        }
        if (event.seq > floor) listener(event, dropped);
      };
      registry.listeners.add(deliver);
      let initial: WatchStart;
      try {
        initial = await ask<WatchStart>(IntrospectionMessages.WATCH, options);
      } catch (error) {
        registry.listeners.delete(deliver);
        throw error;
      }
      floor = initial.seq;
      // Events that arrived with (or before) the reply are delivered on the next turn, so that
      // the caller sees `initial` first; events arriving meanwhile queue behind them.
      setImmediate(() => {
        const queued = early;
        early = [];
        ready = true;
        for (const [event, dropped] of queued) if (event.seq > floor) listener(event, dropped);
      });
      let stopped = false;
      return {
        initial,
        async stop() {
          if (stopped) return;
          stopped = true;
          registry.listeners.delete(deliver);
          if (registry.listeners.size === 0 && connection.state === 'active') {
            await ask(IntrospectionMessages.UNWATCH).catch(() => undefined);
          }
        },
      };
    },
  };
}

function registryOf(connection: Connection): WatchRegistry {
  let registry = registries.get(connection);
  if (registry !== undefined) return registry;
  const created: WatchRegistry = { listeners: new Set() };
  registries.set(connection, created);
  // `$converse.event` tells go to the library's own handler (before user handlers, in handler
  // and iteration mode alike), so they never reach the application.
  // (A reconnecting connection keeps it on every new physical connection.)
  connection.useInternalHandler(IntrospectionMessages.EVENT, (message: { event?: IntrospectionEvent; dropped?: number }) => {
    const event = message.event;
    if (event === undefined || typeof event !== 'object') return;
    const dropped = typeof message.dropped === 'number' ? message.dropped : 0;
    for (const listener of [...created.listeners]) listener(event, dropped);
  });
  return created;
}
