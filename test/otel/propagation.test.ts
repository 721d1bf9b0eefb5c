/**
 * OpenTelemetry across processes (issue 15, Done-when): a span started in this (client) process
 * has a child span in the daemon process, over a real socket, each process with the SDK's
 * in-memory exporter; the daemon reports its spans on stdout.
 */
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { connect, type Connection } from '../../src/index.js';
import { cleanup, onCleanup, socketName } from '../helpers/cleanup.js';
import { startFixture, type Fixture } from '../helpers/fixture.js';
import { registerTestTracing, type SpanJson, type TestTracing } from '../helpers/otel.js';

let tracing: TestTracing;
beforeAll(() => {
  tracing = registerTestTracing();
});
afterAll(() => tracing.teardown());
afterEach(async () => {
  await cleanup();
  tracing.exporter.reset();
});

async function daemonAndClient(): Promise<{ daemon: Fixture; client: Connection }> {
  const name = socketName();
  const daemon = await startFixture('otel-daemon', [name]);
  const client = await connect(name, { handlers: { back: () => trace.getActiveSpan()?.spanContext().spanId } });
  onCleanup(() => client.destroy());
  return { daemon, client };
}

async function daemonSpans(daemon: Fixture): Promise<SpanJson[]> {
  return (await daemon.request({ op: 'spans' })).spans as SpanJson[];
}

function one(spans: SpanJson[], name: string, kind: SpanKind): SpanJson {
  const found = spans.filter((span) => span.name === name && span.kind === kind);
  expect(found, `${name} ${SpanKind[kind]} in ${JSON.stringify(spans.map((s) => [s.name, SpanKind[s.kind]]))}`).toHaveLength(1);
  return found[0]!;
}

it('a span started in the client process has a child span in the daemon process, and the handler runs inside it', async () => {
  const { daemon, client } = await daemonAndClient();
  const reply = (await tracing.tracer.startActiveSpan('client operation', async (span) => {
    try {
      return await client.ask({ type: 'work' });
    } finally {
      span.end();
    }
  })) as { before: string; after: string; back: string };

  const ours = tracing.spans();
  const theirs = await daemonSpans(daemon);
  const operation = one(ours, 'client operation', SpanKind.INTERNAL);
  const ask = one(ours, 'work', SpanKind.CLIENT);
  const served = one(theirs, 'work', SpanKind.SERVER);
  expect(ask.parentSpanId).toBe(operation.spanId);
  expect(served.traceId).toBe(operation.traceId);
  expect(served.parentSpanId).toBe(ask.spanId);
  expect(served.parentIsRemote).toBe(true);
  expect(ask.attributes).toEqual({
    'rpc.system': 'interprocess-converse',
    'rpc.method': 'work',
    'interprocess_converse.message.type': 'work',
    'interprocess_converse.connection.id': client.id,
    'interprocess_converse.outcome': 'ok',
  });
  expect(served.attributes).toMatchObject({ 'rpc.system': 'interprocess-converse', 'rpc.method': 'work', 'interprocess_converse.outcome': 'ok' });
  expect(served.attributes['interprocess_converse.connection.id']).toMatch(/^[\w-]{21}$/);
  expect(served.status.code).toBe(SpanStatusCode.UNSET);

  // The handler ran inside its span, before and after an await, and what it asked back continues the trace.
  expect(reply.before).toBe(served.spanId);
  expect(reply.after).toBe(served.spanId);
  const askBack = one(theirs, 'back', SpanKind.CLIENT);
  const servedBack = one(ours, 'back', SpanKind.SERVER);
  expect(askBack.parentSpanId).toBe(served.spanId);
  expect(servedBack.parentSpanId).toBe(askBack.spanId);
  expect(servedBack.traceId).toBe(operation.traceId);
  expect(reply.back).toBe(servedBack.spanId);
});

it('a handler that throws: both spans end with status ERROR and outcome REMOTE_ERROR', async () => {
  const { daemon, client } = await daemonAndClient();
  await expect(tracing.tracer.startActiveSpan('op', (span) => client.ask({ type: 'boom' }).finally(() => span.end()))).rejects.toMatchObject({ code: 'REMOTE_ERROR' });
  const ask = one(tracing.spans(), 'boom', SpanKind.CLIENT);
  const served = one(await daemonSpans(daemon), 'boom', SpanKind.SERVER);
  expect(served.parentSpanId).toBe(ask.spanId);
  for (const span of [ask, served]) {
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['interprocess_converse.outcome']).toBe('REMOTE_ERROR');
    expect(span.attributes['error.type']).toBe('REMOTE_ERROR');
    expect(span.events).toContain('exception');
  }
  expect(served.status.message).toBe('it went boom');
});

it('a streamed ask and a tell carry the trace too (the tell because both sides said they read it)', async () => {
  const { daemon, client } = await daemonAndClient();
  const items: unknown[] = [];
  await tracing.tracer.startActiveSpan('op', async (span) => {
    for await (const item of client.stream({ type: 'count', n: 3 })) items.push(item);
    await client.tell({ type: 'note' });
    span.end();
  });
  expect(items).toEqual([0, 1, 2]);
  const note = await daemon.waitFor((line) => line.event === 'note');
  const ours = tracing.spans();
  const theirs = await daemonSpans(daemon);
  const operation = one(ours, 'op', SpanKind.INTERNAL);
  const stream = one(ours, 'count', SpanKind.CLIENT);
  const produced = one(theirs, 'count', SpanKind.SERVER);
  expect(produced.parentSpanId).toBe(stream.spanId);
  expect(produced.traceId).toBe(operation.traceId);
  expect(produced.attributes['interprocess_converse.outcome']).toBe('ok');
  const told = one(ours, 'note', SpanKind.PRODUCER);
  const consumed = one(theirs, 'note', SpanKind.CONSUMER);
  expect(consumed.parentSpanId).toBe(told.spanId);
  expect(consumed.traceId).toBe(operation.traceId);
  expect(note.activeSpan).toBe(consumed.spanId);
});
