import { nanoid } from 'nanoid';
import { createActor } from 'xstate';
import { connectionMachine } from '../machines/connection.machine.js';
import { ConnectionCore } from './connection-core.js';
import { Connection } from './connection.js';
import { connectionClosedError } from './errors.js';
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
  const core = new ConnectionCore(socket, {
    role: 'client',
    handlers: resolved.handlers,
    maxMessageSize: resolved.maxMessageSize,
    replyTimeout: resolved.replyTimeout,
    checksum: resolved.checksum,
  });
  const connection = new Connection<ClientApi, ServerApi>(core, nanoid(), readPeerCredentials(socket));
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
