/**
 * A guard for the transport-parametrized runs (vitest.config.ts): the scenario helpers really
 * run on the transport named by CONVERSE_TEST_TRANSPORT, so a green tls/nats run means what it says.
 */
import { afterEach, expect, it } from 'vitest';
import { cleanup } from '../helpers/cleanup.js';
import { connectClient, startServer } from '../helpers/scenario.js';
import { transportKind } from '../helpers/transport.js';

afterEach(cleanup);

it(`the scenario helpers run over ${transportKind}`, async () => {
  const { name, server } = await startServer();
  const client = await connectClient(name);
  expect(await client.ask({ type: 'add', a: 1, b: 2 })).toBe(3);
  const accepted = await server.accept();
  if (transportKind === 'unix') {
    expect(name.startsWith('/') || name.startsWith('\\\\')).toBe(true);
  } else if (transportKind === 'tls') {
    expect(name).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
    expect(accepted.peer.subject?.CN).toBe('worker-1');
    expect(client.peer.subject?.CN).toBe('converse-server');
  } else {
    expect(name).toMatch(/^nats:\/\/127\.0\.0\.1:\d+\//);
    expect(accepted.peer).toEqual({});
  }
});
