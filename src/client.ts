import { connectionId } from './connection-id.js';
import { createActor } from 'xstate';
import { connectionMachine } from '../machines/connection.machine.js';
import { ConnectionCore } from './connection/core.js';
import { Connection } from './connection/connection.js';
import { ConverseError, connectionClosedError } from './errors.js';
import { resolveOptions, type ConnectOptions, type ResolvedOptions } from './options.js';
import { loadOpenTelemetry } from './otel.js';
import { ReconnectingConnection, resolveReconnectPolicy } from './reconnect.js';
import { parseAddress } from './transport/address.js';
import { connectTransport } from './transport/dispatch.js';
import { peerCredentialsUnavailableReason } from './transport/peer-credentials.js';

/**
 * Connect to the server at `name`; resolves once the handshake has completed.
 * Name the protocols as the server does, `<ServerApi, ClientApi>`: the connection asks
 * `ServerApi` and serves `ClientApi` (its `handlers`).
 *
 * Fails at once with CONNECT_FAILED (the errno as `cause`) when nothing listens at `name`,
 * unless `waitForServer` (or `reconnect`) asks to wait for it, up to `connectTimeout`.
 * With `reconnect`, the connection survives server restarts: see `ReconnectOptions`.
 */
export async function connect<ServerApi = any, ClientApi = any>(
  name: string,
  options: ConnectOptions<ClientApi, ServerApi> = {},
): Promise<Connection<ClientApi, ServerApi>> {
  const resolved = resolveOptions(options);
  // OpenTelemetry is used when it can be imported (an optional peer dependency; loaded once).
  await loadOpenTelemetry();
  const id = connectionId();
  if (options.reconnect !== undefined && options.reconnect !== false) {
    const policy = resolveReconnectPolicy(options.reconnect === true ? {} : options.reconnect);
    // Asking to reconnect is asking to wait: the first connect waits for the server to appear;
    // later attempts fail fast, the reconnect policy's backoff does the waiting.
    const first = await establish(name, id, resolved, options, true);
    return new ReconnectingConnection<ClientApi, ServerApi>(first, id, policy, () => establish(name, id, resolved, options, false));
  }
  const core = await establish(name, id, resolved, options, options.waitForServer === true);
  return new Connection<ClientApi, ServerApi>(core, id);
}

/** One physical connection: socket, server identity check, connection actor, handshake. */
async function establish(name: string, id: string, resolved: ResolvedOptions, options: ConnectOptions<any, any>, waitForServer: boolean): Promise<ConnectionCore> {
  const { socket, peer } = await connectTransport(name, { timeout: resolved.connectTimeout, waitForServer }, options);
  if (options.expectServerUid !== undefined && peer.uid !== options.expectServerUid) {
    socket.destroy();
    throw new ConverseError(
      'ACCESS_DENIED',
      peer.uid === undefined
        ? `Cannot verify the server's uid at "${name}": no peer credentials (${parseAddress(name).kind !== 'local' ? 'only local sockets carry them; over TLS check connection.peer.fingerprint instead' : (peerCredentialsUnavailableReason ?? 'this platform does not report them')}), and expectServerUid is set; refusing to talk to it.`
        : `The server at "${name}" runs as uid ${peer.uid}, not the expected uid ${options.expectServerUid}: another process may have taken the name. Nothing was sent to it.`,
    );
  }
  const core = new ConnectionCore(socket, {
    role: 'client',
    handlers: resolved.handlers,
    maxMessageSize: resolved.maxMessageSize,
    replyTimeout: resolved.replyTimeout,
    checksum: resolved.checksum,
    frameTimeout: resolved.frameTimeout,
    maxWriteBuffer: resolved.maxWriteBuffer,
    maxInFlight: resolved.maxInFlight,
    keepalive: resolved.keepalive,
    protocolMeta: resolved.protocol,
    hasSession: resolved.session !== undefined,
    trace: resolved.trace,
    warnUnobserved: resolved.warnUnobservedErrors,
  }, peer);
  const ready = new Promise<void>((resolve, reject) => {
    core.onPhase = (phase) => {
      if (phase === 'active') resolve();
      else if (phase === 'closed') reject(core.closeReason ?? connectionClosedError());
    };
  });
  const machine = resolved.session === undefined ? connectionMachine : connectionMachine.provide({ actors: { session: resolved.session as never } });
  const actor = createActor(machine, {
    input: {
      id,
      role: 'client',
      transport: core,
      pending: core.pending,
      handshakeTimeout: resolved.handshakeTimeout,
      closeTimeout: resolved.closeTimeout,
      sessionInput: resolved.session === undefined ? undefined : { connectionId: id, peer },
    },
    inspect: options.inspect,
  });
  actor.start();
  await ready;
  core.onPhase = undefined;
  return core;
}
