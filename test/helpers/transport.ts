/**
 * Which transport the scenario helpers (startServer, startClients, connectClient,
 * startServerProcess) run over: `CONVERSE_TEST_TRANSPORT` = `unix` (default), `tls` or `nats`.
 * vitest.config.ts runs the transport-neutral integration tests once per transport. Over TLS the
 * helpers add a throwaway PKI's certificates (mutual TLS); over NATS they use the nats-server
 * that test/helpers/transport-setup.ts starts for the file. Everything stays on 127.0.0.1.
 */
import * as net from 'node:net';
import { makePki, type Pki } from './certs.js';
import type { NatsServer } from './nats-server.js';

export type TransportKind = 'unix' | 'tls' | 'nats';

export const transportKind: TransportKind = ((): TransportKind => {
  const kind = process.env.CONVERSE_TEST_TRANSPORT ?? 'unix';
  if (kind !== 'unix' && kind !== 'tls' && kind !== 'nats') throw new Error(`CONVERSE_TEST_TRANSPORT=${kind}: expected unix, tls or nats`);
  return kind;
})();

/** Short NATS stream heartbeats, so a SIGKILLed peer is noticed about as soon as over a socket. */
export const TEST_NATS = { heartbeat: { interval: 150, timeout: 1500 } };

let pki: Pki | undefined;
let natsServer: NatsServer | undefined;
let services = 0;

/** Set by the setup file for NATS runs. */
export function useNatsServer(server: NatsServer | undefined): void {
  natsServer = server;
}

function certificates(): Pki {
  return (pki ??= makePki());
}

/** A fresh name on this transport; `fixedPort` when another process must know it before listening. */
export async function transportName(fixedPort = false): Promise<string | undefined> {
  switch (transportKind) {
    case 'unix':
      return undefined; // the helpers' own socketName()
    case 'tls':
      return `tls://127.0.0.1:${fixedPort ? await freePort() : 0}`;
    case 'nats':
      if (natsServer === undefined) throw new Error('no nats-server: is test/helpers/transport-setup.ts in setupFiles?');
      return natsServer.url(`it${process.pid}-${services++}`);
  }
}

/** Options a server needs on this transport (plain JSON: they also go to fixture processes). */
export function transportListenOptions(): Record<string, unknown> {
  if (transportKind === 'tls') {
    const { server, ca } = certificates();
    return { tls: { key: server.key, cert: server.cert, ca } };
  }
  if (transportKind === 'nats') return { nats: TEST_NATS };
  return {};
}

export function transportConnectOptions(): Record<string, unknown> {
  if (transportKind === 'tls') {
    const { client, ca } = certificates();
    return { tls: { key: client.key, cert: client.cert, ca } };
  }
  if (transportKind === 'nats') return { nats: TEST_NATS };
  return {};
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * How long after a peer process is SIGKILLed its death may take to notice, beyond `ms` over a
 * socket: over NATS nothing reports a dead publisher, the stream's heartbeat timeout does.
 */
export function noticeDeadPeerWithin(ms: number): number {
  return transportKind === 'nats' ? ms + TEST_NATS.heartbeat.timeout : ms;
}
