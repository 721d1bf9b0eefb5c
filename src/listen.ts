import { introspectionPlugin, validateIntrospectionOptions } from './introspection.js';
import { resolveOptions, type ListenOptions } from './options.js';
import { Server } from './server.js';
import { bindListener } from './transport/listener.js';
import { sayIfPeerCredentialsUnavailable } from './transport/peer-credentials.js';

/**
 * Bind `name` and start accepting. Resolves once the socket is listening.
 * Connections are `Connection<ServerApi, ClientApi>`: they serve `ServerApi` and can ask `ClientApi`.
 */
export async function listen<ServerApi = any, ClientApi = any>(
  name: string,
  options: ListenOptions<ServerApi, ClientApi> = {},
): Promise<Server<ServerApi, ClientApi>> {
  const resolved = resolveOptions(options);
  validateIntrospectionOptions(options.introspection);
  const bound = await bindListener(name, { backlog: options.backlog, socketMode: options.socketMode });
  sayIfPeerCredentialsUnavailable();
  const access = {
    allow: options.allow,
    allowUids: options.allowUids === undefined ? undefined : new Set(options.allowUids),
  };
  // Introspection is a plug-in: the server itself knows nothing of it.
  return new Server<ServerApi, ClientApi>(name, bound, resolved, options.inspect, access, (server) => introspectionPlugin(server, resolved, options.introspection));
}
