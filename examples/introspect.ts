/**
 * Reading a daemon's state over its own socket: what `interprocess-converse info` and
 * `monitor` do, from code.
 *
 *   node dist/examples/dashboard.js --demo --no-dashboard &     # a daemon with introspection on
 *   node dist/examples/introspect.js <socket-name> [seconds]
 *
 * The daemon must listen with `introspection: true`. Then any peer it lets connect may ask the
 * reserved `$converse.info` and `$converse.connections`, and `$converse.watch` to be told every
 * connection state change (as `$converse.event` messages, which `introspect().watch` consumes).
 */
import { connect, introspect } from '../src/index.js';

const name = process.argv[2];
if (name === undefined) {
  console.error('usage: node dist/examples/introspect.js <socket-name> [seconds]');
  process.exit(2);
}
const seconds = Number(process.argv[3] ?? 5);

const connection = await connect(name, { handlers: {} });
const daemon = introspect(connection);

const info = await daemon.info();
console.log(`${info.library} ${info.version} (wire protocol ${info.protocolVersion}), pid ${info.pid}, up ${Math.round(info.uptime / 1000)} s`);
console.log(`messages: ${info.messageTypes?.join(', ') ?? '(not declared)'}`);
for (const c of await daemon.connections()) {
  console.log(`  ${c.id}  ${c.state}  pid ${c.peer.pid ?? '?'}  in ${c.stats.messagesIn} / out ${c.stats.messagesOut}${c.id === info.you ? '  (us)' : ''}`);
}

console.log(`watching for ${seconds} s …`);
const watch = await daemon.watch((event) => {
  if (event.kind === 'connection') console.log(`  ${event.id}  ${event.from ?? 'new'} → ${event.to}${event.error ? `  ${event.error.code}` : ''}`);
  else if (event.kind === 'server') console.log(`  server ${event.from} → ${event.to}`);
  else console.log(`  refused: ${event.code}`);
});
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
await watch.stop();
await connection.close();
