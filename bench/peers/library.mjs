// This library, as a user would use it: handlers on the server, `connection.ask` on the client.
import { handleAdd } from '../lib/common.mjs';
import { libraryModule } from '../lib/env.mjs';

// ../dist/src/index.js (the build), or the build ICV_BENCH_DIST points at.
const { connect: converseConnect, listen } = await libraryModule('src/index.js');

export const name = 'interprocess-converse';
export const label = 'interprocess-converse (this library)';
export const packages = [];

export async function serve(path, options = {}) {
  let server;
  server = await listen(path, {
    handlers: {
      add: (event) => handleAdd(event),
      // S5: the ask that triggers a broadcast of one small event to every client.
      broadcast: (event) => {
        server.broadcast({ type: 'tick', seq: event.seq });
        return server.connections.size;
      },
    },
    // null: the library's default (1 MiB); the benchmark gives it room for S3.
    maxMessageSize: options.maxMessageSize ?? undefined,
    maxConnections: options.maxConnections,
    // Every benchmark client runs as this one user: lift the per-user cap with the total one.
    maxConnectionsPerPeer: options.maxConnections,
    backlog: 4096,
  });
  return {
    connections: () => server.connections.size,
    // Accepts are timed around the server's own accept function (a private field of its
    // transport listener, called by the net.Server's 'connection' listener right after it reads
    // the peer's credentials), for the accept-stall target.
    acceptHook: (wrap) => {
      const listener = server.bound;
      if (listener === undefined || typeof listener.onConnection !== 'function') return;
      const accept = listener.onConnection;
      listener.onConnection = wrap((accepted) => accept.call(listener, accepted), (accepted) => accepted.socket);
    },
    close: () => server.close({ timeout: 1000 }),
  };
}

export async function connect(path, options = {}) {
  const connection = await converseConnect(path, {
    maxMessageSize: options.maxMessageSize ?? undefined,
    connectTimeout: 60000,
    replyTimeout: 60000,
    handlers: options.onEvent ? { tick: (event) => options.onEvent(event) } : undefined,
  });
  return {
    ask: (msg) => connection.ask(msg),
    close: () => connection.destroy(),
    raw: connection,
  };
}
