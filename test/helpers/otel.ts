/**
 * OpenTelemetry for tests: the SDK's in-memory exporter behind a registered tracer provider, with
 * the AsyncLocalStorage context manager (what an application's SDK setup registers), and the
 * finished spans as plain JSON (a fixture process prints them on stdout).
 */
import { context, trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

export interface SpanJson {
  name: string;
  /** SpanKind: 0 INTERNAL, 1 SERVER, 2 CLIENT, 3 PRODUCER, 4 CONSUMER. */
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  parentIsRemote: boolean | undefined;
  attributes: Record<string, unknown>;
  /** 0 UNSET, 1 OK, 2 ERROR. */
  status: { code: number; message?: string };
  events: string[];
}

export interface TestTracing {
  exporter: InMemorySpanExporter;
  tracer: Tracer;
  spans(): SpanJson[];
  /** Unregister the provider and the context manager. */
  teardown(): Promise<void>;
}

export function registerTestTracing(): TestTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  return {
    exporter,
    tracer: trace.getTracer('test'),
    spans: () => exporter.getFinishedSpans().map(spanJson),
    teardown: async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}

export function spanJson(span: ReadableSpan): SpanJson {
  return {
    name: span.name,
    kind: span.kind,
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    parentIsRemote: span.parentSpanContext?.isRemote,
    attributes: { ...span.attributes },
    status: { ...span.status },
    events: span.events.map((event) => event.name),
  };
}
