/**
 * A protocol as a state machine: anonymous → authenticated → loggedOut.
 *
 *   npm run build && node dist/examples/login.js
 *
 * Each connection gets its own `session` actor (the machine below). Every message the client
 * sends is offered to it first: `getSecret` before login is refused with NOT_ACCEPTED (its
 * handler never runs); a login with a bad password is taken, and answered `false` by the machine
 * itself; `whoami` is answered by the machine with `answer()`; `logout` reaches the final state,
 * which closes the connection gracefully once its reply is out. The messages' fields are also
 * checked at run time against a declared protocol (zod), so a malformed login is INVALID_MESSAGE.
 *
 * Server and client share one process only to keep the example short; over a socket it is the same.
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { answer, connect, ConverseError, defineProtocol, generateSocketName, listen } from '../src/index.js';

// ── The contract: fields and replies, checked at run time, typed at compile time ─────────
const Vault = defineProtocol(
  {
    login: { input: z.object({ user: z.string().min(1), password: z.string() }), output: z.boolean() },
    whoami: { output: z.string().nullable() },
    getSecret: { output: z.string() },
    logout: { output: z.string() },
  },
  { name: 'vault', version: 1 },
);

// ── The protocol's states: which message is allowed when ─────────────────────────────────
const PASSWORDS: Record<string, string> = { ada: 'lovelace', alan: 'turing' };

const vaultSession = setup({
  types: {
    context: {} as { user: string | null; failures: number },
    events: {} as
      | { type: 'login'; user: string; password: string }
      | { type: 'whoami' }
      | { type: 'getSecret' }
      | { type: 'logout' },
  },
  guards: {
    passwordOk: ({ event }) => event.type === 'login' && PASSWORDS[event.user] === event.password,
    tooManyFailures: ({ context }) => context.failures >= 2,
  },
}).createMachine({
  id: 'vault',
  context: { user: null, failures: 0 },
  initial: 'anonymous',
  states: {
    anonymous: {
      on: {
        login: [
          { guard: 'passwordOk', target: 'authenticated', actions: assign({ user: ({ event }) => event.user }) },
          // Third wrong password: the protocol is over (final state → the connection closes).
          { guard: 'tooManyFailures', target: 'loggedOut', actions: ({ event }) => answer(event, false) },
          // A wrong password is taken (not refused): count it and answer false from the machine.
          { actions: [assign({ failures: ({ context }) => context.failures + 1 }), ({ event }) => answer(event, false)] },
        ],
        whoami: { actions: ({ event }) => answer(event, null) },
      },
    },
    authenticated: {
      on: {
        // Accepted without a change of state: a transition needs a target or an action to count
        // as accepted (an empty `{}` is a "forbidden" transition to XState's snapshot.can()).
        getSecret: { target: 'authenticated' },
        whoami: { actions: ({ context, event }) => answer(event, context.user) },
        logout: { target: 'loggedOut' },
      },
    },
    loggedOut: { type: 'final' },
  },
});

// ── The server: handlers do the work, the session decides what is allowed ───────────────
const name = generateSocketName();
const server = await listen(name, {
  protocol: Vault,
  session: vaultSession,
  handlers: {
    // Runs after the transition: ctx.session is the snapshot the login led to.
    login: (_event, ctx) => ctx.session?.value === 'authenticated',
    getSecret: (_event, ctx) => `the secret of ${ctx.session?.context.user}: 42`,
    logout: (_event, ctx) => `goodbye, ${ctx.session?.context.user}`,
    whoami: () => 'never called: the machine answers whoami itself',
  },
});
server.on('connection', (connection) => {
  console.log(`server: connection ${connection.id.slice(0, 6)} (session in "${String(connection.session?.getSnapshot().value)}")`);
  let state = connection.session?.getSnapshot().value;
  connection.session?.subscribe((snapshot) => {
    if (snapshot.value !== state) console.log(`server: session "${String(state)}" → "${String((state = snapshot.value))}"`);
  });
  void connection.closed.then(() => console.log('server: connection closed'));
});

// ── A client ─────────────────────────────────────────────────────────────────────────────
const client = await connect(name, { protocol: Vault });
console.log(`client: connected to "${client.peerProtocol?.name}" version ${client.peerProtocol?.version}`);

async function attempt(label: string, run: () => Promise<unknown>): Promise<void> {
  try {
    console.log(`client: ${label} → ${JSON.stringify(await run())}`);
  } catch (error) {
    if (!(error instanceof ConverseError)) throw error;
    const issues = error.issues ? ` ${JSON.stringify(error.issues)}` : '';
    console.log(`client: ${label} → ${error.code}: ${error.message}${issues}`);
  }
}

await attempt('whoami', () => client.ask({ type: 'whoami' }));
await attempt('getSecret before login', () => client.ask({ type: 'getSecret' }));
await attempt('login with a malformed message', () => client.ask({ type: 'login', user: '', password: 'x' }));
await attempt('login with a wrong password', () => client.ask({ type: 'login', user: 'ada', password: 'babbage' }));
await attempt('login', () => client.ask({ type: 'login', user: 'ada', password: 'lovelace' }));
await attempt('whoami', () => client.ask({ type: 'whoami' }));
await attempt('getSecret', () => client.ask({ type: 'getSecret' }));
await attempt('login again', () => client.ask({ type: 'login', user: 'alan', password: 'turing' }));
await attempt('logout', () => client.ask({ type: 'logout' }));

// The final state closed the connection from the server's side, gracefully: no error.
await client.closed;
console.log(`client: connection ${client.state}${client.closeReason ? ` (${client.closeReason.code})` : ', cleanly'}`);
await attempt('getSecret after logout', () => client.ask({ type: 'getSecret' }));

await server.close();
console.log('done');
