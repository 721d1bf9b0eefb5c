import { FrameKind, LENGTH_INLINE_MAX, LENGTH_U16, LENGTH_U32, CHECKSUM_SIZE } from '../wire/constants.js';
import type { MessageTracer } from '../trace.js';
import type { MachineGraph } from '../machine-graph.js';

/**
 * The flight recorder: every connection keeps the metadata of its last frames (direction, kind,
 * id, type, size, time) and its lifecycle transitions in bounded rings, so a connection that
 * fails can say what happened just before. The frame ring is one array of unboxed numbers, made
 * at the connection's first frame and doubled up to its capacity, so a connection that says
 * little holds little (a plain double array: a typed array costs ~0.2 KiB more of objects
 * around a few bytes); recording a frame writes a few numbers and a reference to a type string
 * that already exists (no allocation but the rare doubling). A recording is built only when asked
 * for (a failed close, introspection, the user).
 *
 * It is also the one place frames are observed: with a message tracer attached (`trace` option,
 * or a monitor watching messages), each frame goes on to it behind a single branch.
 */

/** Frames each connection remembers by default. */
export const DEFAULT_RECORDED_FRAMES = 64;
/** Lifecycle transitions each connection remembers. */
const RECORDED_TRANSITIONS = 16;
/** Session machine transitions each connection with a session remembers. */
export const RECORDED_SESSION_TRANSITIONS = 16;
/** Frames the ring holds when it is first made (it doubles up to the capacity): an ask and its reply. */
const FIRST_RING = 2;
/** Lifecycle transitions the ring holds when it is first made: handshake, active, closing, closed. */
const FIRST_TRANSITIONS = 4;
/** Shared and never written: each ring is replaced by its own array before its first write. */
const NO_NUMBERS: number[] = [];
const NO_STRINGS: Array<string | undefined> = [];

/** The kind byte of a frame whose body could not be decoded, or was not an envelope. */
const KIND_UNDECODABLE = 254;
const KIND_NOT_ENVELOPE = 253;
/** An envelope whose kind is not one this side knows and does not fit in 7 bits. */
const KIND_UNKNOWN = 252;
const NO_ID = 0xffffffff;
const DIRECTION_OUT = 0x80;

export type FrameDirection = 'in' | 'out';

/** One frame as recorded. */
export interface RecordedFrame {
  /** Milliseconds since the epoch (sub-millisecond precision). */
  at: number;
  dir: FrameDirection;
  /** TELL, ASK, REPLY, ERROR, CANCEL, GOODBYE, PING, PONG, STREAM_ITEM, STREAM_END, CREDIT, or UNDECODABLE / NOT_ENVELOPE / KIND_<n> for what a peer sent that is none of them. */
  kind: string;
  id?: number;
  /** The message type: carried by TELL and ASK; for the other kinds, the type of the ask with the same id (when it is still in the recording). */
  type?: string;
  /** Body size in bytes. */
  size: number;
}

/** One lifecycle transition as recorded. */
export interface RecordedTransition {
  at: number;
  state: string;
}

/** One transition of the connection's session machine as recorded. */
export interface RecordedSessionTransition {
  at: number;
  /** The peer's message type the session was taking, when a message moved it (else a timer or the application did). */
  event?: string;
  /** The innermost states it is in afterwards, as paths (`authed.paying`; several when parallel). */
  state: string[];
}

/** The connection's session machine in a recording. */
export interface RecordedSession {
  /** The machine's id. */
  machine: string;
  /** Its states and transitions (machineGraph), so that a replay can draw it. */
  graph?: MachineGraph;
  /** Its last transitions, oldest first; the first may be its initial state (no event). */
  transitions: RecordedSessionTransition[];
}

/** What the flight recorder kept of a connection: JSON data, written to a file with `saveRecording`. */
export interface FlightRecording {
  format: 'interprocess-converse.recording';
  version: 1;
  connection?: string;
  role?: 'client' | 'server';
  peer?: { pid?: number; uid?: number; gid?: number };
  /** When the recording was taken (ms since the epoch). */
  takenAt: number;
  /** Why the connection closed, when it closed on an error. */
  reason?: { code: string; message: string };
  /** Frames seen in all; only the last `frames.length` are kept. */
  framesSeen: number;
  frames: RecordedFrame[];
  transitions: RecordedTransition[];
  /** The session machine, when the connection had one. */
  session?: RecordedSession;
}

const KIND_NAMES: string[] = [];
for (const [name, value] of Object.entries(FrameKind)) KIND_NAMES[value] = name;
KIND_NAMES[KIND_UNDECODABLE] = 'UNDECODABLE';
KIND_NAMES[KIND_NOT_ENVELOPE] = 'NOT_ENVELOPE';
KIND_NAMES[KIND_UNKNOWN] = 'UNKNOWN_KIND';

/** A frame kind's name. */
export function kindName(kind: number): string {
  return KIND_NAMES[kind] ?? `KIND_${kind}`;
}

/** Kinds whose second element is an id. */
function hasId(kind: number): boolean {
  return kind !== FrameKind.TELL && kind !== FrameKind.PING && kind !== FrameKind.PONG && kind !== FrameKind.GOODBYE && kind < 0x80;
}

export class FlightRecorder {
  /** Attached while messages are traced; undefined costs one branch a frame. */
  tracer: MessageTracer | undefined;
  /**
   * The frame ring, made at the first frame and doubled (from FIRST_RING frames) up to
   * `capacity`: a connection that says little holds little. Per frame three numbers: time,
   * kind bits × 2^32 + id, and size (only numbers are ever stored, so V8 keeps them unboxed).
   */
  private frames: number[] = NO_NUMBERS;
  /** The message type of each frame in the ring (same slots). */
  private types: Array<string | undefined> = NO_STRINGS;
  /** Frames the ring holds (its length); grows until `capacity`. */
  private ringLength = 0;
  private framesSeen = 0;
  /**
   * Lifecycle transitions, the last RECORDED_TRANSITIONS: times (unboxed numbers) and states in
   * the same slots, sized for a connection's usual four and doubled if there are more.
   */
  private transitionTimes: number[] = NO_NUMBERS;
  private transitionStates: string[] = NO_STRINGS as string[];
  private transitionsSeen = 0;
  /** Session transitions: allocated on the first one (most connections have no session). */
  private sessionTimes: Float64Array | undefined;
  private sessionEvents: Array<string | undefined> = NO_STRINGS;
  private sessionValues: unknown[] = NO_STRINGS;
  private sessionSeen = 0;

  constructor(readonly capacity: number = DEFAULT_RECORDED_FRAMES) {}

  /**
   * A frame body of `size` bytes arrived: `message` is what it decoded to, or undefined when it
   * could not be decoded. Anything a peer sends is recorded as it is, malformed or not.
   */
  frameIn(size: number, message: unknown, at: number = performance.now()): void {
    let kind = KIND_UNDECODABLE;
    let id = NO_ID;
    let type: unknown;
    if (message !== undefined) {
      if (Array.isArray(message) && typeof message[0] === 'number') {
        kind = message[0] >= 0 && message[0] < 0x80 && Number.isInteger(message[0]) ? message[0] : KIND_UNKNOWN;
        if (kind === FrameKind.TELL) type = (message[1] as { type?: unknown } | null)?.type;
        else if (hasId(kind)) {
          const second = message[1];
          if (typeof second === 'number' && second >= 0 && second < NO_ID && Number.isInteger(second)) id = second;
          if (kind === FrameKind.ASK) type = (message[2] as { type?: unknown } | null)?.type;
        }
      } else kind = KIND_NOT_ENVELOPE;
    }
    const known = typeof type === 'string' ? type : undefined;
    this.record(kind, id, known, size, at);
    if (this.tracer !== undefined) this.tracer.frame('in', kind, id, size, known, message);
  }

  /**
   * A frame is being written: bytes `start` … `end` of `buf` (length prefix, optional checksum,
   * body); `type` when the writer knows it. `at` is when (performance.now(); the writer stamps a
   * batch of frames once).
   */
  frameOut(buf: Buffer, start: number, end: number, checksum: boolean, type: string | undefined, at: number): void {
    const first = buf[start]!;
    let pos = start + (first <= LENGTH_INLINE_MAX ? 1 : first === LENGTH_U16 ? 3 : first === LENGTH_U32 ? 5 : 9);
    if (checksum) pos += CHECKSUM_SIZE;
    const size = end - pos;
    // The body is a MessagePack array: fixarray (0x9X) or array 16 (0xdc + 2 bytes).
    const header = buf[pos]!;
    pos += header === 0xdc ? 3 : 1;
    const kind = buf[pos]!; // kinds are positive fixints
    let id = NO_ID;
    if (hasId(kind)) {
      const marker = buf[pos + 1]!;
      if (marker < 0x80) id = marker;
      else if (marker === 0xcc) id = buf[pos + 2]!;
      else if (marker === 0xcd) id = buf.readUInt16BE(pos + 2);
      else if (marker === 0xce) id = buf.readUInt32BE(pos + 2);
    }
    this.record(kind | DIRECTION_OUT, id, type, size, at);
    if (this.tracer !== undefined) this.tracer.frame('out', kind, id, size, type, buf.subarray(end - size, end));
  }

  /** The connection's lifecycle moved to `state`. */
  transition(state: string): void {
    const seen = this.transitionsSeen;
    if (seen === this.transitionTimes.length && seen < RECORDED_TRANSITIONS) {
      // Grown by copying into arrays made at their size (a push would reserve 16 more slots).
      const length = Math.min(RECORDED_TRANSITIONS, Math.max(FIRST_TRANSITIONS, seen * 2));
      const times = new Array<number>(length).fill(0.5);
      const states = new Array<string>(length).fill('');
      for (let i = 0; i < seen; i++) {
        times[i] = this.transitionTimes[i]!;
        states[i] = this.transitionStates[i]!;
      }
      this.transitionTimes = times;
      this.transitionStates = states;
    }
    const slot = seen % RECORDED_TRANSITIONS;
    this.transitionTimes[slot] = performance.now();
    this.transitionStates[slot] = state;
    this.transitionsSeen = seen + 1;
    if (this.tracer !== undefined) this.tracer.state(state);
  }

  /** The session machine moved to `value` (a state value, kept by reference), taking `event` when a peer's message moved it. */
  sessionState(event: string | undefined, value: unknown): void {
    if (this.sessionTimes === undefined) {
      this.sessionTimes = new Float64Array(RECORDED_SESSION_TRANSITIONS);
      this.sessionEvents = [];
      this.sessionValues = [];
    }
    const times = this.sessionTimes;
    const slot = this.sessionSeen % RECORDED_SESSION_TRANSITIONS;
    times[slot] = performance.now();
    this.sessionEvents[slot] = event;
    this.sessionValues[slot] = value;
    this.sessionSeen++;
  }

  /** The session's recorded transitions, oldest first (`at` in ms since the epoch; `value` the state value). */
  sessionTransitions(): Array<{ at: number; event: string | undefined; value: unknown }> {
    const out: Array<{ at: number; event: string | undefined; value: unknown }> = [];
    const times = this.sessionTimes;
    if (times === undefined) return out;
    const kept = Math.min(this.sessionSeen, RECORDED_SESSION_TRANSITIONS);
    for (let n = this.sessionSeen - kept; n < this.sessionSeen; n++) {
      const slot = n % RECORDED_SESSION_TRANSITIONS;
      out.push({ at: performance.timeOrigin + times[slot]!, event: this.sessionEvents[slot], value: this.sessionValues[slot] });
    }
    return out;
  }

  private record(kind: number, id: number, type: string | undefined, size: number, at: number): void {
    if (this.framesSeen === this.ringLength) {
      if (this.ringLength === this.capacity) {
        if (this.capacity === 0) return;
      } else this.grow();
    }
    const slot = this.framesSeen % this.ringLength;
    const base = 3 * slot;
    const frames = this.frames;
    frames[base] = at;
    frames[base + 1] = kind * 0x1_0000_0000 + id;
    frames[base + 2] = size;
    this.types[slot] = type;
    this.framesSeen++;
  }

  /** The ring is full but may hold more: double it (frames keep their slots, as none wrapped yet). */
  private grow(): void {
    const length = Math.min(this.capacity, Math.max(FIRST_RING, this.ringLength * 2));
    // Filled with doubles first, so the array's elements are unboxed numbers from the start.
    const frames = new Array<number>(3 * length).fill(0.5);
    for (let i = 0; i < 3 * length; i++) frames[i] = i < this.frames.length ? this.frames[i]! : 0;
    const types = new Array<string | undefined>(length).fill(undefined);
    for (let i = 0; i < this.ringLength; i++) types[i] = this.types[i];
    this.frames = frames;
    this.types = types;
    this.ringLength = length;
  }

  /** What was recorded, oldest first, as JSON data. */
  recording(
    about: Pick<FlightRecording, 'connection' | 'role' | 'peer'> & { reason?: { code: string; message: string } | undefined; session?: RecordedSession | undefined } = {},
  ): FlightRecording {
    const origin = performance.timeOrigin;
    const frames: RecordedFrame[] = [];
    const kept = Math.min(this.framesSeen, this.ringLength);
    for (let n = this.framesSeen - kept; n < this.framesSeen; n++) {
      const slot = n % this.ringLength;
      const packed = this.frames[3 * slot + 1]!;
      const bits = Math.floor(packed / 0x1_0000_0000);
      const id = packed - bits * 0x1_0000_0000;
      const out = (bits & DIRECTION_OUT) !== 0 && bits < KIND_UNKNOWN;
      const frame: RecordedFrame = { at: origin + this.frames[3 * slot]!, dir: out ? 'out' : 'in', kind: kindName(out ? bits & 0x7f : bits), size: this.frames[3 * slot + 2]! };
      if (id !== NO_ID) frame.id = id;
      const type = this.types[slot];
      if (type !== undefined) frame.type = type;
      frames.push(frame);
    }
    nameAnswers(frames);
    const transitions: RecordedTransition[] = [];
    const keptTransitions = Math.min(this.transitionsSeen, RECORDED_TRANSITIONS);
    for (let n = this.transitionsSeen - keptTransitions; n < this.transitionsSeen; n++) {
      const slot = n % RECORDED_TRANSITIONS;
      transitions.push({ at: origin + this.transitionTimes[slot]!, state: this.transitionStates[slot]! });
    }
    const recording: FlightRecording = { format: 'interprocess-converse.recording', version: 1, takenAt: origin + performance.now(), framesSeen: this.framesSeen, frames, transitions };
    if (about.connection !== undefined) recording.connection = about.connection;
    if (about.role !== undefined) recording.role = about.role;
    if (about.peer !== undefined) recording.peer = { ...about.peer };
    if (about.reason !== undefined) recording.reason = { code: about.reason.code, message: about.reason.message };
    if (about.session !== undefined) recording.session = about.session;
    return recording;
  }
}

/** Frames that answer an ask (REPLY, ERROR, CANCEL, STREAM_*, CREDIT) get the ask's type, when the ask is still in the recording. */
function nameAnswers(frames: RecordedFrame[]): void {
  const asked: Record<'in' | 'out', Map<number, string>> = { in: new Map(), out: new Map() };
  for (const frame of frames) {
    if (frame.id === undefined) continue;
    if (frame.kind === 'ASK') {
      if (frame.type !== undefined) asked[frame.dir].set(frame.id, frame.type);
      continue;
    }
    if (frame.type !== undefined) continue;
    // A REPLY we send answers the peer's ASK; a CANCEL or CREDIT we send is about our own ASK.
    const ownAsk = frame.kind === 'CANCEL' || frame.kind === 'CREDIT' ? frame.dir : frame.dir === 'in' ? 'out' : 'in';
    const type = asked[ownAsk].get(frame.id);
    if (type !== undefined) frame.type = type;
  }
}
