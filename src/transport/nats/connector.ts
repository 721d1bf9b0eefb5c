import { ConverseError } from '../../errors.js';
import type { NatsAddress } from '../address.js';
import { nobodyListening, type ConnectedStream, type ConnectTransportOptions } from '../transport.js';
import { leaseNatsConnection } from './client.js';
import { decodeOpen, encodeOpen, heartbeatInterval, serviceSubject, streamSettings } from './open.js';
import { NatsStream } from './stream.js';

/**
 * Open a virtual stream to a NATS service: subscribe to a fresh inbox, send OPEN to the service
 * subject, and take the ACCEPT of whichever daemon NATS picked from the queue group. With no
 * daemon serving the service, NATS answers "no responders" at once: CONNECT_FAILED without waiting.
 */
export async function connectNats(address: NatsAddress, timeout: number, options: ConnectTransportOptions): Promise<ConnectedStream> {
  const settings = streamSettings(options.nats);
  const started = performance.now();
  const lease = await leaseNatsConnection(address, options.nats, timeout);
  // Subscribed before OPEN goes out, so nothing the server sends after ACCEPT can miss us.
  const stream = new NatsStream({ lease, inbox: lease.nats.createInbox(), window: settings.window, heartbeatTimeout: settings.timeout });
  stream.on('error', () => {});
  try {
    const inbox = stream.inbox;
    const left = Math.max(1, timeout - (performance.now() - started));
    let reply;
    try {
      reply = await lease.nc.request(serviceSubject(address.service), encodeOpen({ inbox, window: settings.window, silence: settings.timeout }), { timeout: left });
    } catch (error) {
      const text = String((error as Error)?.message ?? error);
      if (/no responders|503/i.test(text)) {
        const nobody = new ConverseError('CONNECT_FAILED', `No server serves "${address.service}" on the NATS at ${address.host}:${address.port} (no responders). Start a daemon with listen("${address.name}") first, or check the service name.`, { cause: error });
        nobodyListening.add(nobody);
        throw nobody;
      }
      if (/timeout/i.test(text)) {
        throw new ConverseError('CONNECT_FAILED', `No server answered on "${address.name}" within ${timeout} ms (connectTimeout).`, { cause: error });
      }
      throw new ConverseError('CONNECT_FAILED', `Could not open a stream on "${address.name}": ${text}.`, { cause: error });
    }
    let accept;
    try {
      accept = decodeOpen(reply.data);
    } catch (error) {
      throw new ConverseError('HANDSHAKE_FAILED', `What answered on "${address.name}" is not an interprocess-converse server (${(error as Error).message}).`, { cause: error });
    }
    if ('refused' in accept) {
      throw new ConverseError(accept.refused === 'SERVER_FULL' ? 'SERVER_FULL' : 'HANDSHAKE_FAILED', `The server on "${address.name}" refused the stream: ${accept.message}`);
    }
    if (stream.destroyed) throw new ConverseError('CONNECT_FAILED', `The stream on "${address.name}" closed while opening (NATS connection lost).`);
    stream.connectTo({ inbox: accept.inbox, window: accept.window, heartbeatInterval: heartbeatInterval(settings, accept.silence) });
    stream.pause();
    return { socket: stream, peer: {} };
  } catch (error) {
    stream.destroy(); // releases the lease
    throw error;
  }
}
