import type { FlightRecording } from './connection/recorder.js';
/**
 * Every failure the library reports is a `ConverseError` with a stable string `code`.
 * Match on `code`, never on the message: messages say what happened and what to do, and
 * may be reworded; codes are part of the public contract (docs/PROTOCOL.md lists them).
 */

export const ErrorCodes = {
  TIMEOUT: 'TIMEOUT',
  ABORTED: 'ABORTED',
  CONNECTION_CLOSED: 'CONNECTION_CLOSED',
  MESSAGE_TOO_LARGE: 'MESSAGE_TOO_LARGE',
  RECEIVED_MESSAGE_TOO_LARGE: 'RECEIVED_MESSAGE_TOO_LARGE',
  VERSION_MISMATCH: 'VERSION_MISMATCH',
  HANDSHAKE_FAILED: 'HANDSHAKE_FAILED',
  CHECKSUM_MISMATCH: 'CHECKSUM_MISMATCH',
  DECODE_FAILED: 'DECODE_FAILED',
  NO_HANDLER: 'NO_HANDLER',
  REMOTE_ERROR: 'REMOTE_ERROR',
  ADDRESS_IN_USE: 'ADDRESS_IN_USE',
  SERVER_FULL: 'SERVER_FULL',
  ACCESS_DENIED: 'ACCESS_DENIED',
  // Added beyond the contract's table:
  /** A message did not match the declared protocol (`issues` says where). */
  INVALID_MESSAGE: 'INVALID_MESSAGE',
  /** The connection's session machine does not accept this message in its current state. */
  NOT_ACCEPTED: 'NOT_ACCEPTED',
  /** A value this side tried to send cannot be encoded (a function, a cycle, nesting too deep …). */
  ENCODE_FAILED: 'ENCODE_FAILED',
  /** The socket name is unusable (too long for the platform, wrong form). */
  INVALID_NAME: 'INVALID_NAME',
  /** `connect` could not reach a server within `connectTimeout`. */
  CONNECT_FAILED: 'CONNECT_FAILED',
  /** The peer broke the wire protocol after the handshake (unknown frame kind, bad envelope). */
  PROTOCOL_ERROR: 'PROTOCOL_ERROR',
  /** The peer started a frame and did not finish it within `frameTimeout` (a slowloris peer). */
  FRAME_TIMEOUT: 'FRAME_TIMEOUT',
  /** The peer stopped reading: the data waiting for it passed the write-buffer limit. */
  PEER_NOT_READING: 'PEER_NOT_READING',
  /** An argument to a library call is invalid (a programming error on this side). */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** Plain `tcp://` to or on a non-loopback address without `allowInsecureNetwork: true`. */
  INSECURE_NETWORK: 'INSECURE_NETWORK',
  /** An optional integration is needed but not installed (e.g. `@nats-io/transport-node` for `nats://`). */
  MISSING_DEPENDENCY: 'MISSING_DEPENDENCY',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** What a remote handler threw, as it travelled over the wire. */
export interface RemoteErrorInfo {
  name: string;
  message: string;
  code?: string;
}

const kBrand = Symbol.for('interprocess-converse.ConverseError');

export class ConverseError extends Error {
  override readonly name = 'ConverseError';
  readonly code: ErrorCode;
  /** Present when `code` is `REMOTE_ERROR`: what the peer's handler threw. */
  declare readonly remote?: RemoteErrorInfo;
  /** Present when `code` is `INVALID_MESSAGE`: what the validator found, with paths. */
  declare readonly issues?: Array<{ message: string; path: Array<string | number> }>;
  /**
   * The flight recording of the connection this error closed (its last frames and lifecycle
   * transitions): on `closeReason` and on the error a server's `connectionError` event gives.
   */
  declare recording?: FlightRecording;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; remote?: RemoteErrorInfo; issues?: Array<{ message: string; path: Array<string | number> }> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.remote) (this as { remote?: RemoteErrorInfo }).remote = options.remote;
    if (options?.issues) (this as { issues?: unknown }).issues = options.issues;
    // Brand so `instanceof` holds across two installed copies of the package.
    (this as unknown as Record<symbol, boolean>)[kBrand] = true;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true;
  }
}

export function isConverseError(value: unknown, code?: ErrorCode): value is ConverseError {
  return value instanceof ConverseError && (code === undefined || value.code === code);
}

/** The error every pending ask gets when its connection goes away. */
export function connectionClosedError(reason?: unknown): ConverseError {
  const detail = reason instanceof Error ? `: ${reason.message}` : '';
  return new ConverseError(
    'CONNECTION_CLOSED',
    `The connection closed before the operation completed${detail}. Reconnect (or use a new connection) and retry if the operation is safe to repeat.`,
    reason === undefined ? undefined : { cause: reason },
  );
}
