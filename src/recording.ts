import * as fs from 'node:fs';
import { ConverseError } from './errors.js';
import type { FlightRecording, RecordedFrame, RecordedTransition } from './connection/recorder.js';

/**
 * Flight recordings as files: written as JSON, read back (checked: a recording file may come from
 * anywhere), and rendered as lines for a terminal (`interprocess-converse replay <file>`).
 */

export type { FlightRecording, RecordedFrame, RecordedTransition } from './connection/recorder.js';

/** Largest recording file read (a recording is a few KiB; anything far larger is not one). */
const MAX_RECORDING_FILE = 16 * 1024 * 1024;

/** Write `recording` (e.g. `error.recording` from `connectionError`) to `file` as JSON. */
export function saveRecording(recording: FlightRecording, file: string): void {
  fs.writeFileSync(file, `${JSON.stringify(recording, null, 2)}\n`, { mode: 0o600 });
}

/** Read a recording written by `saveRecording`; throws INVALID_ARGUMENT when the file is not one. */
export function loadRecording(file: string): FlightRecording {
  const size = fs.statSync(file).size;
  if (size > MAX_RECORDING_FILE) throw new ConverseError('INVALID_ARGUMENT', `${file} is ${size} bytes: too large to be a flight recording.`);
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConverseError('INVALID_ARGUMENT', `${file} is not JSON: ${(error as Error).message}.`);
  }
  return parseRecording(data, file);
}

/** Check that `data` has a recording's shape, keeping only the known fields. */
export function parseRecording(data: unknown, source = 'the data'): FlightRecording {
  const bad = (what: string): never => {
    throw new ConverseError('INVALID_ARGUMENT', `${source} is not a flight recording: ${what}.`);
  };
  if (typeof data !== 'object' || data === null) bad('not an object');
  const r = data as Record<string, unknown>;
  if (r.format !== 'interprocess-converse.recording') bad('no "format": "interprocess-converse.recording"');
  if (r.version !== 1) bad(`version ${String(r.version)} is not 1`);
  if (!Array.isArray(r.frames) || !Array.isArray(r.transitions)) bad('"frames" and "transitions" must be arrays');
  const number = (value: unknown, what: string): number => (typeof value === 'number' && Number.isFinite(value) ? value : bad(`${what} must be a number`));
  const optionalString = (value: unknown, what: string): string | undefined => (value === undefined || typeof value === 'string' ? value : bad(`${what} must be a string`));
  const frames = (r.frames as unknown[]).map((f, i): RecordedFrame => {
    if (typeof f !== 'object' || f === null) bad(`frame ${i} is not an object`);
    const frame = f as Record<string, unknown>;
    if (frame.dir !== 'in' && frame.dir !== 'out') bad(`frame ${i} has no direction`);
    const out: RecordedFrame = { at: number(frame.at, `frame ${i} "at"`), dir: frame.dir as 'in' | 'out', kind: optionalString(frame.kind, `frame ${i} "kind"`) ?? '?', size: number(frame.size, `frame ${i} "size"`) };
    if (frame.id !== undefined) out.id = number(frame.id, `frame ${i} "id"`);
    const type = optionalString(frame.type, `frame ${i} "type"`);
    if (type !== undefined) out.type = type;
    return out;
  });
  const transitions = (r.transitions as unknown[]).map((t, i): RecordedTransition => {
    if (typeof t !== 'object' || t === null) bad(`transition ${i} is not an object`);
    const transition = t as Record<string, unknown>;
    return { at: number(transition.at, `transition ${i} "at"`), state: optionalString(transition.state, `transition ${i} "state"`) ?? '?' };
  });
  const recording: FlightRecording = {
    format: 'interprocess-converse.recording',
    version: 1,
    takenAt: number(r.takenAt, '"takenAt"'),
    framesSeen: number(r.framesSeen, '"framesSeen"'),
    frames,
    transitions,
  };
  const connection = optionalString(r.connection, '"connection"');
  if (connection !== undefined) recording.connection = connection;
  if (r.role === 'client' || r.role === 'server') recording.role = r.role;
  if (typeof r.peer === 'object' && r.peer !== null) {
    const peer = r.peer as Record<string, unknown>;
    recording.peer = {};
    for (const key of ['pid', 'uid', 'gid'] as const) if (typeof peer[key] === 'number') recording.peer[key] = peer[key];
  }
  if (typeof r.reason === 'object' && r.reason !== null) {
    const reason = r.reason as Record<string, unknown>;
    recording.reason = { code: optionalString(reason.code, '"reason.code"') ?? '?', message: optionalString(reason.message, '"reason.message"') ?? '' };
  }
  return recording;
}

/** One step of a recording in time order: a frame or a lifecycle transition. */
export type RecordingStep = ({ step: 'frame' } & RecordedFrame) | ({ step: 'state' } & RecordedTransition);

/** Frames and transitions merged in time order (transitions first at equal times). */
export function recordingSteps(recording: FlightRecording): RecordingStep[] {
  const steps: RecordingStep[] = [
    ...recording.transitions.map((t) => ({ step: 'state' as const, ...t })),
    ...recording.frames.map((f) => ({ step: 'frame' as const, ...f })),
  ];
  return steps.sort((a, b) => a.at - b.at || (a.step === b.step ? 0 : a.step === 'state' ? -1 : 1));
}

/**
 * The recording as terminal lines. Every string in it may come from a peer (message types,
 * error messages) or from a hand-edited file: `safe` neutralises each one before it is shown.
 */
export function renderRecording(recording: FlightRecording, safe: (text: string) => string): string[] {
  const lines: string[] = [];
  const who = [recording.role === undefined ? undefined : `${recording.role} side`, peerText(recording.peer)].filter(Boolean).join(', ');
  lines.push(`Flight recording of connection ${safe(recording.connection ?? '(unnamed)')}${who ? ` (${who})` : ''}, taken ${new Date(recording.takenAt).toISOString()}`);
  if (recording.reason !== undefined) lines.push(`Closed on ${safe(recording.reason.code)}: ${safe(recording.reason.message)}`);
  const kept = recording.frames.length;
  lines.push(kept === recording.framesSeen ? `${kept} frame${kept === 1 ? '' : 's'}, ${recording.transitions.length} transition${recording.transitions.length === 1 ? '' : 's'}` : `last ${kept} of ${recording.framesSeen} frames, ${recording.transitions.length} transitions`);
  const steps = recordingSteps(recording);
  const start = steps[0]?.at ?? recording.takenAt;
  for (const step of steps) lines.push(`${relativeTime(step.at - start)}  ${describeStep(step, safe)}`);
  return lines;
}

/** One step as text: `→ ASK #3 add (24 B)`, `state active`. */
export function describeStep(step: RecordingStep, safe: (text: string) => string): string {
  if (step.step === 'state') return `state ${safe(step.state)}`;
  const arrow = step.dir === 'out' ? '→' : '←';
  const id = step.id === undefined ? '' : ` #${step.id}`;
  const type = step.type === undefined ? '' : ` ${safe(step.type)}`;
  return `${arrow} ${safe(step.kind)}${id}${type} (${step.size} B)`;
}

function peerText(peer: FlightRecording['peer']): string | undefined {
  if (peer === undefined) return undefined;
  const parts = (['pid', 'uid', 'gid'] as const).filter((key) => peer[key] !== undefined).map((key) => `${key} ${peer[key]}`);
  return parts.length > 0 ? `peer ${parts.join(' ')}` : undefined;
}

function relativeTime(ms: number): string {
  return `+${ms.toFixed(3)} ms`.padStart(14);
}
