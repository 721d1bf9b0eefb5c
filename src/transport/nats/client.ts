import { ConverseError } from '../../errors.js';
import type { NatsAddress } from '../address.js';
import type { NatsOptions } from './options.js';

/**
 * The part of `@nats-io/transport-node` this library uses, named structurally: the package is an
 * optional peer dependency, loaded only when a `nats://` name is used.
 */
export interface NatsMsg {
  readonly subject: string;
  readonly reply?: string;
  readonly data: Uint8Array;
  respond(payload?: Uint8Array | string): boolean;
}
export interface NatsSubscription {
  unsubscribe(max?: number): void;
  isClosed(): boolean;
}
export interface NatsConnection {
  readonly info?: { max_payload: number };
  publish(subject: string, payload?: Uint8Array | string): void;
  subscribe(subject: string, options: { queue?: string; callback: (error: Error | null, msg: NatsMsg) => void }): NatsSubscription;
  request(subject: string, payload: Uint8Array | string, options: { timeout: number }): Promise<NatsMsg>;
  flush(): Promise<void>;
  drain(): Promise<void>;
  close(): Promise<void>;
  closed(): Promise<void | Error>;
  isClosed(): boolean;
  isDraining(): boolean;
  status(): AsyncIterable<{ type: string }>;
}
interface NatsModule {
  connect(options: Record<string, unknown>): Promise<NatsConnection>;
  createInbox(prefix?: string): string;
}

const PACKAGE = '@nats-io/transport-node';
let loading: Promise<NatsModule> | undefined;

export function loadNats(): Promise<NatsModule> {
  return (loading ??= import(PACKAGE).then(
    (module: NatsModule) => module,
    (error: unknown) => {
      loading = undefined;
      throw new ConverseError(
        'MISSING_DEPENDENCY',
        `nats:// names need the NATS client: install it next to interprocess-converse (npm install ${PACKAGE}). Loading it failed: ${(error as Error)?.message ?? String(error)}.`,
        { cause: error },
      );
    },
  ));
}

/** Something that holds a NATS connection open while it lives (a listener, a virtual stream). */
export interface NatsLease {
  readonly nc: NatsConnection;
  readonly nats: NatsModule;
  /** Another lease on the same connection (for a stream opened under a listener's lease). */
  share(): NatsLease;
  /** Let go of the connection; the last lease of a connection this library opened drains and closes it. */
  release(): Promise<void>;
  /** Register a stream to be reset when NATS disconnects (messages may have been lost). Returns the unregister function. */
  watch(onLost: (error: ConverseError) => void): () => void;
}

interface Shared {
  nc: NatsConnection;
  owned: boolean;
  leases: number;
  watchers: Set<(error: ConverseError) => void>;
  closing?: Promise<void>;
}

/**
 * One NATS connection per process per server address (and per `connectOptions` object): every
 * listener and client stream to the same NATS shares it, as NATS clients are meant to be used.
 */
const byUrl = new Map<string, Promise<Shared>>();
const byOptions = new WeakMap<object, Map<string, Promise<Shared>>>();
const byConnection = new WeakMap<object, Shared>();

export async function leaseNatsConnection(address: NatsAddress, options: NatsOptions | undefined, timeout: number): Promise<NatsLease> {
  const nats = await loadNats();
  let shared: Shared;
  if (options?.connection !== undefined) {
    const nc = options.connection as NatsConnection;
    if (typeof nc !== 'object' || nc === null || typeof nc.publish !== 'function') {
      throw new ConverseError('INVALID_ARGUMENT', 'nats.connection must be a NatsConnection from @nats-io/transport-node.');
    }
    shared = byConnection.get(nc) ?? watchConnection({ nc, owned: false, leases: 0, watchers: new Set() });
    byConnection.set(nc, shared);
  } else {
    const server = `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
    const table = options?.connectOptions === undefined ? byUrl : mapFor(options.connectOptions);
    let pending = table.get(server);
    if (pending === undefined) {
      pending = nats
        .connect({ name: 'interprocess-converse', timeout, ...options?.connectOptions, servers: options?.connectOptions?.servers ?? server })
        .then((nc) => watchConnection({ nc, owned: true, leases: 0, watchers: new Set() }))
        .catch((error: unknown) => {
          table.delete(server);
          throw new ConverseError('CONNECT_FAILED', `Cannot reach the NATS server for "${address.name}": ${(error as Error)?.message ?? String(error)}. Check that nats-server runs there.`, { cause: error });
        });
      table.set(server, pending);
      void pending.then((s) => s.nc.closed().then(() => table.get(server) === pending && table.delete(server)), () => {});
    }
    shared = await pending;
    if (shared.nc.isClosed() || shared.nc.isDraining()) {
      if (table.get(server) === pending) table.delete(server);
      return leaseNatsConnection(address, options, timeout);
    }
  }
  return leaseOf(shared, nats);
}

function leaseOf(shared: Shared, nats: NatsModule): NatsLease {
  shared.leases++;
  let released = false;
  return {
    nc: shared.nc,
    nats,
    share: () => leaseOf(shared, nats),
    release: () => {
      if (released) return shared.closing ?? Promise.resolve();
      released = true;
      shared.leases--;
      if (shared.leases === 0 && shared.owned) {
        shared.closing ??= shared.nc.isClosed() ? Promise.resolve() : shared.nc.drain().catch(() => shared.nc.close()).catch(() => {});
      }
      return shared.closing ?? Promise.resolve();
    },
    watch: (onLost) => {
      shared.watchers.add(onLost);
      return () => shared.watchers.delete(onLost);
    },
  };
}

function mapFor(options: object): Map<string, Promise<Shared>> {
  let table = byOptions.get(options);
  if (table === undefined) byOptions.set(options, (table = new Map()));
  return table;
}

/**
 * While NATS is disconnected, messages published by or to this client are lost, so no virtual
 * stream on it can keep its promise of an unbroken byte sequence: each is reset at once (its
 * connection closes; a reconnecting client opens a fresh one).
 */
function watchConnection(shared: Shared): Shared {
  const lose = (why: string): void => {
    const error = new ConverseError('CONNECTION_CLOSED', `The connection to NATS was lost (${why}); messages in flight may be gone, so this conversation was closed.`);
    for (const onLost of [...shared.watchers]) onLost(error);
  };
  void (async () => {
    try {
      for await (const status of shared.nc.status()) {
        if (status.type === 'disconnect' || status.type === 'staleConnection') lose(status.type);
      }
    } catch {
      /* the status iterator ends with the connection */
    }
  })();
  void shared.nc.closed().then(() => lose('closed'));
  return shared;
}
