import { ConverseError } from '../../errors.js';
import type { NatsOptions } from './options.js';

/**
 * Opening a virtual stream. The client subscribes to a fresh inbox and sends OPEN as a NATS
 * request to the service subject, `converse.svc.<service>`; every daemon serving the service
 * subscribes there in the queue group `converse`, so NATS hands each OPEN to exactly one of them.
 * That daemon subscribes to its own fresh inbox for the stream and replies ACCEPT. Both are small
 * JSON objects:
 *
 *   OPEN   {"converse":1,"inbox":"<client inbox>","window":<bytes>,"silence":<ms>}
 *   ACCEPT {"converse":1,"inbox":"<server inbox>","window":<bytes>,"silence":<ms>}
 *   REFUSE {"converse":1,"refused":"<code>","message":"<why>"}
 *
 * `window` is the initial credit the sender grants its peer; `silence` how long the sender waits
 * without hearing from the peer before it resets the stream (the peer sends a heartbeat at least
 * every third of that).
 */

export const OPEN_VERSION = 1;
export const QUEUE_GROUP = 'converse';
export const DEFAULT_WINDOW = 256 * 1024;
export const MIN_WINDOW = 4 * 1024;
export const MAX_WINDOW = 64 * 1024 * 1024;
export const DEFAULT_HEARTBEAT = { interval: 2000, timeout: 6000 };
/** Bounds on what a peer may announce, so it cannot make us send heartbeats in a busy loop or never reset. */
const MIN_SILENCE = 100;
const MAX_SILENCE = 24 * 60 * 60 * 1000;
const MAX_INBOX_LENGTH = 256;
/** An OPEN or ACCEPT is a few dozen bytes: anything large is not one. */
export const MAX_OPEN_BYTES = 1024;

export interface OpenMessage {
  inbox: string;
  window: number;
  silence: number;
}

export function serviceSubject(service: string): string {
  return `converse.svc.${service}`;
}

export interface StreamSettings {
  window: number;
  interval: number;
  timeout: number;
}

export function streamSettings(options: NatsOptions | undefined): StreamSettings {
  const window = options?.window ?? DEFAULT_WINDOW;
  if (!Number.isInteger(window) || window < MIN_WINDOW || window > MAX_WINDOW) {
    throw new ConverseError('INVALID_ARGUMENT', `nats.window must be an integer from ${MIN_WINDOW} to ${MAX_WINDOW} bytes (got ${String(window)}).`);
  }
  const interval = options?.heartbeat?.interval ?? DEFAULT_HEARTBEAT.interval;
  const timeout = options?.heartbeat?.timeout ?? (options?.heartbeat === undefined ? DEFAULT_HEARTBEAT.timeout : interval * 3);
  if (!(interval >= MIN_SILENCE / 3 && timeout >= MIN_SILENCE && timeout <= MAX_SILENCE && interval < timeout)) {
    throw new ConverseError('INVALID_ARGUMENT', `nats.heartbeat needs ${Math.ceil(MIN_SILENCE / 3)} <= interval < timeout, and ${MIN_SILENCE} <= timeout <= ${MAX_SILENCE} ms.`);
  }
  return { window, interval, timeout };
}

/** How often to send heartbeats: our own interval, but often enough for the peer's announced silence. */
export function heartbeatInterval(settings: StreamSettings, peerSilence: number): number {
  return Math.min(settings.interval, peerSilence / 3);
}

export function encodeOpen(message: OpenMessage): string {
  return JSON.stringify({ converse: OPEN_VERSION, inbox: message.inbox, window: message.window, silence: message.silence });
}

export function encodeRefuse(code: string, message: string): string {
  return JSON.stringify({ converse: OPEN_VERSION, refused: code, message });
}

/** Parse an OPEN or ACCEPT from the network; throws a plain Error saying what is wrong. */
export function decodeOpen(data: Uint8Array): OpenMessage | { refused: string; message: string } {
  if (data.length > MAX_OPEN_BYTES) throw new Error(`an opening message of ${data.length} bytes`);
  const value = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as Record<string, unknown>;
  if (typeof value !== 'object' || value === null || value.converse !== OPEN_VERSION) throw new Error('not an interprocess-converse opening message of version 1');
  if (typeof value.refused === 'string') return { refused: value.refused, message: typeof value.message === 'string' ? value.message.slice(0, 500) : '' };
  const { inbox, window, silence } = value;
  // A subject we publish to: no wildcards, no whitespace, bounded.
  if (typeof inbox !== 'string' || inbox.length === 0 || inbox.length > MAX_INBOX_LENGTH || !/^[!-~]+$/.test(inbox) || /(^|\.)[*>](\.|$)/.test(inbox)) {
    throw new Error('a bad inbox subject');
  }
  if (typeof window !== 'number' || !Number.isInteger(window) || window < MIN_WINDOW || window > MAX_WINDOW) throw new Error('a bad window');
  if (typeof silence !== 'number' || !(silence >= MIN_SILENCE && silence <= MAX_SILENCE)) throw new Error('a bad silence');
  return { inbox, window, silence };
}
