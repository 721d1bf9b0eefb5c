/**
 * Trace context on the wire (docs/PROTOCOL.md §6.9), seen by a hand-driven peer: nothing is sent
 * while no tracer provider is registered; with one, asks carry a valid traceparent and tells only
 * to a peer that said it reads them; a peer's malformed or oversized context is ignored, never
 * fails the ask.
 */
import { SpanKind, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, listen } from '../../src/index.js';
import { MAX_TRACESTATE_LENGTH, readCarrier } from '../../src/otel.js';
import { FrameKind } from '../../src/wire/constants.js';
import { encodeValue } from '../../src/wire/codec.js';
import { cleanup, onCleanup, socketName } from '../helpers/cleanup.js';
import { registerTestTracing, type TestTracing } from '../helpers/otel.js';
import { FrameReader, frame, handshakeBytes, parseHandshake, rawConnect, rawServer, type RawPeer } from '../helpers/raw.js';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const SPAN_ID = 'b7ad6b7169203331';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;

let tracing: TestTracing | undefined;
afterEach(async () => {
  await cleanup();
  await tracing?.teardown();
  tracing = undefined;
});

describe('readCarrier: a peer’s trace context is checked, and anything malformed is ignored', () => {
  it.each([
    ['a valid version-00 traceparent', { traceparent: TRACEPARENT }, { traceparent: TRACEPARENT }],
    ['with a tracestate', { traceparent: TRACEPARENT, tracestate: 'congo=t61rcWkgMzE' }, { traceparent: TRACEPARENT, tracestate: 'congo=t61rcWkgMzE' }],
    ['a later version with more fields (the first four are read)', { traceparent: `cc-${TRACE_ID}-${SPAN_ID}-01-what-the-future-holds` }, { traceparent: `cc-${TRACE_ID}-${SPAN_ID}-01` }],
    ['a tracestate over the limit is dropped, the traceparent kept', { traceparent: TRACEPARENT, tracestate: 'a=' + 'x'.repeat(MAX_TRACESTATE_LENGTH) }, { traceparent: TRACEPARENT }],
    ['a tracestate that is not a string is dropped', { traceparent: TRACEPARENT, tracestate: 7 }, { traceparent: TRACEPARENT }],
  ])('%s', (_name, options, expected) => {
    expect(readCarrier(options)).toEqual(expected);
  });

  it.each([
    ['no options', undefined],
    ['options that are not a map', 'traceparent'],
    ['no traceparent', { stream: 16 }],
    ['a traceparent that is not a string', { traceparent: 42 }],
    ['uppercase hex', { traceparent: TRACEPARENT.toUpperCase() }],
    ['version ff', { traceparent: `ff-${TRACE_ID}-${SPAN_ID}-01` }],
    ['version 00 with extra fields', { traceparent: `${TRACEPARENT}-00` }],
    ['an all-zero trace id', { traceparent: `00-${'0'.repeat(32)}-${SPAN_ID}-01` }],
    ['an all-zero span id', { traceparent: `00-${TRACE_ID}-${'0'.repeat(16)}-01` }],
    ['a short trace id', { traceparent: `00-${TRACE_ID.slice(2)}-${SPAN_ID}-01` }],
    ['a later version without a dash after the flags', { traceparent: `cc-${TRACE_ID}-${SPAN_ID}-01x` }],
    ['a very long traceparent', { traceparent: `cc-${TRACE_ID}-${SPAN_ID}-01-${'x'.repeat(10_000)}` }],
    ['garbage', { traceparent: 'not a traceparent at all, but 55 characters long, really' }],
  ])('%s', (_name, options) => {
    expect(readCarrier(options)).toBeUndefined();
  });
});

/** A raw server that welcomes (optionally saying it reads trace context) and collects envelopes. */
async function rawTracingPeer(name: string, welcomeExtension?: Record<string, unknown>): Promise<{ hello: Promise<Record<string, unknown> | undefined>; envelopes: unknown[][]; peer: Promise<RawPeer> }> {
  const envelopes: unknown[][] = [];
  let gotPeer!: (peer: RawPeer) => void;
  const peer = new Promise<RawPeer>((resolve) => (gotPeer = resolve));
  let gotHello!: (extension: Record<string, unknown> | undefined) => void;
  const hello = new Promise<Record<string, unknown> | undefined>((resolve) => (gotHello = resolve));
  await rawServer(name, (raw) => {
    gotPeer(raw);
    void raw.until((bytes) => parseHandshake(bytes)).then((parsed) => {
      gotHello(parsed!.extension);
      raw.write(handshakeBytes({ kind: 2, extension: welcomeExtension === undefined ? undefined : encodeValue(welcomeExtension) }));
      const reader = new FrameReader((envelope) => {
        envelopes.push(envelope);
        if (envelope[0] === FrameKind.ASK) raw.write(frame([FrameKind.REPLY, envelope[1], 'ok']));
      });
      let fed = parsed!.size;
      const feed = (): undefined => {
        if (raw.received.length > fed) {
          reader.push(raw.received.subarray(fed));
          fed = raw.received.length;
        }
        return undefined;
      };
      void raw.until(feed, 20_000).catch(() => {});
    });
  });
  return { hello, envelopes, peer };
}

describe('what a client sends', () => {
  it('with no tracer provider registered: no handshake key, asks and tells exactly as before', async () => {
    const name = socketName();
    const server = await rawTracingPeer(name, { traceContext: 1 });
    const client = await connect(name);
    onCleanup(() => client.destroy());
    expect(await server.hello).toBeUndefined();
    expect(await client.ask({ type: 'work', n: 1 })).toBe('ok');
    await client.tell({ type: 'note' });
    const stream = client.stream({ type: 'count' });
    void stream.next().catch(() => {});
    await expect.poll(() => server.envelopes.length, { timeout: 10_000 }).toBe(3);
    expect(server.envelopes).toEqual([
      [FrameKind.ASK, 0, { type: 'work', n: 1 }],
      [FrameKind.TELL, { type: 'note' }],
      [FrameKind.ASK, 1, { type: 'count' }, { stream: 16 }],
    ]);
    await stream.return!();
  });

  it('with a provider: the handshake says traceContext 1, asks carry the CLIENT span, tells only to a peer that reads them', async () => {
    tracing = registerTestTracing();
    const name = socketName();
    const server = await rawTracingPeer(name); // says nothing about trace context
    const client = await connect(name);
    onCleanup(() => client.destroy());
    expect(await server.hello).toEqual({ traceContext: 1 });
    await tracing.tracer.startActiveSpan('op', async (span) => {
      await client.ask({ type: 'work' });
      await client.tell({ type: 'note' });
      span.end();
    });
    await expect.poll(() => server.envelopes.length, { timeout: 10_000 }).toBe(2);
    const ask = tracing.spans().find((span) => span.name === 'work')!;
    expect(ask.kind).toBe(SpanKind.CLIENT);
    expect(server.envelopes[0]).toEqual([FrameKind.ASK, 0, { type: 'work' }, { traceparent: `00-${ask.traceId}-${ask.spanId}-01` }]);
    // This peer did not say it reads trace context on tells: a third element would be a protocol error to it.
    expect(server.envelopes[1]).toEqual([FrameKind.TELL, { type: 'note' }]);
    expect(tracing.spans().find((span) => span.name === 'note')!.kind).toBe(SpanKind.PRODUCER);
  });

  it('with a provider and a peer that reads trace context, a tell carries it as a third element', async () => {
    tracing = registerTestTracing();
    const name = socketName();
    const server = await rawTracingPeer(name, { traceContext: 1 });
    const client = await connect(name);
    onCleanup(() => client.destroy());
    await client.tell({ type: 'note' });
    await expect.poll(() => server.envelopes.length, { timeout: 10_000 }).toBe(1);
    const told = tracing.spans().find((span) => span.name === 'note')!;
    expect(server.envelopes[0]).toEqual([FrameKind.TELL, { type: 'note' }, { traceparent: `00-${told.traceId}-${told.spanId}-01` }]);
  });
});

describe('what a server makes of a peer’s trace context', () => {
  async function tracingServer(): Promise<{ raw: RawPeer; reader: FrameReader; welcome: Record<string, unknown> | undefined }> {
    const name = socketName();
    const server = await listen(name, {
      handlers: {
        work: () => trace.getActiveSpan()?.spanContext().spanId,
        note: () => {},
      },
    });
    onCleanup(() => server.close({ timeout: 1000 }));
    const raw = await rawConnect(name);
    raw.write(handshakeBytes({ kind: 1 }));
    const welcome = (await raw.until((bytes) => parseHandshake(bytes)))!;
    const reader = new FrameReader();
    let fed = welcome.size;
    void raw.until(() => {
      if (raw.received.length > fed) {
        reader.push(raw.received.subarray(fed));
        fed = raw.received.length;
      }
      return undefined;
    }, 20_000).catch(() => {});
    return { raw, reader, welcome: welcome.extension };
  }

  it('a malformed traceparent is ignored: the ask is answered, its span starts a new trace', async () => {
    tracing = registerTestTracing();
    const { raw, reader, welcome } = await tracingServer();
    expect(welcome).toEqual({ traceContext: 1 });
    raw.write(frame([FrameKind.ASK, 0, { type: 'work' }, { traceparent: `00-${TRACE_ID}-${SPAN_ID}-1`, tracestate: 'x'.repeat(100_000) }]));
    raw.write(frame([FrameKind.ASK, 1, { type: 'work' }, { traceparent: TRACEPARENT, tracestate: `a=${'x'.repeat(MAX_TRACESTATE_LENGTH)}` }]));
    raw.write(frame([FrameKind.ASK, 2, { type: 'work' }, { traceparent: TRACEPARENT, tracestate: 'congo=t61rcWkgMzE' }]));
    await expect.poll(() => reader.envelopes.length, { timeout: 10_000 }).toBe(3);
    const served = tracing.spans().filter((span) => span.name === 'work' && span.kind === SpanKind.SERVER);
    expect(served).toHaveLength(3);
    for (let i = 0; i < 3; i++) expect(reader.envelopes[i]).toEqual([FrameKind.REPLY, i, served[i]!.spanId]);
    expect(served[0]!.parentSpanId).toBeUndefined();
    expect(served[0]!.traceId).not.toBe(TRACE_ID);
    expect(served[1]!).toMatchObject({ traceId: TRACE_ID, parentSpanId: SPAN_ID, parentIsRemote: true });
    expect(served[2]!).toMatchObject({ traceId: TRACE_ID, parentSpanId: SPAN_ID });
    expect(tracing.exporter.getFinishedSpans()[1]!.parentSpanContext!.traceState).toBeUndefined(); // over the limit: dropped
    expect(tracing.exporter.getFinishedSpans()[2]!.parentSpanContext!.traceState!.get('congo')).toBe('t61rcWkgMzE');
  });

  it('a tracing server reads a TELL with trace context as a third element (it said so in its WELCOME)', async () => {
    tracing = registerTestTracing();
    const { raw, reader } = await tracingServer();
    raw.write(frame([FrameKind.TELL, { type: 'note' }, { traceparent: TRACEPARENT }]));
    raw.write(frame([FrameKind.TELL, { type: 'note' }, 'not a map']));
    raw.write(frame([FrameKind.ASK, 0, { type: 'work' }]));
    await expect.poll(() => reader.envelopes.length, { timeout: 10_000 }).toBe(1);
    const consumed = tracing.spans().filter((span) => span.name === 'note');
    expect(consumed.map((span) => [span.kind, span.parentSpanId])).toEqual([
      [SpanKind.CONSUMER, SPAN_ID],
      [SpanKind.CONSUMER, undefined],
    ]);
    expect(raw.isClosed).toBe(false);
  });

  it('a server that does not trace still closes on a TELL with a third element (PROTOCOL_ERROR, as version 1 says)', async () => {
    const { raw } = await tracingServer();
    raw.write(frame([FrameKind.TELL, { type: 'note' }, { traceparent: TRACEPARENT }]));
    await raw.closed;
  });
});
