import * as fs from 'node:fs';
import { ConverseError } from './errors.js';
import type { FlightRecording, RecordedFrame, RecordedSession, RecordedSessionTransition, RecordedTransition } from './connection/recorder.js';
import type { GraphState, GraphTransition, MachineGraph } from './machine-graph.js';

/**
 * Flight recordings as files: written as JSON, read back (checked: a recording file may come from
 * anywhere), and rendered as lines for a terminal (`interprocess-converse replay <file>`).
 */

export type { FlightRecording, RecordedFrame, RecordedSession, RecordedSessionTransition, RecordedTransition } from './connection/recorder.js';

/** Most states or transitions a recorded session graph may have (a hand-edited file cannot make the dashboard lay out a monster). */
const MAX_GRAPH_ITEMS = 2000;

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
  if (r.session !== undefined) recording.session = parseSession(r.session, bad, number, optionalString);
  if (typeof r.reason === 'object' && r.reason !== null) {
    const reason = r.reason as Record<string, unknown>;
    recording.reason = { code: optionalString(reason.code, '"reason.code"') ?? '?', message: optionalString(reason.message, '"reason.message"') ?? '' };
  }
  return recording;
}

function parseSession(
  data: unknown,
  bad: (what: string) => never,
  number: (value: unknown, what: string) => number,
  optionalString: (value: unknown, what: string) => string | undefined,
): RecordedSession {
  if (typeof data !== 'object' || data === null) bad('"session" is not an object');
  const s = data as Record<string, unknown>;
  if (!Array.isArray(s.transitions)) bad('"session.transitions" must be an array');
  const strings = (value: unknown, what: string): string[] => (Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : bad(`${what} must be an array of strings`));
  const session: RecordedSession = {
    machine: optionalString(s.machine, '"session.machine"') ?? '?',
    transitions: (s.transitions as unknown[]).map((t, i): RecordedSessionTransition => {
      if (typeof t !== 'object' || t === null) bad(`session transition ${i} is not an object`);
      const transition = t as Record<string, unknown>;
      const out: RecordedSessionTransition = { at: number(transition.at, `session transition ${i} "at"`), state: strings(transition.state, `session transition ${i} "state"`) };
      const event = optionalString(transition.event, `session transition ${i} "event"`);
      if (event !== undefined) out.event = event;
      return out;
    }),
  };
  if (s.graph !== undefined) {
    if (typeof s.graph !== 'object' || s.graph === null) bad('"session.graph" is not an object');
    const g = s.graph as Record<string, unknown>;
    if (!Array.isArray(g.states) || !Array.isArray(g.transitions)) bad('"session.graph" needs "states" and "transitions" arrays');
    if ((g.states as unknown[]).length > MAX_GRAPH_ITEMS || (g.transitions as unknown[]).length > MAX_GRAPH_ITEMS) bad(`"session.graph" has more than ${MAX_GRAPH_ITEMS} states or transitions`);
    const types = new Set(['atomic', 'compound', 'parallel', 'final', 'history']);
    const graph: MachineGraph = {
      id: optionalString(g.id, '"session.graph.id"') ?? session.machine,
      states: (g.states as unknown[]).map((x, i): GraphState => {
        if (typeof x !== 'object' || x === null) bad(`graph state ${i} is not an object`);
        const state = x as Record<string, unknown>;
        const path = optionalString(state.path, `graph state ${i} "path"`) ?? bad(`graph state ${i} has no path`);
        const out: GraphState = {
          key: optionalString(state.key, `graph state ${i} "key"`) ?? path,
          path,
          type: types.has(state.type as string) ? (state.type as GraphState['type']) : 'atomic',
          initial: state.initial === true,
          final: state.final === true,
        };
        const parent = optionalString(state.parent, `graph state ${i} "parent"`);
        if (parent !== undefined) out.parent = parent;
        return out;
      }),
      transitions: (g.transitions as unknown[]).map((x, i): GraphTransition => {
        if (typeof x !== 'object' || x === null) bad(`graph transition ${i} is not an object`);
        const t = x as Record<string, unknown>;
        const out: GraphTransition = {
          source: optionalString(t.source, `graph transition ${i} "source"`) ?? bad(`graph transition ${i} has no source`),
          target: optionalString(t.target, `graph transition ${i} "target"`) ?? bad(`graph transition ${i} has no target`),
          event: optionalString(t.event, `graph transition ${i} "event"`) ?? '',
          label: optionalString(t.label, `graph transition ${i} "label"`) ?? '',
          kind: t.kind === 'after' || t.kind === 'always' ? t.kind : 'event',
        };
        const guard = optionalString(t.guard, `graph transition ${i} "guard"`);
        if (guard !== undefined) out.guard = guard;
        return out;
      }),
    };
    // A parent must be a state of the graph, and come before its children.
    const seen = new Set<string>();
    for (const state of graph.states) {
      if (state.parent !== undefined && !seen.has(state.parent)) bad(`graph state "${state.path}" names a parent that is not before it`);
      seen.add(state.path);
    }
    session.graph = graph;
  }
  return session;
}

/** One step of a recording in time order: a frame, a lifecycle transition, or a session machine transition. */
export type RecordingStep =
  | ({ step: 'frame' } & RecordedFrame)
  | ({ step: 'state' } & RecordedTransition)
  | ({ step: 'session' } & RecordedSessionTransition);

const STEP_ORDER = { state: 0, frame: 1, session: 2 } as const;

/** Frames and transitions merged in time order (at equal times: lifecycle, then the frame, then the session move it caused). */
export function recordingSteps(recording: FlightRecording): RecordingStep[] {
  const steps: RecordingStep[] = [
    ...recording.transitions.map((t) => ({ step: 'state' as const, ...t })),
    ...recording.frames.map((f) => ({ step: 'frame' as const, ...f })),
    ...(recording.session?.transitions ?? []).map((t) => ({ step: 'session' as const, ...t })),
  ];
  return steps.sort((a, b) => a.at - b.at || STEP_ORDER[a.step] - STEP_ORDER[b.step]);
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
  if (recording.session !== undefined) lines.push(`session machine ${safe(recording.session.machine)}: ${recording.session.transitions.length} transition${recording.session.transitions.length === 1 ? '' : 's'}`);
  const steps = recordingSteps(recording);
  const start = steps[0]?.at ?? recording.takenAt;
  for (const step of steps) lines.push(`${relativeTime(step.at - start)}  ${describeStep(step, safe)}`);
  return lines;
}

/** One step as text: `→ ASK #3 add (24 B)`, `state active`. */
export function describeStep(step: RecordingStep, safe: (text: string) => string): string {
  if (step.step === 'state') return `state ${safe(step.state)}`;
  if (step.step === 'session') return `session ${step.event === undefined ? '' : `${safe(step.event)} → `}${step.state.map(safe).join(', ')}`;
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
