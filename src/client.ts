import { nanoid } from 'nanoid';
import { createActor } from 'xstate';
import { connectionMachine } from '../machines/connection.machine.js';
import { ConnectionCore } from './connection-core.js';
import { Connection } from './connection.js';
import { ConverseError, connectionClosedError } from './errors.js';
import { resolveOptions, type ConnectOptions } from './options.js';
import { connectSocket } from './transport/connector.js';
import { readPeerCredentials } from './transport/peer-credentials.js';

/**
 * Connect to the server at `name`; resolves once the handshake has completed.
 * Name the protocols as the server does, `<ServerApi, ClientApi>`: the connection asks
 * `ServerApi` and serves `ClientApi` (its `handlers`).
 */
export async function connect<ServerApi = any, ClientApi = any>(
  name: string,
  options: ConnectOptions<ClientApi, ServerApi> = {},
): Promise<Connection<ClientApi, ServerApi>> {
  const resolved = resolveOptions(options);
  const socket = await connectSocket(name, resolved.connectTimeout);
  const peer = readPeerCredentials(socket);
  if (options.expectServerUid !== undefined && peer.uid !== options.expectServerUid) {
    socket.destroy();
    throw new ConverseError(
      'ACCESS_DENIED',
      peer.uid === undefined
        ? `Cannot verify the server's uid at "${name}" on this platform (no peer credentials), and expectServerUid is set; refusing to talk to it.`
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
    keepalive: resolved.keepalive,
  });
  const connection = new Connection<ClientApi, ServerApi>(core, nanoid(), peer);
  const ready = new Promise<void>((resolve, reject) => {
    core.onPhase = (phase) => {
      if (phase === 'active') resolve();
      else if (phase === 'closed') reject(core.closeReason ?? connectionClosedError());
    };
  });
  const actor = createActor(connectionMachine, {
    input: {
      id: connection.id,
      role: 'client',
      transport: core,
      pending: core.pending,
      handshakeTimeout: resolved.handshakeTimeout,
      closeTimeout: resolved.closeTimeout,
    },
    inspect: options.inspect,
  });
  actor.start();
  await ready;
  core.onPhase = undefined;
  return connection;
}
