/**
 * The CLI's views of what happened on the wire: `replay <file>` (a flight recording) and the
 * message lines of `monitor --messages`. Every string shown may come from a peer or from a
 * hand-edited file: it goes through the terminal neutraliser.
 */
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
