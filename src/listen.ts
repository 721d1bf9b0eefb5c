import { introspectionPlugin, validateIntrospectionOptions } from './introspection.js';
import { resolveOptions, type ListenOptions } from './options.js';
import { loadOpenTelemetry } from './otel.js';
import { Server } from './server.js';
import { bindTransport } from './transport/dispatch.js';

/**
 * Bind `name` and start accepting. Resolves once the socket is listening. A plain name or path is
 * a local socket; `tcp://host:port`, `tls://host:port` and `nats://host:port/<service>` pick those transports.
 * Connections are `Connection<ServerApi, ClientApi>`: they serve `ServerApi` and can ask `ClientApi`.
 */
export async function listen<ServerApi = any, ClientApi = any>(
  name: string,
  options: ListenOptions<ServerApi, ClientApi> = {},
): Promise<Server<ServerApi, ClientApi>> {
  const resolved = resolveOptions(options);
  validateIntrospectionOptions(options.introspection);
  // OpenTelemetry is used when it can be imported (an optional peer dependency; loaded once).
  await loadOpenTelemetry();
  // The name picks the transport: a local socket, tcp://, tls:// or nats://.
  const bound = await bindTransport(name, {
    backlog: options.backlog,
    socketMode: options.socketMode,
    tls: options.tls,
    allowInsecureNetwork: options.allowInsecureNetwork,
    nats: options.nats,
    maxConnections: resolved.maxConnections,
    handshakeTimeout: resolved.handshakeTimeout,
  });
  const access = {
    allow: options.allow,
    allowUids: options.allowUids === undefined ? undefined : new Set(options.allowUids),
  };
  // Introspection is a plug-in: the server itself knows nothing of it.
  return new Server<ServerApi, ClientApi>(bound.name, bound, resolved, options.inspect, access, (server) =>
    introspectionPlugin(server, resolved, options.introspection, options.socketMode),
  );
}
