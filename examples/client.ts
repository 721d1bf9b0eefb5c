/**
 * A client of the example daemon.
 *
 *   node dist/examples/client.js <socket-name> [client-number]
 *
 * It connects, asks (add, status), tells (log), subscribes (the daemon then asks *this* client to
 * confirm, over the same connection), prints what happens, closes gracefully and exits 0.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, isConverseError } from '../src/index.js';
import type { Connection } from '../src/index.js';
import type { ClientApi, ServerApi } from './protocol.js';

const name = process.argv[2];
const number = process.argv[3] ?? '1';
const prefix = `[client ${number} ${process.pid}]`;

function say(line: string): void {
  console.log(`${prefix} ${line}`);
}

if (name === undefined) {
  console.error('usage: node dist/examples/client.js <socket-name> [client-number]');
  process.exit(2);
}

let connection: Connection<ClientApi, ServerApi> | undefined;
try {
  // Same order as the daemon: <ServerApi, ClientApi>. The connection asks ServerApi and serves
  // ClientApi with these handlers. connect() resolves once the handshake is done.
  connection = await connect<ServerApi, ClientApi>(name, {
    handlers: {
      // A tell from the daemon (its broadcasts). Nothing to return.
      notify: ({ text }) => say(`notified: ${text}`),
      // An ask from the daemon: the return value is the reply it waits for.
      confirm: ({ question }) => {
        const answer = !question.includes('spam');
        say(`daemon asks: ${question} -> ${answer ? 'yes' : 'no'}`);
        return answer;
      },
    },
  });
  // peer.pid is what the kernel says about the other end, so it cannot be spoofed.
  say(`connected to daemon pid ${connection.peer.pid ?? '?'}`);

  // Asks: typed requests with typed replies. Several may be in flight on one connection at
  // once; each reply finds its own ask.
  const n = Number(number);
  const [sum, product] = await Promise.all([
    connection.ask({ type: 'add', a: n, b: 10 }),
    connection.ask({ type: 'add', a: n * 100, b: 1 }),
  ]);
  say(`add(${n}, 10) = ${sum}, add(${n * 100}, 1) = ${product}`);

  // Stay a moment, so that the demo's clients overlap: each hears (through `notify`) about the
  // others joining, and `status` counts them.
  await sleep(300);
  const status = await connection.ask({ type: 'status' });
  say(`status: daemon up ${status.uptime} ms, ${status.clients} client(s) connected`);

  // A tell: one-way, resolves once written; there is no reply to wait for.
  await connection.tell({ type: 'log', line: `hello from client ${number}` });
  say('told the daemon a log line');

  // While the daemon's subscribe handler runs, it asks us `confirm`; our handler above answers,
  // and only then does this ask get its reply.
  for (const topic of ['news', 'spam']) {
    const accepted = await connection.ask({ type: 'subscribe', topic });
    say(`subscribe("${topic}") -> ${accepted}`);
  }

  // Graceful: anything in flight either way finishes first, then the socket closes.
  await connection.close();
  say('closed; bye');
  // Nothing is left open, so the process ends by itself with exit code 0.
} catch (error) {
  // Every library failure is a ConverseError with a stable `code` to match on.
  say(`failed: ${isConverseError(error) ? `${error.code}: ${error.message}` : String(error)}`);
  process.exitCode = 1;
  // An open connection keeps the process alive; on failure drop it at once so we still exit.
  connection?.destroy();
}
