import type { Duplex } from 'node:stream';
import type { PeerCredentials } from './peer-credentials.js';
import type { TlsOptions } from './network.js';
import type { NatsOptions } from './nats/options.js';

/**
 * The seam between the connection engine and what carries its bytes. Every transport hands the
 * engine an ordered, reliable byte stream (a Unix socket, a Windows pipe, a TCP or TLS socket, or a
 * virtual stream over NATS) together with who is at the other end, as something other than the peer
 * vouches for it. The engine never asks which transport it runs on.
 */
export interface AcceptedStream {
  /** The byte stream, paused: the engine resumes it when it is ready to read. */
  readonly socket: Duplex;
  readonly peer: PeerCredentials;
}

export interface TransportListener {
  /** The name as the listener actually listens on it (`tcp://127.0.0.1:0` becomes its real port). */
  readonly name: string;
  /** Set by the server: receives every accepted stream. */
  onConnection: (accepted: AcceptedStream) => void;
  /** Set by the server: a peer that failed before it became a stream (a TLS handshake refused …). */
  onRefused: (error: Error) => void;
  /** Stop accepting; resolves once nothing new can arrive. Idempotent. */
  close(): Promise<void>;
}

/** Transport options `listen` takes (each transport reads its own). */
export interface ListenTransportOptions {
  backlog?: number;
  socketMode?: number;
  tls?: TlsOptions;
  allowInsecureNetwork?: boolean;
  nats?: NatsOptions;
  maxConnections?: number;
  handshakeTimeout?: number;
}

/** Transport options `connect` takes. */
export interface ConnectTransportOptions {
  tls?: TlsOptions;
  allowInsecureNetwork?: boolean;
  nats?: NatsOptions;
}

export interface ConnectedStream {
  readonly socket: Duplex;
  readonly peer: PeerCredentials;
}

/** Errors that mean "nothing listens there (yet)": retried while `waitForServer` asks to wait. */
export const nobodyListening = new WeakSet<Error>();
