import * as net from 'node:net';
import type * as tls from 'node:tls';
import { ConverseError } from '../errors.js';
import { checkInsecureNetwork, type NetworkAddress } from './address.js';
import type { PeerCredentials } from './peer-credentials.js';
import { nobodyListening, type ConnectedStream, type ConnectTransportOptions, type ListenTransportOptions, type TransportListener } from './transport.js';

/**
 * TCP and TLS: the same byte stream as a local socket, reached by host and port. TLS is mutual by
 * default on the server (`requestCert: true`): the client must present a certificate signed by
 * `ca`, and the verified certificate's subject and fingerprint become `connection.peer`.
 * Certificates are always verified (there is no switch to turn that off).
 */

/** PEM contents, as node:tls takes them (strings or Buffers; arrays for chains and several CAs). */
type Pem = string | Buffer | Array<string | Buffer>;

export interface TlsOptions {
  /** This side's private key (PEM). Required to listen; to connect, when the server asks for a client certificate. */
  key?: Pem;
  /** This side's certificate (PEM), with its chain. */
  cert?: Pem;
  /** The CA certificate(s) (PEM) the peer's certificate must chain to. Without it, to connect, the system's CAs. */
  ca?: Pem;
  /** Listen: require and verify a client certificate (mutual TLS). @default true */
  requestCert?: boolean;
  /** Passphrase of an encrypted `key`. */
  passphrase?: string;
  /** Connect: the name the server's certificate must carry, when it differs from the URL's host. */
  servername?: string;
  /** Oldest TLS version accepted. @default 'TLSv1.2' (node:tls's default) */
  minVersion?: tls.SecureVersion;
}

const TLS_HANDSHAKE_TIMEOUT_DEFAULT = 5000;
/** Sockets beyond maxConnections still get a moment to be refused with a REJECT; past this many more, the kernel's accept is dropped. */
const REFUSAL_HEADROOM = 64;

/**
 * node:tls (with OpenSSL's bindings, about 0.5 MB of heap) loads with the first tls:// address,
 * not with the library: most daemons only ever use local sockets.
 */
function loadTls(): Promise<typeof tls> {
  return import('node:tls');
}

export async function bindNetworkListener(address: NetworkAddress, options: ListenTransportOptions): Promise<TransportListener> {
  await checkInsecureNetwork(address, options.allowInsecureNetwork, 'listen on');
  let server: net.Server;
  const listener: TransportListener = {
    name: address.name,
    onConnection: () => {},
    onRefused: () => {},
    close: () => closing ?? Promise.resolve(),
  };
  if (address.kind === 'tls') {
    const t = options.tls;
    if (t?.key === undefined || t.cert === undefined) {
      throw new ConverseError('INVALID_ARGUMENT', `listen("${address.name}") needs tls: { key, cert } (PEM contents): a TLS server must prove who it is.`);
    }
    const requestCert = t.requestCert ?? true;
    if (requestCert && t.ca === undefined) {
      throw new ConverseError(
        'INVALID_ARGUMENT',
        `listen("${address.name}") verifies client certificates (requestCert, the default) and needs tls.ca: the CA that signs your clients' certificates. Without it any certificate from a public CA would pass. Set requestCert: false only if anyone may connect.`,
      );
    }
    const tls = await loadTls();
    server = tls.createServer({
      key: t.key,
      cert: t.cert,
      ca: t.ca,
      passphrase: t.passphrase,
      minVersion: t.minVersion,
      requestCert,
      rejectUnauthorized: requestCert,
      handshakeTimeout: options.handshakeTimeout === undefined || !Number.isFinite(options.handshakeTimeout) ? TLS_HANDSHAKE_TIMEOUT_DEFAULT : options.handshakeTimeout,
      pauseOnConnect: true,
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      socket.pause();
      listener.onConnection({ socket, peer: tlsPeer(socket) });
    });
    server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      socket.destroy();
      listener.onRefused(
        new ConverseError('HANDSHAKE_FAILED', `A TLS handshake from ${remote(socket) ?? 'a peer'} failed: ${error.message}.`, { cause: error }),
      );
    });
  } else {
    server = net.createServer({ pauseOnConnect: true });
    server.on('connection', (socket: net.Socket) => listener.onConnection({ socket, peer: tcpPeer(socket) }));
  }
  if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections + REFUSAL_HEADROOM;
  // A listening server never emits 'error' for a peer's doings, but keep one listener so nothing can crash the process.
  server.on('error', () => {});

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(
        error.code === 'EADDRINUSE'
          ? new ConverseError('ADDRESS_IN_USE', `Cannot listen on "${address.name}": the port is in use. Stop the other server or choose another port (port 0 picks a free one).`, { cause: error })
          : new ConverseError(error.code === 'EACCES' ? 'ACCESS_DENIED' : 'INVALID_NAME', `Cannot listen on "${address.name}": ${error.message}.`, { cause: error }),
      );
    };
    server.once('error', onError);
    server.listen({ host: address.host, port: address.port, backlog: options.backlog ?? 4096, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as net.AddressInfo;
  (listener as { name: string }).name = formatName(address.kind, address.host, bound.port);
  let closing: Promise<void> | undefined;
  listener.close = () => (closing ??= new Promise<void>((resolve) => server.close(() => resolve())));
  return listener;
}

export async function connectNetwork(address: NetworkAddress, timeout: number, options: ConnectTransportOptions): Promise<ConnectedStream> {
  await checkInsecureNetwork(address, options.allowInsecureNetwork, 'connect to');
  if (address.port === 0) throw new ConverseError('INVALID_NAME', `Cannot connect to "${address.name}": port 0 means "any free port" and only makes sense to listen on.`);
  const t = options.tls;
  const tls = address.kind === 'tls' ? await loadTls() : undefined;
  return new Promise<ConnectedStream>((resolve, reject) => {
    let settled = false;
    const ready = address.kind === 'tls' ? 'secureConnect' : 'connect';
    const socket =
      tls !== undefined
        ? tls.connect({
            host: address.host,
            port: address.port,
            key: t?.key,
            cert: t?.cert,
            ca: t?.ca,
            passphrase: t?.passphrase,
            minVersion: t?.minVersion,
            // SNI takes host names only; an IP address is still checked against the certificate's IP SANs.
            servername: t?.servername ?? (net.isIP(address.host) === 0 ? address.host : undefined),
            rejectUnauthorized: true,
          })
        : net.connect({ host: address.host, port: address.port });
    const fail = (error: ConverseError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new ConverseError('CONNECT_FAILED', `Could not connect to "${address.name}" within ${timeout} ms (connectTimeout). Check that the server is running and reachable, or raise connectTimeout.`)),
      timeout,
    );
    timer.unref?.();
    socket.once(ready, () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.pause();
      resolve({ socket, peer: address.kind === 'tls' ? tlsPeer(socket as tls.TLSSocket) : tcpPeer(socket) });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => fail(connectError(address, error)));
  });
}

function connectError(address: NetworkAddress, error: NodeJS.ErrnoException): ConverseError {
  if (error.code === 'ECONNREFUSED') {
    const refused = new ConverseError('CONNECT_FAILED', `No server is listening at "${address.name}" (connection refused). Start the server first, or check the host and port.`, { cause: error });
    nobodyListening.add(refused);
    return refused;
  }
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') {
    return new ConverseError('CONNECT_FAILED', `Cannot resolve the host "${address.host}" of "${address.name}": ${error.message}.`, { cause: error });
  }
  if (typeof error.code === 'string' && (error.code.startsWith('ERR_TLS') || error.code.includes('CERT') || error.code === 'ECONNRESET' || error.code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')) {
    return new ConverseError(
      'ACCESS_DENIED',
      `The TLS handshake with "${address.name}" failed: ${error.message}. Check that tls.ca holds the CA that signed the server's certificate, that the certificate names the host, and that tls.key/tls.cert hold a client certificate the server's CA signed.`,
      { cause: error },
    );
  }
  if (/alert|certificate|ssl/i.test(error.message)) {
    return new ConverseError('ACCESS_DENIED', `The TLS handshake with "${address.name}" failed: ${error.message}. The server may require a client certificate (tls.key, tls.cert) signed by its CA.`, { cause: error });
  }
  return new ConverseError('CONNECT_FAILED', `Could not connect to "${address.name}": ${error.message}.`, { cause: error });
}

function formatName(kind: 'tcp' | 'tls', host: string, port: number): string {
  return `${kind}://${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
}

function remote(socket: net.Socket): string | undefined {
  const { remoteAddress, remotePort } = socket;
  if (remoteAddress === undefined) return undefined;
  return `${net.isIPv6(remoteAddress) ? `[${remoteAddress}]` : remoteAddress}:${remotePort}`;
}

/** Plain TCP proves nothing about the peer: only its address, for logs. */
function tcpPeer(socket: net.Socket): PeerCredentials {
  const address = remote(socket);
  return address === undefined ? {} : { address };
}

/** The verified peer certificate's identity (the handshake has already checked it against `ca`). */
function tlsPeer(socket: tls.TLSSocket): PeerCredentials {
  const address = remote(socket);
  const cert = socket.getPeerCertificate(false);
  if (!socket.authorized || cert === null || typeof cert !== 'object' || cert.fingerprint256 === undefined) {
    return address === undefined ? {} : { address };
  }
  const subject: Record<string, string> = {};
  for (const [key, value] of Object.entries(cert.subject ?? {})) {
    if (typeof value === 'string') subject[key] = value;
    else if (Array.isArray(value)) subject[key] = value.join('+');
  }
  return { subject, fingerprint: cert.fingerprint256, ...(address === undefined ? {} : { address }) };
}
