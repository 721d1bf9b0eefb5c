import { Connection } from '../connection/connection.js';
import { ConverseError } from '../errors.js';
import type { MachineGraph } from '../machine-graph.js';
import {
  introspect,
  observeServer,
  sessionGraphs,
  serverConnections,
  watchStart,
  type ConnectionInfo,
  type IntrospectionEvent,
  type ServerInfo,
  type ServerWatch,
} from '../introspection.js';
import type { Server } from '../server.js';

/** Everything the page shows, as `GET /api/snapshot` returns it and the `state` SSE message carries it. */
export interface DashboardState {
  /** epoch ms */
  at: number;
  /** `local`: an in-process server; `remote`: a daemon read over its introspection messages. */
  mode: 'local' | 'remote';
  /** `disconnected` once a remote daemon can no longer be reached. */
  status: 'live' | 'disconnected';
  server: ServerInfo;
  /** Connections not yet closed, oldest first (at most `maxCards`). */
  connections: ConnectionInfo[];
  /** Connections left out past `maxCards`. */
  hidden: number;
  /** Recently closed connections, newest last. */
  recentlyClosed: ConnectionInfo[];
  /** Recent events, oldest first. */
  timeline: IntrospectionEvent[];
  /** Remote mode: the dashboard's own connection id on the daemon. */
  self?: string;
}

/** Where a dashboard gets its data. */
export interface DashboardSource {
  readonly mode: 'local' | 'remote';
  start(): Promise<void>;
  /** The state now (a remote source asks the daemon). */
  state(maxCards: number): Promise<DashboardState>;
  /** The graphs of session machines named by `SessionInfo.graph` (those it cannot find are left out). */
  graphs(keys: string[]): Promise<Record<string, MachineGraph>>;
  /** Every change as it happens; returns an unsubscribe function. */
  subscribe(listener: (event: IntrospectionEvent) => void): () => void;
  /** Called when the source can no longer deliver (remote daemon gone). */
  onEnd(listener: (error: ConverseError) => void): void;
  stop(): Promise<void>;
}

const TIMELINE_LENGTH = 200;
const RECENTLY_CLOSED_LENGTH = 20;

function byAge(a: ConnectionInfo, b: ConnectionInfo): number {
  return (a.openedAt ?? 0) - (b.openedAt ?? 0);
}

/** An in-process server: read directly, changes from an inspection observer on its actor system. */
export class LocalSource implements DashboardSource {
  readonly mode = 'local' as const;
  private readonly listeners = new Set<(event: IntrospectionEvent) => void>();
  private stopObserving: (() => void) | undefined;

  constructor(private readonly server: Server) {}

  async start(): Promise<void> {
    // Observing for the dashboard's whole life keeps the timeline and recently closed list.
    this.stopObserving = observeServer(this.server, (event) => {
      for (const listener of this.listeners) listener(event);
    });
  }

  async state(maxCards: number): Promise<DashboardState> {
    const start = watchStart(this.server);
    const connections = start.connections.sort(byAge);
    return {
      at: Date.now(),
      mode: 'local',
      status: 'live',
      server: start.server,
      connections: connections.slice(0, maxCards),
      hidden: Math.max(0, connections.length - maxCards),
      recentlyClosed: start.recentlyClosed,
      timeline: start.timeline,
    };
  }

  async graphs(keys: string[]): Promise<Record<string, MachineGraph>> {
    return sessionGraphs(serverConnections(this.server), keys);
  }

  subscribe(listener: (event: IntrospectionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onEnd(): void {
    // An in-process server never goes away under the dashboard; its state shows `closed`.
  }

  async stop(): Promise<void> {
    this.stopObserving?.();
    this.stopObserving = undefined;
    this.listeners.clear();
  }
}

/**
 * A daemon read over its introspection messages (`listen(name, { introspection: true })`):
 * `$converse.watch` for changes, `$converse.info` and `$converse.connections` for fresh counters.
 */
export class RemoteSource implements DashboardSource {
  readonly mode = 'remote' as const;
  private readonly listeners = new Set<(event: IntrospectionEvent) => void>();
  private readonly endListeners: Array<(error: ConverseError) => void> = [];
  private watch: ServerWatch | undefined;
  private server: ServerInfo | undefined;
  private connections = new Map<string, ConnectionInfo>();
  private timeline: IntrospectionEvent[] = [];
  private recentlyClosed: ConnectionInfo[] = [];
  private self: string | undefined;
  private status: 'live' | 'disconnected' = 'live';
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly connection: Connection,
    private readonly timeout: number = 5000,
  ) {}

  async start(): Promise<void> {
    const client = introspect(this.connection);
    this.watch = await client.watch((event) => this.apply(event), { timeout: this.timeout });
    const initial = this.watch.initial;
    this.server = initial.server;
    this.self = initial.server.you;
    for (const c of initial.connections) this.connections.set(c.id, c);
    this.timeline = [...initial.timeline];
    this.recentlyClosed = [...initial.recentlyClosed];
    void this.connection.closed.then(() => {
      this.status = 'disconnected';
      const error =
        this.connection.closeReason ??
        new ConverseError('CONNECTION_CLOSED', `The connection to the daemon at ${this.server?.socket ?? 'its socket'} closed.`);
      for (const listener of this.endListeners) listener(error);
    });
  }

  private apply(event: IntrospectionEvent): void {
    this.timeline.push(event);
    if (this.timeline.length > TIMELINE_LENGTH) this.timeline.shift();
    if (event.kind === 'connection') {
      if (event.to === 'closed') {
        this.connections.delete(event.id);
        this.recentlyClosed.push(event.connection);
        if (this.recentlyClosed.length > RECENTLY_CLOSED_LENGTH) this.recentlyClosed.shift();
      } else {
        this.connections.set(event.id, event.connection);
      }
    } else if (event.kind === 'server' && this.server !== undefined) {
      this.server = { ...this.server, state: event.to as ServerInfo['state'] };
    }
    for (const listener of this.listeners) listener(event);
  }

  /** Fresh counters from the daemon (at most one request in flight). */
  private refresh(): Promise<void> {
    if (this.status !== 'live' || this.connection.state !== 'active') return Promise.resolve();
    this.refreshing ??= (async () => {
      try {
        const client = introspect(this.connection);
        const [server, connections] = await Promise.all([client.info({ timeout: this.timeout }), client.connections({ timeout: this.timeout })]);
        this.server = server;
        this.connections = new Map(connections.map((c) => [c.id, c]));
      } catch {
        // Keep what we had; a closed connection is reported through onEnd.
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  async state(maxCards: number): Promise<DashboardState> {
    await this.refresh();
    const connections = [...this.connections.values()].sort(byAge);
    const server = this.server!;
    return {
      at: Date.now(),
      mode: 'remote',
      status: this.status,
      // Counters as of the last answer from the daemon.
      server: { ...server },
      connections: connections.slice(0, maxCards),
      hidden: Math.max(0, connections.length - maxCards),
      recentlyClosed: [...this.recentlyClosed],
      timeline: [...this.timeline],
      ...(this.self !== undefined ? { self: this.self } : {}),
    };
  }

  async graphs(keys: string[]): Promise<Record<string, MachineGraph>> {
    if (this.status !== 'live') return {};
    // A daemon of an earlier version has no `$converse.machines`: its sessions are shown without diagrams.
    return introspect(this.connection)
      .machines(keys, { timeout: this.timeout })
      .catch(() => ({}));
  }

  subscribe(listener: (event: IntrospectionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onEnd(listener: (error: ConverseError) => void): void {
    this.endListeners.push(listener);
  }

  async stop(): Promise<void> {
    await this.watch?.stop().catch(() => undefined);
    this.watch = undefined;
    this.listeners.clear();
  }
}
