import { ConverseError, type ErrorCode, type RemoteErrorInfo } from '../errors.js';
import type { ValidationIssue } from '../protocol.js';

/**
 * The body of an ERROR frame, both ways: what we put in it (`errorPayload`, `describeThrown`)
 * and what we make of a peer's (`errorFromWire`). Both ends treat the other's values as
 * untrusted: nothing a handler threw or a peer sent escapes from here as an exception.
 */

/** Codes a peer may put in an ERROR frame; anything else is read as REMOTE_ERROR. */
const WIRE_ERROR_CODES = new Set<string>(['NO_HANDLER', 'REMOTE_ERROR', 'CONNECTION_CLOSED', 'INVALID_MESSAGE', 'NOT_ACCEPTED']);

/** The map an ERROR frame carries. */
export function errorPayload(code: ErrorCode, message: string, remote?: RemoteErrorInfo, issues?: ValidationIssue[]): Record<string, unknown> {
  const payload: Record<string, unknown> = { code, message };
  if (remote !== undefined) payload.remote = remote;
  if (issues !== undefined) payload.issues = issues;
  return payload;
}

/** What a handler threw, as plain data for the wire. */
export function describeThrown(error: unknown): RemoteErrorInfo {
  // Whatever a handler threw is untrusted: a getter that throws, a Symbol name or a Proxy must
  // not escape from here (it would be an uncaught exception in the server, and the asker would
  // wait for its timeout instead of getting REMOTE_ERROR).
  try {
    if (error instanceof Error) {
      const info: RemoteErrorInfo = { name: safeString(error.name), message: safeString(error.message) };
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string') info.code = code;
      return info;
    }
    return { name: 'Error', message: typeof error === 'string' ? error : safeString(error) };
  } catch {
    return { name: 'Error', message: 'the handler threw a value that could not be described' };
  }
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return 'a non-Error value';
  }
}

/** The error an ask rejects with, from the body of the peer's ERROR frame. */
export function errorFromWire(payload: unknown, type: string): ConverseError {
  const p = (typeof payload === 'object' && payload !== null ? payload : {}) as { code?: unknown; message?: unknown; remote?: unknown; issues?: unknown };
  const code = typeof p.code === 'string' && WIRE_ERROR_CODES.has(p.code) ? (p.code as ErrorCode) : 'REMOTE_ERROR';
  const message = typeof p.message === 'string' ? p.message : `The peer answered "${type}" with an error.`;
  let remote: RemoteErrorInfo | undefined;
  if (typeof p.remote === 'object' && p.remote !== null) {
    const r = p.remote as { name?: unknown; message?: unknown; code?: unknown };
    remote = { name: typeof r.name === 'string' ? r.name : 'Error', message: typeof r.message === 'string' ? r.message : '' };
    if (typeof r.code === 'string') remote.code = r.code;
  } else if (code === 'REMOTE_ERROR') {
    remote = { name: 'Error', message };
  }
  const issues = Array.isArray(p.issues)
    ? p.issues
        .filter((issue): issue is { message: unknown; path?: unknown } => typeof issue === 'object' && issue !== null)
        .map((issue) => ({
          message: String(issue.message),
          path: Array.isArray(issue.path) ? issue.path.filter((k): k is string | number => typeof k === 'string' || typeof k === 'number') : [],
        }))
    : undefined;
  return new ConverseError(code, message, { remote, issues });
}
