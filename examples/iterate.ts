/**
 * The same protocol without handlers: the Rust-style API.
 *
 *   node dist/examples/iterate.js
 *
 * The server takes connections with `server.accept()` and reads each one's messages with
 * `for await (const message of connection)`, answering asks with `message.reply(...)`. Server
 * and client share one process here only to keep the example short; over a socket it is the same.
 */
import { connect, generateSocketName, listen } from '../src/index.js';
import type { Connection } from '../src/index.js';
import type { ClientApi, ServerApi } from './protocol.js';

const name = generateSocketName();
const startedAt = Date.now();

// No `handlers` option: incoming messages queue up on each connection for us to read.
const server = await listen<ServerApi, ClientApi>(name);

/** Serve one connection: messages arrive in order, one at a time, until it closes. */
async function serve(connection: Connection<ServerApi, ClientApi>): Promise<void> {
  for await (const message of connection) {
    const event = message.event;
    // `event` is a union of every ServerApi message; switching on `type` narrows it.
    switch (event.type) {
      case 'add':
        await message.reply(event.a + event.b);
        break;
      case 'status':
        await message.reply({ uptime: Date.now() - startedAt, clients: server.connections.size });
        break;
      case 'log':
        // A tell: message.expectsReply is false and there is nothing to reply.
        console.log(`[server] log: ${event.line}`);
        break;
      case 'subscribe': {
        // The loop waits here, so this connection's next message waits too; that is what
        // in-order delivery means. (Start a task without awaiting it to serve messages in parallel.)
        const ok = await connection.ask({ type: 'confirm', question: `Subscribe to "${event.topic}"?` });
        await message.reply(ok);
        break;
      }
    }
  }
  console.log('[server] connection closed');
}

// The accept loop runs in the background; `accept()` rejects once the server is closed.
const serving = (async () => {
  const connection = await server.accept();
  console.log(`[server] accepted a connection from pid ${connection.peer.pid ?? '?'}`);
  await serve(connection);
})();

// The client also goes without handlers: it reads the server's asks (`confirm`) from its own
// connection. The loop must run while we ask `subscribe`, or nobody would answer `confirm`.
const client = await connect<ServerApi, ClientApi>(name);
const answering = (async () => {
  for await (const message of client) {
    if (message.event.type === 'confirm') {
      console.log(`[client] server asks: ${message.event.question} -> yes`);
      await message.reply(true);
    }
  }
})();

console.log(`[client] add(2, 3) = ${await client.ask({ type: 'add', a: 2, b: 3 })}`);
const status = await client.ask({ type: 'status' });
console.log(`[client] status: up ${status.uptime} ms, ${status.clients} client(s)`);
await client.tell({ type: 'log', line: 'hello from the iterating client' });
console.log(`[client] subscribe("news") -> ${await client.ask({ type: 'subscribe', topic: 'news' })}`);

// Closing ends both `for await` loops: the connection's message stream finishes when it closes.
await client.close();
await Promise.all([serving, answering]);
await server.close();
console.log('[client] done');
