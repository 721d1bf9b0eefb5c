/**
 * Tracing with node:diagnostics_channel, as OpenTelemetry instrumentations attach to undici.
 *
 *   node dist/examples/tracing.js
 *
 * The library publishes on these channels; with no subscriber, publishing costs one
 * `hasSubscribers` check and nothing is allocated:
 *
 *   interprocess-converse:connection:open    { connection }
 *   interprocess-converse:connection:close   { connection, error? }
 *   interprocess-converse:ask:start          { connection, id, event }
 *   interprocess-converse:ask:end            { connection, id, type }
 *   interprocess-converse:ask:error          { connection, id, type, error }
 *
 * This example turns them into span-like log lines with durations.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { connect, generateSocketName, listen, type Connection } from '../src/index.js';

type Api = { add(e: { a: number; b: number }): number; stall(): never };

/** Open "spans" by connection and ask id. */
const started = new Map<Connection, Map<number, { type: string; at: number }>>();
const span = (connection: Connection, id: number) => started.get(connection)?.get(id);
const who = (connection: Connection | undefined): string => (connection ? connection.id.slice(0, 8) : '?');

diagnosticsChannel.subscribe('interprocess-converse:connection:open', (message) => {
  const { connection } = message as { connection: Connection };
  console.log(`[${who(connection)}] connection open`);
});
diagnosticsChannel.subscribe('interprocess-converse:connection:close', (message) => {
  const { connection, error } = message as { connection: Connection; error?: { code: string } };
  console.log(`[${who(connection)}] connection closed${error ? ` (${error.code})` : ''}`);
  started.delete(connection);
});
diagnosticsChannel.subscribe('interprocess-converse:ask:start', (message) => {
  const { connection, id, event } = message as { connection: Connection; id: number; event: { type: string } };
  if (!started.has(connection)) started.set(connection, new Map());
  started.get(connection)!.set(id, { type: event.type, at: performance.now() });
});
diagnosticsChannel.subscribe('interprocess-converse:ask:end', (message) => {
  const { connection, id, type } = message as { connection: Connection; id: number; type: string };
  const s = span(connection, id);
  console.log(`[${who(connection)}] ask ${type} #${id} ok in ${s ? (performance.now() - s.at).toFixed(2) : '?'} ms`);
  started.get(connection)?.delete(id);
});
diagnosticsChannel.subscribe('interprocess-converse:ask:error', (message) => {
  const { connection, id, type, error } = message as { connection: Connection; id: number; type: string; error: { code: string } };
  const s = span(connection, id);
  console.log(`[${who(connection)}] ask ${type} #${id} failed with ${error.code} after ${s ? (performance.now() - s.at).toFixed(2) : '?'} ms`);
  started.get(connection)?.delete(id);
});

const name = generateSocketName();
const server = await listen<Api>(name, {
  handlers: { add: ({ a, b }) => a + b, stall: () => new Promise<never>(() => {}) },
});
const client = await connect<Api>(name);
await client.ask({ type: 'add', a: 1, b: 2 });
await client.ask({ type: 'stall' }, { timeout: 100 }).catch(() => undefined); // a TIMEOUT
await client.close();
await server.close();
