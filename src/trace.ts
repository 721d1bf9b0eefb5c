import diagnosticsChannel from 'node:diagnostics_channel';
import { kindName } from './connection/recorder.js';
import { ConverseError } from './errors.js';
import { terminalSafe } from './terminal-safe.js';
import { decodeBody } from './wire/codec.js';
import { FrameKind } from './wire/constants.js';

/**
 * The message trace, in the manner of vscode-jsonrpc's `trace` and `busctl monitor`: each frame
 * a connection sends or receives as one record (direction, kind, type, id, size, timing), with
 * field values only at `verbose`, passed through a `redact` hook first.
 *
 * The flight recorder (connection/recorder.ts) sees every frame; it hands one on to a tracer only
 * while one is attached, so a connection that is not traced pays a single branch a frame.
 */

export type TraceLevel = 'off' | 'messages' | 'verbose';

/** One traced frame. */
export interface TraceRecord {
  /** Milliseconds since the epoch. */
  at: number;
  /** The connection's id. */
  connection: string;
  /** `out`: this side sent it; `in`: it received it. */
  dir: 'in' | 'out';
  /** TELL, ASK, REPLY, ERROR, CANCEL, GOODBYE, PING, PONG, STREAM_ITEM, STREAM_END, CREDIT, … */
  kind: string;
  id?: number;
  /** The message type; for answers (REPLY, ERROR, STREAM_*, CANCEL, CREDIT), the type of their ask. */
  type?: string;
  /** Body size in bytes. */
  size: number;
  /** For a REPLY, ERROR or STREAM_END: milliseconds since its ask went the other way. */
  elapsed?: number;
  /** `verbose` only: the message's fields (without `type`), the reply value, or the error, after `redact`. */
  fields?: unknown;
}

/** What `redact` is given: return the value to show in place of `fields`. */
export interface RedactInput {
  kind: string;
  type: string | undefined;
  fields: unknown;
}

/** `trace` as an object: the level, a redact hook and where the lines go. */
export interface TraceOptions {
  level: TraceLevel;
  /**
   * Called (at `verbose`) with each message's fields before they are shown: return what to show
   * instead (drop or mask secrets). A hook that throws hides the fields.
   */
  redact?: (input: RedactInput) => unknown;
  /**
   * Where each record goes. @default a line on stderr (`formatTraceRecord`, peer text neutralised)
   */
  log?: (record: TraceRecord) => void;
}

export type TraceOption = TraceLevel | TraceOptions;

/** A record's consumer. */
export type TraceSink = (record: TraceRecord) => void;

/** Every traced record is also published here (`{ record }`), for tools that subscribe by name. */
export const messageChannel = diagnosticsChannel.channel('interprocess-converse:message');

/** Asks remembered for timing their answers, per direction, at most. */
const MAX_TIMED_ASKS = 4096;

/** Checks a `trace` option; returns it as an object, or undefined when tracing is off. */
export function resolveTrace(option: TraceOption | undefined): TraceOptions | undefined {
  if (option === undefined || option === 'off') return undefined;
  const options = typeof option === 'string' ? { level: option } : option;
  if (typeof options !== 'object' || options === null || (options.level !== 'off' && options.level !== 'messages' && options.level !== 'verbose')) {
    throw new ConverseError('INVALID_ARGUMENT', `trace must be 'off', 'messages', 'verbose' or { level, redact?, log? } (got ${String(option)}).`);
  }
  if (options.redact !== undefined && typeof options.redact !== 'function') throw new ConverseError('INVALID_ARGUMENT', 'trace.redact must be a function.');
  if (options.log !== undefined && typeof options.log !== 'function') throw new ConverseError('INVALID_ARGUMENT', 'trace.log must be a function.');
  return options.level === 'off' ? undefined : options;
}

/** The default sink: one line on stderr, every peer string neutralised. */
export function stderrSink(record: TraceRecord): void {
  process.stderr.write(`${formatTraceRecord(record)}\n`);
}

/**
 * One connection's tracer. Sinks come from its own `trace` option and from whoever watches
 * messages (a `monitor --messages`); fields are read only when the level is `verbose`.
 */
export class MessageTracer {
  /** Our asks (out) and the peer's (in) by id, for the timing and type of their answers. */
  private readonly asks = { out: new Map<number, { type: string | undefined; at: number }>(), in: new Map<number, { type: string | undefined; at: number }>() };
  readonly sinks = new Set<TraceSink>();

  constructor(
    private readonly connectionId: () => string,
    readonly verbose: boolean,
    private readonly redact: TraceOptions['redact'],
  ) {}

  /** A frame went by: `type` when the recorder knows it; `body` is the decoded envelope (in) or the encoded body (out). */
  frame(dir: 'in' | 'out', kind: number, id: number, size: number, type: string | undefined, body: unknown): void {
    const now = performance.now();
    const record: TraceRecord = { at: performance.timeOrigin + now, connection: this.connectionId(), dir, kind: kindName(kind), size };
    if (type !== undefined) record.type = type;
    let envelope: unknown[] | undefined;
    if (this.verbose) {
      if (dir === 'in') envelope = Array.isArray(body) ? body : undefined;
      else {
        try {
          envelope = decodeBody(body as Buffer) as unknown[];
        } catch {
          envelope = undefined;
        }
      }
    }
    let event: Record<string, unknown> | undefined;
    if (kind === FrameKind.TELL || kind === FrameKind.ASK) {
      const candidate = envelope?.[kind === FrameKind.TELL ? 1 : 2];
      if (typeof candidate === 'object' && candidate !== null) {
        event = candidate as Record<string, unknown>;
      }
    }
    if (id !== 0xffffffff) {
      record.id = id;
      if (kind === FrameKind.ASK) {
        const asks = this.asks[dir];
        if (asks.size >= MAX_TIMED_ASKS) asks.delete(asks.keys().next().value!);
        asks.set(id, { type: record.type, at: now });
      } else {
        // A CANCEL or CREDIT is about the sender's own ask; a REPLY, ERROR or STREAM_* answers the other side's.
        const own = kind === FrameKind.CANCEL || kind === FrameKind.CREDIT;
        const asks = this.asks[own ? dir : dir === 'in' ? 'out' : 'in'];
        const ask = asks.get(id);
        if (ask !== undefined) {
          if (ask.type !== undefined) record.type = ask.type;
          const ends = kind === FrameKind.REPLY || kind === FrameKind.ERROR || kind === FrameKind.STREAM_END;
          if (ends) {
            record.elapsed = now - ask.at;
            asks.delete(id);
          } else if (kind === FrameKind.CANCEL) asks.delete(id);
        }
      }
    }
    if (this.verbose && envelope !== undefined) {
      let fields: unknown;
      if (event !== undefined) {
        const { type: _type, ...rest } = event;
        fields = rest;
      } else if (kind === FrameKind.REPLY || kind === FrameKind.ERROR || kind === FrameKind.STREAM_ITEM || kind === FrameKind.CREDIT) fields = envelope[2];
      if (fields !== undefined || kind === FrameKind.REPLY) {
        if (this.redact !== undefined) {
          try {
            fields = this.redact({ kind: record.kind, type: record.type, fields });
          } catch {
            fields = '[redact failed]';
          }
        }
        record.fields = fields;
      }
    }
    for (const sink of this.sinks) {
      try {
        sink(record);
      } catch {
        // A sink's failure is the sink's: the connection goes on.
      }
    }
    if (messageChannel.hasSubscribers) messageChannel.publish({ record });
  }

  /** A lifecycle transition (not traced as a message; the monitor shows states on its own). */
  state(_state: string): void {}
}

/**
 * A record as one terminal line, every peer-supplied string neutralised:
 * `08:01:34.120 V1StGXR8 → ASK #7 add 20 B {"a":1,"b":2}` /
 * `08:01:34.121 V1StGXR8 ← REPLY #7 add 4 B 0.51 ms 3`.
 */
export function formatTraceRecord(record: TraceRecord): string {
  const time = new Date(record.at).toISOString().slice(11, 23);
  const parts = [time, terminalSafe(record.connection.slice(0, 8)), record.dir === 'out' ? '→' : '←', terminalSafe(record.kind)];
  if (record.id !== undefined) parts.push(`#${record.id}`);
  if (record.type !== undefined) parts.push(terminalSafe(record.type));
  parts.push(`${record.size} B`);
  if (record.elapsed !== undefined) parts.push(`${record.elapsed.toFixed(2)} ms`);
  if (Object.hasOwn(record, 'fields')) parts.push(terminalSafe(showValue(record.fields)));
  return parts.join(' ');
}

/** Field values as compact JSON-like text, cut at 200 characters. */
export function showValue(value: unknown): string {
  let text: string;
  try {
    text =
      JSON.stringify(value, (_key, v: unknown) => {
        if (typeof v === 'bigint') return `${v}n`;
        if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), x]));
        if (v instanceof Set) return [...v];
        if (v instanceof Uint8Array) return `<${v.byteLength} bytes>`;
        if (typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
          return `<${(v as { data: unknown[] }).data.length} bytes>`;
        }
        return v;
      }) ?? 'undefined';
  } catch {
    text = '[unprintable]';
  }
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}
