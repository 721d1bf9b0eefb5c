import { MAX_TIMEOUT } from '../timeouts.js';
import type * as net from 'node:net';
import { ConverseError } from '../errors.js';
import { parseAddress } from './address.js';
import { connectSocket } from './connector.js';
import { bindListener } from './listener.js';
import { bindNetworkListener, connectNetwork } from './network.js';
import { readPeerCredentials, sayIfPeerCredentialsUnavailable } from './peer-credentials.js';
import { nobodyListening, type ConnectedStream, type ConnectTransportOptions, type ListenTransportOptions, type TransportListener } from './transport.js';

/**
 * Pick the transport by the name's scheme: a plain name or path is a local socket, `tcp://` and
 * `tls://` are network sockets, `nats://` a virtual stream over NATS (loaded only when used, so
 * the optional NATS client is needed only by those who use it).
 */
export async function bindTransport(name: string, options: ListenTransportOptions): Promise<TransportListener> {
  const address = parseAddress(name);
  switch (address.kind) {
    case 'local': {
      const bound = await bindListener(name, { backlog: options.backlog, socketMode: options.socketMode });
      sayIfPeerCredentialsUnavailable();
      const listener: TransportListener = {
        name,
        onConnection: () => {},
        onRefused: () => {},
        close: () => bound.close(),
      };
      bound.server.on('connection', (socket: net.Socket) => listener.onConnection({ socket, peer: readPeerCredentials(socket) }));
      return listener;
    }
    case 'tcp':
    case 'tls':
      return bindNetworkListener(address, options);
    case 'nats':
      return (await import('./nats/listener.js')).bindNatsListener(address, options);
  }
}

export interface ConnectAttempt {
  timeout: number;
  /** Keep trying while nothing listens, up to `timeout` (otherwise that fails at once). */
  waitForServer: boolean;
}

const RETRY_FIRST_MS = 10;
const RETRY_MAX_MS = 250;

export async function connectTransport(name: string, attempt: ConnectAttempt, options: ConnectTransportOptions): Promise<ConnectedStream> {
  const address = parseAddress(name);
  if (address.kind === 'local') {
    sayIfPeerCredentialsUnavailable();
    const socket = await connectSocket(name, attempt);
    return { socket, peer: readPeerCredentials(socket) };
  }
  const deadline = performance.now() + attempt.timeout;
  let delay = RETRY_FIRST_MS;
  for (;;) {
    // Infinity (no timeout) arms the longest timer a transport can (see src/timeouts.ts).
    const left = Math.min(MAX_TIMEOUT, Math.max(1, deadline - performance.now()));
    try {
      if (address.kind === 'nats') return await (await import('./nats/connector.js')).connectNats(address, left, options);
      return await connectNetwork(address, left, options);
    } catch (error) {
      // Waiting for a server that is not there yet: retry "nobody listens" with a growing, jittered delay.
      if (!attempt.waitForServer || !nobodyListening.has(error as Error)) throw error;
      const pause = delay * (0.5 + Math.random());
      if (performance.now() + pause >= deadline) {
        throw new ConverseError('CONNECT_FAILED', `No server appeared at "${name}" within ${attempt.timeout} ms (connectTimeout, waitForServer): ${(error as Error).message}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  }
}
