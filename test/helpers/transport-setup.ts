/** setupFiles entry for NATS runs of the integration tests: one nats-server per test file. */
import { afterAll, beforeAll } from 'vitest';
import { startNatsServer, type NatsServer } from './nats-server.js';
import { transportKind, useNatsServer } from './transport.js';

if (transportKind === 'nats') {
  let server: NatsServer | undefined;
  beforeAll(async () => {
    server = await startNatsServer();
    useNatsServer(server);
  });
  afterAll(async () => {
    useNatsServer(undefined);
    await server?.stop();
  });
}
