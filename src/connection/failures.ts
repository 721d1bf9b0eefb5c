import { ConverseError } from '../errors.js';

/** The errors a connection makes of its own, worded once. */

/** The peer sent something the wire protocol does not allow: the connection closes. */
export function protocolError(what: string): ConverseError {
  return new ConverseError('PROTOCOL_ERROR', `The peer broke the wire protocol: ${what}. The connection was closed; check the peer against docs/PROTOCOL.md.`);
}

/** An ask (or a wait to send one) ended by its AbortSignal. */
export function abortedError(type: string, signal: AbortSignal): ConverseError {
  return new ConverseError('ABORTED', `The ask "${type}" was aborted by its AbortSignal; the peer was told to stop.`, { cause: signal.reason });
}

/** A message argument that is not `{ type: string, … }`. */
export function badMessageError(): ConverseError {
  return new ConverseError('INVALID_ARGUMENT', 'A message must be an object with a string "type".');
}

export function isMessage(event: unknown): event is { type: string } {
  return typeof event === 'object' && event !== null && typeof (event as { type?: unknown }).type === 'string';
}
