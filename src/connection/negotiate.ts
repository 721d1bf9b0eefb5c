import { ConverseError, ErrorCodes, type ErrorCode } from '../errors.js';
import { HandshakeKind, PROTOCOL_VERSION } from '../wire/constants.js';
import { encodeHandshake, encodeReject, versionMismatch, type HandshakeMessage } from '../wire/handshake.js';

/**
 * The handshake's decisions, as pure functions: what a client says first, what a server answers
 * to a HELLO, what a client makes of the answer. The bytes they return are written by the core;
 * nothing here touches a stream.
 */

export interface ProtocolMeta {
  name?: string;
  version?: string | number;
}

/** What this side brings to the handshake. */
export interface LocalTerms {
  role: 'client' | 'server';
  checksum: boolean;
  maxMessageSize: number;
  protocolMeta: ProtocolMeta | undefined;
  /** This side traces (OpenTelemetry) and so reads trace context on TELLs: said as `traceContext: 1` (§6.9). */
  readsTraceContext?: boolean;
}

/** What both sides agreed. */
export interface Agreement {
  checksum: boolean;
  /** The largest body this side may send: the smaller of both limits. */
  sendLimit: number;
  peerVersion: number;
  peerMaxMessageSize: number;
  peerProtocol: ProtocolMeta | undefined;
  /** The peer reads trace context on TELLs (its handshake said `traceContext: 1`). */
  peerReadsTraceContext: boolean;
}

export type Outcome =
  | { ok: true; agreement: Agreement; /** The server's WELCOME. */ answer?: Buffer }
  | {
      ok: false;
      error: ConverseError;
      /** A REJECT to write, after which the stream is ended. */
      answer?: Buffer;
      /** Destroy the stream at once (false: it ends by itself, after a REJECT either way). */
      destroy: boolean;
      peerProtocol?: ProtocolMeta | undefined;
    };

/** The client's HELLO. */
export function hello(local: LocalTerms): Buffer {
  return encodeHandshake(HandshakeKind.HELLO, { checksum: local.checksum, maxMessageSize: local.maxMessageSize, extension: extensionOf(local) });
}

/** The server's decision on a client's HELLO. */
export function answerHello(message: HandshakeMessage, local: LocalTerms): Outcome {
  if (message.version !== PROTOCOL_VERSION) {
    return {
      ok: false,
      error: versionMismatch(message.version, 'client'),
      answer: encodeReject('VERSION_MISMATCH', `The server speaks protocol version ${PROTOCOL_VERSION}, the client version ${message.version}.`, local.maxMessageSize),
      destroy: false,
    };
  }
  if (message.kind !== HandshakeKind.HELLO) {
    return { ok: false, error: new ConverseError('HANDSHAKE_FAILED', `The client's first message was handshake kind ${message.kind}, not HELLO.`), destroy: true };
  }
  const peerProtocol = readPeerProtocol(message.extension);
  const mismatch = protocolMismatch(peerProtocol, local);
  if (mismatch !== undefined) {
    return { ok: false, error: new ConverseError('HANDSHAKE_FAILED', `${mismatch}.`), answer: encodeReject('HANDSHAKE_FAILED', mismatch, local.maxMessageSize), destroy: false, peerProtocol };
  }
  const checksum = local.checksum || message.checksum;
  return {
    ok: true,
    agreement: {
      checksum,
      sendLimit: Math.min(local.maxMessageSize, message.maxMessageSize),
      peerVersion: message.version,
      peerMaxMessageSize: message.maxMessageSize,
      peerProtocol,
      peerReadsTraceContext: message.extension.traceContext === 1,
    },
    answer: encodeHandshake(HandshakeKind.WELCOME, { checksum, maxMessageSize: local.maxMessageSize, extension: extensionOf(local) }),
  };
}

/** The client's reading of the server's WELCOME or REJECT. */
export function readWelcome(message: HandshakeMessage, local: LocalTerms): Outcome {
  if (message.kind === HandshakeKind.REJECT) {
    // Without a known reason, a REJECT from another protocol version is a version mismatch
    // (the header's version field is stable across versions so that this can be told).
    const code =
      typeof message.extension.code === 'string' && Object.hasOwn(ErrorCodes, message.extension.code)
        ? (message.extension.code as ErrorCode)
        : message.version !== PROTOCOL_VERSION
          ? 'VERSION_MISMATCH'
          : 'HANDSHAKE_FAILED';
    const said = typeof message.extension.message === 'string' ? message.extension.message.replace(/\.$/, '') : 'no reason given';
    const error =
      code === 'VERSION_MISMATCH'
        ? versionMismatch(message.version, 'server')
        : new ConverseError(code, `The server refused the connection (${code}): ${said}.${Object.hasOwn(hints, code) ? hints[code] : ''}`);
    return { ok: false, error, destroy: false };
  }
  if (message.version !== PROTOCOL_VERSION) return { ok: false, error: versionMismatch(message.version, 'server'), destroy: true };
  if (message.kind !== HandshakeKind.WELCOME) {
    return { ok: false, error: new ConverseError('HANDSHAKE_FAILED', `The server answered with handshake kind ${message.kind}, not WELCOME.`), destroy: true };
  }
  const peerProtocol = readPeerProtocol(message.extension);
  const mismatch = protocolMismatch(peerProtocol, local);
  if (mismatch !== undefined) return { ok: false, error: new ConverseError('HANDSHAKE_FAILED', `${mismatch}.`), destroy: true, peerProtocol };
  return {
    ok: true,
    agreement: {
      checksum: message.checksum,
      sendLimit: Math.min(local.maxMessageSize, message.maxMessageSize),
      peerVersion: message.version,
      peerMaxMessageSize: message.maxMessageSize,
      peerProtocol,
      peerReadsTraceContext: message.extension.traceContext === 1,
    },
  };
}

/** The handshake extension: the declared protocol (§3.1) and whether this side reads trace context (§6.9); none when neither. */
function extensionOf(local: LocalTerms): Record<string, unknown> | undefined {
  const meta = local.protocolMeta;
  const extension: Record<string, unknown> = {};
  if (meta !== undefined && (meta.name !== undefined || meta.version !== undefined)) {
    const protocol: Record<string, unknown> = {};
    if (meta.name !== undefined) protocol.name = meta.name;
    if (meta.version !== undefined) protocol.version = meta.version;
    extension.protocol = protocol;
  }
  if (local.readsTraceContext === true) extension.traceContext = 1;
  return Object.keys(extension).length > 0 ? extension : undefined;
}

/** The peer's declared protocol, from its handshake extension. */
function readPeerProtocol(extension: Record<string, unknown>): ProtocolMeta | undefined {
  const declared = extension.protocol;
  if (typeof declared !== 'object' || declared === null) return undefined;
  const { name, version } = declared as { name?: unknown; version?: unknown };
  return {
    name: typeof name === 'string' ? name : undefined,
    version: typeof version === 'string' || typeof version === 'number' ? version : undefined,
  };
}

/** An error message when the peer's declared protocol name differs from ours. */
function protocolMismatch(peer: ProtocolMeta | undefined, local: LocalTerms): string | undefined {
  const ours = local.protocolMeta?.name;
  const theirs = peer?.name;
  if (ours === undefined || theirs === undefined || ours === theirs) return undefined;
  const peerRole = local.role === 'server' ? 'client' : 'server';
  const theirVersion = peer?.version !== undefined ? ` version ${peer.version}` : '';
  const ourVersion = local.protocolMeta?.version !== undefined ? ` version ${local.protocolMeta.version}` : '';
  return `The ${peerRole} speaks protocol "${theirs}"${theirVersion} and the ${local.role} "${ours}"${ourVersion}: connect to the right socket, or use the same protocol on both sides`;
}

const hints: Partial<Record<ErrorCode, string>> = {
  SERVER_FULL: ' Retry later, or raise the server’s connection limits.',
  ACCESS_DENIED: ' The server does not allow this user or process to connect.',
  CONNECTION_CLOSED: ' The server is shutting down; retry once it is back.',
};
