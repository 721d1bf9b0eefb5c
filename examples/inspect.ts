/**
 * Watching connections as state machines with XState's inspection API.
 *
 *   node dist/examples/inspect.js                       # prints what the inspector sees
 *   INSPECT_URL=ws://localhost:8080 node dist/examples/inspect.js
 *                                                       # …and sends it to a Stately inspector there
 *
 * `inspect` on `listen` reaches every actor of the server — the supervisor and each connection
 * child — and on `connect` the client's own connection actor. `@statelyai/inspect`'s
 * `inspector.inspect` plugs straight in. Messages never pass through the interpreter, so an
 * inspector sees lifecycles (handshake → active → closing → closed), not traffic.
 */
import { createInspector, createWebSocketInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import { connect, generateSocketName, listen } from '../src/index.js';

type Api = { add(e: { a: number; b: number }): number };

// Without a Stately inspector to talk to (this machine may have no network), print the events
// the package would send, through its own createInspector and an adapter of ours.
function printer(event: StatelyInspectionEvent): void {
  if (event.type === '@xstate.actor') console.log(`actor    ${event.name} (parent ${event.parentId ?? 'none'})`);
  else if (event.type === '@xstate.snapshot') console.log(`snapshot ${event.sessionId} → ${JSON.stringify((event.snapshot as { value?: unknown }).value)}`);
  else console.log(`event    ${event.sessionId} ← ${event.event.type}`);
}
const inspector = process.env.INSPECT_URL
  ? createWebSocketInspector({ url: process.env.INSPECT_URL })
  : createInspector({ send: printer });

const name = generateSocketName();
const server = await listen<Api>(name, { handlers: { add: ({ a, b }) => a + b }, inspect: inspector.inspect });
const client = await connect<Api>(name, { inspect: inspector.inspect });
console.log('1 + 2 =', await client.ask({ type: 'add', a: 1, b: 2 }));
await client.close();
await server.close();
// The inspector hands events over on a later tick; let it finish, then stop it.
await new Promise((resolve) => setTimeout(resolve, 50));
inspector.stop();
