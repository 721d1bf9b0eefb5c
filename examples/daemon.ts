/**
 * A small supervised daemon.
 *
 *   node dist/examples/daemon.js [socket-name]
 *
 * It listens on the socket name given (or a fresh one from generateSocketName()), prints
 * `READY <name>` on stdout once clients can connect, serves `ServerApi` with one handler per
 * message, and shuts down gracefully on SIGTERM / SIGINT.
 *
 * Behind `listen` sits a supervisor XState actor (`server.actor`) with one child actor per
 * connected client: a client that misbehaves or disappears only ends its own child.
 */
import { ConverseError, generateSocketName, listen } from '../src/index.js';
import type { Connection, Server } from '../src/index.js';
import type { ClientApi, ServerApi } from './protocol.js';

const name = process.argv[2] ?? generateSocketName();
const startedAt = Date.now();

function say(line: string): void {
  console.log(`[daemon] ${line}`);
}

/** A readable label for a client. `peer.pid` comes from the kernel (SO_PEERCRED), not from the client. */
function who(connection: Connection<ServerApi, ClientApi>): string {
  return connection.peer.pid !== undefined ? `pid ${connection.peer.pid}` : `conn ${connection.id.slice(0, 6)}`;
}

/** Topics each client subscribed to, by connection id. Removed when the connection closes. */
const subscriptions = new Map<string, Set<string>>();

// The annotation is needed only because the `status` handler below refers to `server` itself.
const server: Server<ServerApi, ClientApi> = await listen<ServerApi, ClientApi>(name, {
  // One handler per message type. The return value is the reply (for asks); `ctx.connection`
  // is the client that sent it, so a handler can ask that client something back.
  handlers: {
    add: ({ a, b }, { connection }) => {
      say(`${who(connection)} asks add(${a}, ${b}) -> ${a + b}`);
      return a + b;
    },

    status: (_event, { connection }) => {
      // `server` is assigned by the time any message can arrive: handlers only run after listen().
      const reply = { uptime: Date.now() - startedAt, clients: server.connections.size };
      say(`${who(connection)} asks status -> uptime ${reply.uptime} ms, ${reply.clients} client(s)`);
      return reply;
    },

    // A tell: the client does not wait, and nothing we return goes back.
    log: ({ line }, { connection }) => {
      say(`${who(connection)} logs: ${line}`);
    },

    // A handler may be async and may ask the client back on the same connection before replying.
    // The client's original ask stays pending meanwhile; both directions share one socket.
    subscribe: async ({ topic }, { connection, signal }) => {
      say(`${who(connection)} asks subscribe("${topic}"); asking it to confirm first`);
      const confirmed = await connection.ask(
        { type: 'confirm', question: `Subscribe to "${topic}"?` },
        // Pass ctx.signal on: if the client gives up on its subscribe ask (or goes away),
        // our confirm ask is cancelled too instead of waiting for its timeout.
        { timeout: 2000, signal },
      );
      if (confirmed) {
        let topics = subscriptions.get(connection.id);
        if (topics === undefined) subscriptions.set(connection.id, (topics = new Set()));
        topics.add(topic);
      }
      say(`${who(connection)} ${confirmed ? 'confirmed' : 'declined'} "${topic}" -> ${confirmed}`);
      return confirmed;
    },
  },
});

// Emitted once a client has finished its handshake.
server.on('connection', (connection) => {
  const label = who(connection);
  say(`${label} connected (${server.connections.size} client(s) now, ${supervisedChildren()} child actor(s) under the supervisor)`);
  // Tell everyone (the newcomer included). broadcast() encodes once and writes to every socket.
  void server.broadcast({ type: 'notify', text: `${label} joined; ${server.connections.size} client(s) connected` }).catch(reportBroadcastError);

  // `closed` settles (never rejects) when the connection is gone, however it ended.
  void connection.closed.then(() => {
    subscriptions.delete(connection.id);
    const why = connection.closeReason === undefined ? 'cleanly' : `with ${connection.closeReason.code}`;
    say(`${label} disconnected ${why} (${server.connections.size} client(s) left, ${supervisedChildren()} child actor(s))`);
  });
});

/**
 * The supervisor actor has one child actor per connection (up to 100 clients; past that it groups
 * them). A client still in its handshake already has its child, so this may briefly exceed
 * `server.connections.size`, which counts only connections that finished the handshake.
 */
function supervisedChildren(): number {
  return Object.keys(server.actor.getSnapshot().children).length;
}

// A peer that breaks the protocol is reported here; it never takes the daemon down.
server.on('connectionError', (error, connection) => {
  say(`connection ${connection ? who(connection) : '(refused)'} failed: ${error.code}: ${error.message}`);
});

// Every 2 s: a heartbeat for everyone (broadcast), and a headline told only to the clients that
// subscribed to "news". unref(): the timer alone never keeps the process alive.
const heartbeat = setInterval(() => {
  if (server.connections.size === 0) return;
  const up = Math.round((Date.now() - startedAt) / 1000);
  void server.broadcast({ type: 'notify', text: `heartbeat: up ${up} s` }).catch(reportBroadcastError);
  for (const connection of server.connections.values()) {
    if (subscriptions.get(connection.id)?.has('news')) {
      // A tell to one client; it fails only if that client is going away, which is fine here.
      connection.tell({ type: 'notify', text: `news: still up after ${up} s` }).catch(() => {});
    }
  }
}, 2000);
heartbeat.unref();

function reportBroadcastError(error: unknown): void {
  say(`broadcast failed: ${error instanceof Error ? error.message : String(error)}`);
}

let shuttingDown = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (shuttingDown) return; // SIGTERM and SIGINT both arrived: one close is enough
  shuttingDown = true;
  clearInterval(heartbeat);
  say(`${signal}: closing (${server.connections.size} client(s) still connected)`);
  try {
    // Graceful: stop accepting, let running handlers reply, close every connection, remove the
    // socket file. Connections still open after 2 s are cut off.
    await server.close({ timeout: 2000 });
    exitAfter('[daemon] closed; socket file removed; bye', 0);
  } catch (error) {
    exitAfter(`[daemon] close failed: ${error instanceof ConverseError ? `${error.code}: ` : ''}${String(error)}`, 1);
  }
}

/** process.exit() does not wait for a piped stdout to drain: write the last line, then exit. */
function exitAfter(line: string, code: number): void {
  process.stdout.write(`${line}\n`, () => process.exit(code));
}

// `once`: a second Ctrl-C falls back to Node's default and kills the daemon at once.
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));

// Machine-readable: a launcher waits for this exact line before starting clients.
console.log(`READY ${name}`);
