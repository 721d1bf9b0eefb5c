import { ConverseError } from '../../errors.js';
import type { NatsAddress } from '../address.js';
import type { ListenTransportOptions, TransportListener } from '../transport.js';
import { leaseNatsConnection, type NatsMsg } from './client.js';
import { decodeOpen, encodeOpen, encodeRefuse, heartbeatInterval, QUEUE_GROUP, serviceSubject, streamSettings } from './open.js';
import { NatsStream } from './stream.js';

/** Streams past maxConnections still get one to be refused on (a REJECT the client can read); past this many more, OPEN is refused outright. */
const REFUSAL_HEADROOM = 64;
const CONNECT_TIMEOUT = 5000;

/**
 * Serve a NATS service: take OPENs from the service subject (in the queue group, so several daemons
 * share the service's clients) and give each its own virtual stream. NATS tells a subscriber
 * nothing verified about a publisher, so `peer` is empty: an `allow` predicate refuses every NATS
 * client (fail closed); on NATS, trust is the NATS account's permissions.
 */
export async function bindNatsListener(address: NatsAddress, options: ListenTransportOptions): Promise<TransportListener> {
  const settings = streamSettings(options.nats);
  const lease = await leaseNatsConnection(address, options.nats, CONNECT_TIMEOUT);
  const limit = (options.maxConnections ?? 4096) + REFUSAL_HEADROOM;
  let open = 0;
  const listener: TransportListener = {
    name: address.name,
    onConnection: () => {},
    onRefused: () => {},
    close: () => closing ?? Promise.resolve(),
  };
  const refuse = (msg: NatsMsg, code: 'SERVER_FULL' | 'HANDSHAKE_FAILED', why: string): void => {
    msg.respond(encodeRefuse(code, why));
    listener.onRefused(new ConverseError(code, `Refused a NATS stream: ${why}.`));
  };
  const onOpen = (msg: NatsMsg): void => {
    if (msg.reply === undefined) return; // not a request: nobody to answer
    let request;
    try {
      request = decodeOpen(msg.data);
      if ('refused' in request) throw new Error('a refusal sent to a server');
    } catch (cause) {
      refuse(msg, 'HANDSHAKE_FAILED', `the opening message was not understood (${(cause as Error).message})`);
      return;
    }
    if (open >= limit) {
      refuse(msg, 'SERVER_FULL', `this server already has ${open} NATS streams open`);
      return;
    }
    const stream = new NatsStream({
      lease: lease.share(), // each stream holds the NATS connection open while it lives
      inbox: lease.nats.createInbox(),
      window: settings.window,
      heartbeatTimeout: settings.timeout,
    });
    stream.connectTo({ inbox: request.inbox, window: request.window, heartbeatInterval: heartbeatInterval(settings, request.silence) });
    open++;
    stream.once('close', () => open--);
    // Subscribed before we answer: the client's first bytes cannot overtake our interest.
    msg.respond(encodeOpen({ inbox: stream.inbox, window: settings.window, silence: settings.timeout }));
    stream.pause();
    listener.onConnection({ socket: stream, peer: {} });
  };
  const sub = lease.nc.subscribe(serviceSubject(address.service), {
    queue: QUEUE_GROUP,
    callback: (error, msg) => {
      if (error !== null) return;
      try {
        onOpen(msg);
      } catch {
        /* a failure opening one stream (NATS closing under us) is that stream's, never the server's */
      }
    },
  });
  // The subscription is live at the NATS server before listen() resolves, so a client started next finds it.
  await lease.nc.flush();
  let closing: Promise<void> | undefined;
  listener.close = () =>
    (closing ??= (async () => {
      try {
        sub.unsubscribe();
      } catch {
        /* connection already closed */
      }
      await lease.release();
    })());
  return listener;
}
