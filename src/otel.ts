/**
 * OpenTelemetry, when the application has it: asks and tells made inside a span carry W3C trace
 * context (docs/PROTOCOL.md §6.9), handlers run inside the context they carried, and each ask,
 * tell and handler is a span (docs/OBSERVABILITY.md §10).
 *
 * `@opentelemetry/api` is an optional peer dependency, loaded with a dynamic import that may fail:
 * without it nothing here does anything. A connection decides once, when it is made, whether it
 * traces (`activeTracing()`: the API is loaded and a tracer provider is registered); one that does
 * not keeps `undefined` and pays one branch per message, never a call into OpenTelemetry.
 *
 * Only the types below leave this file, so the package's declarations never name OpenTelemetry's
 * (an application without it still type-checks).
 */

// The API's types, for this file only (erased at build; the module itself is imported lazily).
type Api = typeof import('@opentelemetry/api');
type OtelSpan = import('@opentelemetry/api').Span;
type OtelContext = import('@opentelemetry/api').Context;

/** Trace context as it travels: W3C `traceparent` and, when there is one, `tracestate`. */
export interface TraceCarrier {
  traceparent: string;
  tracestate?: string;
}

/** A span this library started; ends once, with the outcome. */
export interface TracedSpan {
  /** Trace context for the peer (outgoing spans only, when the span is sampled or not: it is valid). */
  readonly carrier: TraceCarrier | undefined;
  /** End with outcome `ok`. */
  ok(): void;
  /** End with an error: `code` is the outcome (an error code), `error` what was thrown, if anything. */
  fail(code: string, error?: unknown): void;
  /** End with outcome `CANCELLED`: this side stopped waiting on purpose (not an error). */
  cancelled(): void;
}

/** A handler's span and the context it runs in. */
export interface TracedHandler extends TracedSpan {
  /** Run `fn` inside the span's context (nested asks become its children). */
  run<T>(fn: () => T): T;
}

/** The bridge one tracing connection uses. */
export interface Tracing {
  /** A span around an ask (`CLIENT`) or a tell (`PRODUCER`) this side sends, child of the active context. */
  outgoing(kind: 'ask' | 'tell', type: string, connectionId: string | undefined): TracedSpan;
  /** A span around the handler of the peer's ask (`SERVER`) or tell (`CONSUMER`), child of `carrier` when it is valid. */
  incoming(kind: 'ask' | 'tell', type: string, connectionId: string | undefined, carrier: TraceCarrier | undefined): TracedHandler;
}

/** The longest `tracestate` kept (W3C: at most 32 members; implementations keep at least 512 characters). Longer ones are dropped. */
export const MAX_TRACESTATE_LENGTH = 512;
/** The longest `traceparent` read (version 00 is 55 characters; later versions may append fields). */
export const MAX_TRACEPARENT_LENGTH = 256;

/** `rpc.system`: what these spans are (OpenTelemetry RPC semantic conventions). */
export const RPC_SYSTEM = 'interprocess-converse';

const PACKAGE = '@opentelemetry/api';

/** How the API is imported (replaceable in tests, to see the branch where it is missing). */
export type Importer = (specifier: string) => Promise<unknown>;
const importModule: Importer = (specifier) => import(specifier);

let loading: Promise<void> | undefined;
let api: Api | undefined;
/** The API's no-op provider: a registered provider is any other delegate. */
let noopProvider: unknown;

/**
 * Load `@opentelemetry/api` if it can be imported (once per process; `listen` and `connect` wait
 * for it). Never rejects: when the package is missing, tracing stays off.
 */
export function loadOpenTelemetry(importer: Importer = importModule): Promise<void> {
  return (loading ??= importer(PACKAGE).then(
    (module) => {
      // The namespace (ESM, or CommonJS through Node's interop); a bundler may put it under `default`.
      const namespace = module as Partial<Api> & { default?: Partial<Api> };
      const candidate = typeof namespace.ProxyTracerProvider === 'function' ? namespace : (namespace.default ?? namespace);
      // Anything that is not the API we know (a stub, another major version) leaves tracing off.
      if (typeof candidate.trace?.getTracerProvider !== 'function' || typeof candidate.ProxyTracerProvider !== 'function' || typeof candidate.context?.with !== 'function') return;
      try {
        noopProvider = new candidate.ProxyTracerProvider().getDelegate();
        api = candidate as Api;
      } catch {
        // Not the API it claims to be: off, and listen/connect go on.
      }
    },
    () => {
      // Not installed (or not importable here): an optional integration, silently off.
    },
  ));
}

/** Forget what was loaded (tests only). */
export function resetOpenTelemetry(): void {
  loading = undefined;
  api = undefined;
  noopProvider = undefined;
}

/** Whether the API is loaded (tests and diagnostics). */
export function openTelemetryLoaded(): boolean {
  return api !== undefined;
}

/**
 * The bridge when tracing is on now: the API is loaded and the application registered a tracer
 * provider. Called once per connection, never per message.
 */
export function activeTracing(): Tracing | undefined {
  if (api === undefined) return undefined;
  const provider = api.trace.getTracerProvider() as { getDelegate?: () => unknown };
  if (typeof provider.getDelegate === 'function' && provider.getDelegate() === noopProvider) return undefined;
  // One per connection: its tracer is the provider registered now (an application may replace it).
  return new OtelBridge(api);
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-|$)/;

/**
 * A peer's trace context, checked (it is peer-controlled input): `traceparent` per W3C Trace
 * Context level 1 (version `ff` and all-zero ids refused; version 00 exactly 55 characters; a later
 * version's extra fields ignored), `tracestate` only up to MAX_TRACESTATE_LENGTH. Anything
 * malformed gives undefined: the message is handled without a remote parent, never refused.
 */
export function readCarrier(options: unknown): TraceCarrier | undefined {
  if (typeof options !== 'object' || options === null) return undefined;
  const { traceparent, tracestate } = options as { traceparent?: unknown; tracestate?: unknown };
  if (typeof traceparent !== 'string' || traceparent.length < 55 || traceparent.length > MAX_TRACEPARENT_LENGTH) return undefined;
  const match = TRACEPARENT.exec(traceparent);
  if (match === null) return undefined;
  const [, version, traceId, spanId] = match;
  if (version === 'ff' || (version === '00' && traceparent.length !== 55)) return undefined;
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return undefined;
  const carrier: TraceCarrier = { traceparent: version === '00' ? traceparent : traceparent.slice(0, 55) };
  if (typeof tracestate === 'string' && tracestate.length > 0 && tracestate.length <= MAX_TRACESTATE_LENGTH) carrier.tracestate = tracestate;
  return carrier;
}

class OtelBridge implements Tracing {
  private readonly tracer;

  constructor(private readonly otel: Api) {
    this.tracer = otel.trace.getTracer('interprocess-converse');
  }

  outgoing(kind: 'ask' | 'tell', type: string, connectionId: string | undefined): TracedSpan {
    const { trace, context, SpanKind } = this.otel;
    const span = this.tracer.startSpan(type, { kind: kind === 'ask' ? SpanKind.CLIENT : SpanKind.PRODUCER, attributes: attributes(type, connectionId) }, context.active());
    const spanContext = span.spanContext();
    let carrier: TraceCarrier | undefined;
    if (trace.isSpanContextValid(spanContext)) {
      const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
      carrier = { traceparent: `00-${spanContext.traceId}-${spanContext.spanId}-${flags}` };
      const state = spanContext.traceState?.serialize();
      if (state !== undefined && state.length > 0 && state.length <= MAX_TRACESTATE_LENGTH) carrier.tracestate = state;
    }
    return new Ending(this.otel, span, carrier);
  }

  incoming(kind: 'ask' | 'tell', type: string, connectionId: string | undefined, carrier: TraceCarrier | undefined): TracedHandler {
    const { trace, context, SpanKind, ROOT_CONTEXT } = this.otel;
    // The parent is the peer's span or nothing: never whatever context the socket happened to be made in.
    let parent: OtelContext = ROOT_CONTEXT;
    if (carrier !== undefined) {
      const [, traceId, spanId, flags] = carrier.traceparent.split('-') as [string, string, string, string];
      parent = trace.setSpanContext(ROOT_CONTEXT, {
        traceId,
        spanId,
        traceFlags: Number.parseInt(flags, 16) & 0xff,
        isRemote: true,
        traceState: carrier.tracestate !== undefined && typeof this.otel.createTraceState === 'function' ? this.otel.createTraceState(carrier.tracestate) : undefined,
      });
    }
    const span = this.tracer.startSpan(type, { kind: kind === 'ask' ? SpanKind.SERVER : SpanKind.CONSUMER, attributes: attributes(type, connectionId) }, parent);
    return new Handling(this.otel, span, trace.setSpan(parent, span), context);
  }
}

function attributes(type: string, connectionId: string | undefined): Record<string, string> {
  const result: Record<string, string> = { 'rpc.system': RPC_SYSTEM, 'rpc.method': type, 'interprocess_converse.message.type': type };
  if (connectionId !== undefined) result['interprocess_converse.connection.id'] = connectionId;
  return result;
}

class Ending implements TracedSpan {
  private ended = false;

  constructor(
    private readonly otel: Api,
    private readonly span: OtelSpan,
    readonly carrier: TraceCarrier | undefined,
  ) {}

  ok(): void {
    if (this.ended) return;
    this.ended = true;
    this.span.setAttribute('interprocess_converse.outcome', 'ok');
    this.span.end();
  }

  cancelled(): void {
    if (this.ended) return;
    this.ended = true;
    this.span.setAttribute('interprocess_converse.outcome', 'CANCELLED');
    this.span.end();
  }

  fail(code: string, error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.span.setAttribute('interprocess_converse.outcome', code);
    this.span.setAttribute('error.type', code);
    if (error instanceof Error) this.span.recordException(error);
    this.span.setStatus({ code: this.otel.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : code });
    this.span.end();
  }
}

class Handling extends Ending implements TracedHandler {
  constructor(
    otel: Api,
    span: OtelSpan,
    private readonly inside: OtelContext,
    private readonly contexts: Api['context'],
  ) {
    super(otel, span, undefined);
  }

  run<T>(fn: () => T): T {
    return this.contexts.with(this.inside, fn);
  }
}

/** The outcome of a failure: its error code when it has one. */
export function outcomeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : 'ERROR';
}
