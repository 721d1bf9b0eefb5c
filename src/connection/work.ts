import type { PendingReplies } from '../pending.js';
import type { HandlerContextImpl, IncomingMessageImpl, InFlight } from './contexts.js';
import { PauseReason } from './flow.js';
import type { InFlightTable } from './in-flight.js';
import type { StreamWriter } from './stream-writer.js';

/**
 * Work in flight on a connection, as plain data: what the peer asked that this side is still
 * working on (handlers running, messages waiting for `reply`), what this side asked and waits
 * for, the streams it is producing, and whether reading from the peer is paused and why. Built
 * only when asked for (info, monitor, the dashboard): nothing here runs per message.
 */
export interface WorkInFlight {
  /** The peer's asks (and tells) this side is still handling. */
  handling: Array<{ id?: number; type: string; ageMs?: number; cancelled: boolean; tell?: true }>;
  /** Asks this side sent and still waits on. */
  asking: Array<{ id: number; type: string; ageMs?: number; timeoutMs: number | null; stream?: true }>;
  /** Streamed replies this side is producing. */
  streaming: Array<{ id: number; type: string; itemsSent: number; creditLeft: number }>;
  /** Reading from the peer: paused, and why (`reader`: the application's queue is full; `writes`: the peer is not reading our replies; `in-flight`: maxInFlight of its messages are being handled). */
  reading: { paused: boolean; reasons: Array<'reader' | 'writes' | 'in-flight'> };
}

export function describeWork(inFlight: InFlightTable, pending: PendingReplies, streams: StreamWriter, pausedFor: number, now = performance.now()): WorkInFlight {
  const handling: WorkInFlight['handling'] = [];
  for (const [id, item] of inFlight.entries()) {
    const entry: WorkInFlight['handling'][number] = { type: typeOf(item), cancelled: item.cancelled };
    if (id >= 0) entry.id = id;
    else entry.tell = true;
    if (item.since !== undefined) entry.ageMs = Math.round(now - item.since);
    handling.push(entry);
  }
  const asking: WorkInFlight['asking'] = [];
  for (const [id, ask] of pending.entries()) {
    const entry: WorkInFlight['asking'][number] = { id, type: ask.type, timeoutMs: Number.isFinite(ask.timeout) ? ask.timeout : null };
    // The deadline is the start plus the timeout (a stream's moves on with each item).
    if (Number.isFinite(ask.deadline)) entry.ageMs = Math.max(0, Math.round(now - (ask.deadline - ask.timeout)));
    if (ask.item !== undefined) entry.stream = true;
    asking.push(entry);
  }
  const streaming: WorkInFlight['streaming'] = [];
  for (const [id, producer] of streams.streams) streaming.push({ id, type: producer.type, itemsSent: producer.sent, creditLeft: producer.credit });
  const reasons: WorkInFlight['reading']['reasons'] = [];
  if ((pausedFor & PauseReason.READER) !== 0) reasons.push('reader');
  if ((pausedFor & PauseReason.WRITES) !== 0) reasons.push('writes');
  if ((pausedFor & PauseReason.IN_FLIGHT) !== 0) reasons.push('in-flight');
  return { handling, asking, streaming, reading: { paused: pausedFor !== 0, reasons } };
}

function typeOf(item: InFlight): string {
  const ctx = item as Partial<HandlerContextImpl>;
  if (typeof ctx.type === 'string') return ctx.type;
  return (item as Partial<IncomingMessageImpl>).event?.type ?? '';
}
