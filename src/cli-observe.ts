/**
 * The CLI's views of what happened on the wire: `replay <file>` (a flight recording) and the
 * message lines of `monitor --messages`. Every string shown may come from a peer or from a
 * hand-edited file: it goes through the terminal neutraliser.
 */
import type { ConnectionInfo } from './introspection.js';
import { loadRecording, renderRecording } from './recording.js';
import { terminalSafe, terminalSafeOutput } from './terminal-safe.js';
import { formatTraceRecord, type TraceRecord } from './trace.js';

/** `replay <file>`: the recording's lines (or, with `json`, the checked recording as JSON). */
export function replayText(file: string, json: boolean): string {
  const recording = loadRecording(file);
  if (json) return `${JSON.stringify(recording)}\n`;
  return terminalSafeOutput(`${renderRecording(recording, terminalSafe).join('\n')}\n`);
}

/** One traced message for `monitor --messages`: a line (peer strings neutralised), or one JSON object. */
export function messageLine(record: TraceRecord, dropped: number, json: boolean): string {
  const note = dropped > 0 ? (json ? `${JSON.stringify({ kind: 'dropped', count: dropped })}\n` : `… ${dropped} message(s) dropped (this monitor fell behind)\n`) : '';
  return terminalSafeOutput(note + (json ? `${JSON.stringify({ kind: 'message', record }, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))}\n` : `${formatTraceRecord(record)}\n`));
}

/** `info` / `connections`: each connection's work in flight, one line each (strings already neutralised by the caller). */
export function workText(connections: ConnectionInfo[]): string {
  const lines: string[] = [];
  for (const c of connections) {
    const work = c.work;
    if (work === undefined) continue;
    const parts: string[] = [];
    for (const h of work.handling) {
      parts.push(`handling ${h.tell ? 'tell' : `#${h.id}`} ${h.type}${h.ageMs === undefined ? '' : ` for ${seconds(h.ageMs)}`}${h.cancelled ? ' (asker cancelled)' : ''}`);
    }
    for (const a of work.asking) {
      parts.push(`asking #${a.id} ${a.type}${a.ageMs === undefined ? '' : ` for ${seconds(a.ageMs)}`}${a.timeoutMs === null ? ', no timeout' : ` of ${seconds(a.timeoutMs)}`}${a.stream ? ' (stream)' : ''}`);
    }
    for (const s of work.streaming) parts.push(`streaming #${s.id} ${s.type}: ${s.itemsSent} sent, credit ${s.creditLeft}`);
    if (work.reading.paused) parts.push(`reading paused (${work.reading.reasons.map((r) => (Object.hasOwn(PAUSED_BECAUSE, r) ? PAUSED_BECAUSE[r] : 'another reason')).join('; ')})`);
    if (parts.length > 0) lines.push(`  ${c.id}  ${parts.join(' · ')}`);
  }
  return lines.length === 0 ? '' : `\nwork in flight:\n${lines.join('\n')}\n`;
}

const PAUSED_BECAUSE = {
  reader: 'the application is not taking messages',
  writes: 'the peer is not reading our replies',
  'in-flight': 'maxInFlight of its messages are being handled',
} as const;

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
