import { encodeValue } from '../wire/codec.js';
import type { ConformanceCase } from './runner.js';
import { describeJs, differs } from './typed-value.js';
import { valueVectors } from './vectors.js';
import { fail, handshakeBytes, type WirePeer } from './wire-peer.js';

/**
 * Cases for a CLIENT implementation: the kit listens, the client under test connects, and the
 * kit plays the server. Besides answering `echo`, the client serves the driver message types of
 * docs/CONFORMANCE.md (conformance.ask, .stream, .tell, .cancel, .close), through which the kit
 * makes it ask, stream, tell, cancel and close.
 */

export interface ClientContext {
  /** The socket name the client was given. */
  name: string;
  timeout: number;
  /** The next connection the client makes (started for this case). */
  accept(): Promise<WirePeer>;
  /** Resolves with the client process's exit status. */
  exited: Promise<number | null>;
  /** The client's recent stdout and stderr, for failure reports. */
  output(): string;
  handedOut: WirePeer[];
}

const MiB = 1024 * 1024;

/** Accept the client, read its HELLO, answer WELCOME (checksum and limit as given). */
async function welcomed(ctx: ClientContext, options: { checksum?: boolean; maxMessageSize?: number } = {}): Promise<WirePeer> {
  const peer = await ctx.accept();
  const hello = await peer.readHandshake(ctx.timeout);
  if (hello.kind !== 1) fail(`expected HELLO (kind 1), got kind ${hello.kind}`);
  const checksum = options.checksum === true || (hello.flags & 1) === 1;
  peer.write(handshakeBytes({ kind: 2, flags: checksum ? 1 : 0, maxMessageSize: options.maxMessageSize ?? MiB }));
  peer.checksum = checksum;
  return peer;
}

function envelopeOf(value: unknown): unknown[] {
  if (!Array.isArray(value)) fail(`expected an envelope (an array), got ${describeJs(value)}`);
  return value;
}

/** The next frame from the client (PINGs answered on the way). */
async function next(peer: WirePeer, ctx: ClientContext, what: string): Promise<unknown[]> {
  return envelopeOf((await peer.nextMessage(ctx.timeout, what)).value);
}

/** The client's answer to the kit's ASK `id`: its REPLY value (fails on anything else). */
async function replyTo(peer: WirePeer, ctx: ClientContext, id: number): Promise<unknown> {
  const got = await next(peer, ctx, `the client's REPLY to ASK ${id}`);
  if (got[0] !== 2 || got[1] !== id) fail(`expected REPLY [2, ${id}, …], got ${describeJs(got)}`);
  if (got.length !== 3) fail(`a REPLY must have exactly 3 elements, got ${got.length}`);
  return got[2];
}

/** The client's own ASK: [1, id, event] (and the options map for a stream). */
async function clientAsk(peer: WirePeer, ctx: ClientContext, expectedType: string): Promise<{ id: number; event: Record<string, unknown>; options: unknown }> {
  const got = await next(peer, ctx, `the client's ASK of "${expectedType}"`);
  if (got[0] !== 1) fail(`expected the client's ASK [1, id, {type: "${expectedType}", …}], got ${describeJs(got)}`);
  const id = got[1];
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff) fail(`an ASK's id must be an integer in 0 … 2^32−1, got ${describeJs(id)}`);
  if (got.length !== 3 && got.length !== 4) fail(`an ASK has 3 or 4 elements, got ${got.length}`);
  const event = got[2] as Record<string, unknown>;
  if (typeof event !== 'object' || event === null || event.type !== expectedType) fail(`expected an event of type "${expectedType}", got ${describeJs(event)}`);
  return { id, event, options: got[3] };
}

/** The driver's result map: {ok: value} or {error: code}. */
function result(value: unknown): { ok?: unknown; error?: unknown } {
  if (typeof value !== 'object' || value === null || !('ok' in value || 'error' in value)) fail(`a driver reply must be {ok: …} or {error: code}, got ${describeJs(value)}`);
  return value as { ok?: unknown; error?: unknown };
}

async function expectClosedSilently(peer: WirePeer, ctx: ClientContext, after: string): Promise<void> {
  await peer.expectEnd(ctx.timeout, `the client to close the connection after ${after}`);
  if (peer.pending > 0) fail(`after ${after} the client sent ${peer.pending} bytes (${describeJs(peer.pending)}) before closing; it must close without sending a frame`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const clientCases: Array<ConformanceCase<ClientContext>> = [
  {
    id: 'C1',
    section: '3.2',
    title: 'the client opens with a HELLO of version 1 and sends nothing more before the WELCOME',
    async run(ctx) {
      const peer = await ctx.accept();
      const hello = await peer.readHandshake(ctx.timeout);
      if (hello.kind !== 1) fail(`expected HELLO (kind 1), got kind ${hello.kind}`);
      if (hello.version !== 1) fail(`the HELLO says version ${hello.version}, expected 1`);
      if ((hello.flags & 0xfe) !== 0) fail(`reserved flag bits are set: 0x${hello.flags.toString(16)}`);
      if (hello.maxMessageSize < 256) fail(`the HELLO declares maxMessageSize ${hello.maxMessageSize}, below 256`);
      await peer.expectSilence(300, 'the client must wait for the WELCOME before sending frames');
    },
  },
  {
    id: 'C2',
    section: '5',
    title: 'the client answers echo with the same meaning for every value of the test vectors',
    async run(ctx) {
      const peer = await welcomed(ctx);
      const vectors = valueVectors().filter((v) => v.error === undefined);
      const problems: string[] = [];
      for (let i = 0; i < vectors.length; i++) {
        const vector = vectors[i]!;
        const head = encodeValue([1, i]);
        const body = Buffer.concat([Buffer.of(0x93), head.subarray(1), Buffer.of(0x82), encodeValue('type'), encodeValue('echo'), encodeValue('value'), Buffer.from(vector.hex, 'hex')]);
        peer.sendBody(body);
        const problem = differs(await replyTo(peer, ctx, i), vector.value!);
        if (problem) problems.push(`${vector.name}: ${problem}`);
      }
      if (problems.length > 0) fail(`${problems.length} of ${vectors.length} values came back different:\n${problems.join('\n')}`);
    },
  },
  {
    id: 'C3',
    section: '6.6',
    title: 'a PING is answered with a PONG',
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.send([6]);
      const got = envelopeOf((await peer.nextFrame(ctx.timeout, 'PONG')).value);
      if (got.length !== 1 || got[0] !== 7) fail(`expected PONG [7], got ${describeJs(got)}`);
    },
  },
  {
    id: 'C4',
    section: '6.4',
    title: 'an ASK of a type the client does not serve is answered with ERROR NO_HANDLER',
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.send([1, 1, { type: 'conformance-no-such-type' }]);
      const got = await next(peer, ctx, 'ERROR 1');
      if (got[0] !== 3 || got[1] !== 1 || got.length !== 3) fail(`expected ERROR [3, 1, {code: "NO_HANDLER", …}], got ${describeJs(got)}`);
      const payload = got[2] as Record<string, unknown>;
      if (payload?.code !== 'NO_HANDLER' || typeof payload.message !== 'string') fail(`expected {code: "NO_HANDLER", message}, got ${describeJs(payload)}`);
    },
  },
  {
    id: 'C5',
    section: '6.3',
    title: "the client's ASK is [1, id, event] with a u32 id, and the REPLY with that id resolves it",
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.send([1, 2, { type: 'conformance.ask', event: { type: 'echo', value: { n: 2 ** 40 } } }]);
      const ask = await clientAsk(peer, ctx, 'echo');
      if (ask.options !== undefined) fail(`a plain ask has 3 elements; got an options element ${describeJs(ask.options)}`);
      peer.send([2, ask.id, ask.event.value]);
      const problem = differs(result(await replyTo(peer, ctx, 2)).ok, { map: [['n', { int: String(2 ** 40) }]] }, 'ok');
      if (problem) fail(problem);
    },
  },
  {
    id: 'C6',
    section: '6.2',
    title: 'two outstanding asks get distinct ids, and replies in the other order reach the right asker',
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.send([1, 3, { type: 'conformance.ask', event: { type: 'echo', value: 'first' } }]);
      const first = await clientAsk(peer, ctx, 'echo');
      peer.send([1, 4, { type: 'conformance.ask', event: { type: 'echo', value: 'second' } }]);
      const second = await clientAsk(peer, ctx, 'echo');
      if (first.id === second.id) fail(`both outstanding asks use id ${first.id}`);
      peer.send([2, second.id, 'second']);
      peer.send([2, first.id, 'first']);
      const answers = new Map<unknown, unknown>();
      for (let i = 0; i < 2; i++) {
        const got = await next(peer, ctx, 'the driver replies');
        if (got[0] !== 2) fail(`expected a REPLY, got ${describeJs(got)}`);
        answers.set(got[1], result(got[2]).ok);
      }
      if (answers.get(3) !== 'first' || answers.get(4) !== 'second') fail(`the replies reached the wrong asks: ${describeJs([...answers])}`);
    },
  },
  {
    id: 'C7',
    section: '6.2',
    title: 'an answer whose id is not outstanding is dropped',
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.send([1, 5, { type: 'conformance.ask', event: { type: 'echo', value: 'right' } }]);
      const ask = await clientAsk(peer, ctx, 'echo');
      const other = (ask.id + 1000) % 2 ** 32;
      peer.send([2, other, 'wrong']);
      peer.send([3, other, { code: 'REMOTE_ERROR', message: 'wrong' }]);
      peer.send([2, ask.id, 'right']);
      const answer = result(await replyTo(peer, ctx, 5));
      if (answer.ok !== 'right') fail(`expected {ok: "right"}, got ${describeJs(answer)}`);
    },
  },
  {
    id: 'C8',
    section: '6.4',
    title: "an ERROR answer fails the client's ask with its code",
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.send([1, 6, { type: 'conformance.ask', event: { type: 'missing' } }]);
      const ask = await clientAsk(peer, ctx, 'missing');
      peer.send([3, ask.id, { code: 'NO_HANDLER', message: 'no handler for "missing"' }]);
      const answer = result(await replyTo(peer, ctx, 6));
      if (answer.error !== 'NO_HANDLER') fail(`expected {error: "NO_HANDLER"}, got ${describeJs(answer)}`);
    },
  },
  {
    id: 'C9',
    section: '6.7',
    title: 'a streaming ask carries {stream: window} and grants positive integer CREDITs as it consumes',
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.send([1, 7, { type: 'conformance.stream', event: { type: 'count', n: 6 }, window: 2 }]);
      const ask = await clientAsk(peer, ctx, 'count');
      const options = ask.options as Record<string, unknown> | undefined;
      if (typeof options !== 'object' || options === null || options.stream !== 2) fail(`expected the options element {stream: 2}, got ${describeJs(options)}`);
      let credit = 2;
      let sent = 0;
      while (sent < 6) {
        while (credit > 0 && sent < 6) {
          peer.send([8, ask.id, sent++]);
          credit--;
        }
        if (sent === 6) break;
        const got = await next(peer, ctx, `a CREDIT after ${sent} items`);
        if (got[0] !== 10 || got[1] !== ask.id) fail(`expected CREDIT [10, ${ask.id}, n], got ${describeJs(got)}`);
        if (got.length !== 3 || typeof got[2] !== 'number' || !Number.isInteger(got[2]) || got[2] < 1) fail(`a CREDIT's n must be a positive integer, got ${describeJs(got)}`);
        credit += got[2];
      }
      peer.send([9, ask.id]);
      // Trailing CREDITs for the finished stream may arrive before the driver's reply.
      for (;;) {
        const got = await next(peer, ctx, 'the driver reply');
        if (got[0] === 10) continue;
        if (got[0] !== 2 || got[1] !== 7) fail(`expected REPLY [2, 7, …], got ${describeJs(got)}`);
        const problem = differs(result(got[2]).ok, { array: [0, 1, 2, 3, 4, 5].map((n) => ({ int: String(n) })) }, 'ok');
        if (problem) fail(problem);
        return;
      }
    },
  },
  {
    id: 'C10',
    section: '6.7',
    title: 'a REPLY to a streaming ask is a stream of that one item',
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.send([1, 8, { type: 'conformance.stream', event: { type: 'single' }, window: 4 }]);
      const ask = await clientAsk(peer, ctx, 'single');
      peer.send([2, ask.id, 'only']);
      const problem = differs(result(await replyTo(peer, ctx, 8)).ok, { array: ['only'] }, 'ok');
      if (problem) fail(problem);
    },
  },
  {
    id: 'C11',
    section: '6.5',
    title: 'a cancelled ask sends [4, id], and a late answer for it is dropped',
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.send([1, 9, { type: 'conformance.cancel', event: { type: 'sleep', ms: 10_000 }, after: 100 }]);
      const ask = await clientAsk(peer, ctx, 'sleep');
      const cancel = await next(peer, ctx, 'CANCEL');
      if (cancel[0] !== 4 || cancel[1] !== ask.id || cancel.length !== 2) fail(`expected CANCEL [4, ${ask.id}], got ${describeJs(cancel)}`);
      peer.send([2, ask.id, 'too late']);
      const answer = result(await replyTo(peer, ctx, 9));
      if (answer.ok !== undefined && answer.ok !== null) fail(`the cancelled ask must not resolve with the late answer, got ${describeJs(answer)}`);
      peer.send([1, 10, { type: 'echo', value: 'still fine' }]);
      if ((await replyTo(peer, ctx, 10)) !== 'still fine') fail('the echo after the cancel did not match');
    },
  },
  {
    id: 'C12',
    section: '6.3',
    title: 'a TELL is [0, event], without an id',
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.send([1, 11, { type: 'conformance.tell', event: { type: 'note', text: 'hi' } }]);
      const got = await next(peer, ctx, 'the TELL');
      if (got[0] !== 0 || got.length !== 2) fail(`expected TELL [0, {type: "note", text: "hi"}], got ${describeJs(got)}`);
      const problem = differs(got[1], { map: [['type', 'note'], ['text', 'hi']] }, 'event');
      if (problem) fail(problem);
      await replyTo(peer, ctx, 11);
    },
  },
  {
    id: 'C13',
    section: '3.3',
    title: 'checksums switched on by the server: every frame of the client carries the right CRC-32',
    async run(ctx) {
      const peer = await welcomed(ctx, { checksum: true });
      peer.send([1, 12, { type: 'echo', value: 'checked' }]);
      if ((await replyTo(peer, ctx, 12)) !== 'checked') fail('the echo did not match'); // nextFrame checks the CRC
    },
  },
  {
    id: 'C14',
    section: '4.2',
    title: 'a frame with a wrong CRC-32 makes the client close the connection',
    async run(ctx) {
      const peer = await welcomed(ctx, { checksum: true });
      const body = encodeValue([1, 13, { type: 'echo', value: 1 }]);
      peer.write(Buffer.concat([Buffer.of(body.length, 0xde, 0xad, 0xbe, 0xef), body]));
      await expectClosedSilently(peer, ctx, 'a bad CRC');
    },
  },
  {
    id: 'C15',
    section: '3.3',
    title: "the client never sends a body above the server's maxMessageSize (256 here): it refuses locally",
    async run(ctx) {
      const peer = await welcomed(ctx, { maxMessageSize: 256 });
      peer.send([1, 14, { type: 'conformance.ask', event: { type: 'echo', value: 'x'.repeat(1000) } }]);
      const got = await next(peer, ctx, 'the driver reply');
      if (got[0] !== 2 || got[1] !== 14) fail(`expected the driver REPLY [2, 14, {error: "MESSAGE_TOO_LARGE"}], got ${describeJs(got).slice(0, 80)}`);
      const answer = result(got[2]);
      if (answer.error !== 'MESSAGE_TOO_LARGE') fail(`expected {error: "MESSAGE_TOO_LARGE"}, got ${describeJs(answer)}`);
    },
  },
  {
    id: 'C16',
    section: '3.5',
    title: 'after a REJECT the client closes the connection without sending a frame',
    async run(ctx) {
      const peer = await ctx.accept();
      await peer.readHandshake(ctx.timeout);
      peer.write(handshakeBytes({ kind: 3, extension: encodeValue({ code: 'SERVER_FULL', message: 'the server is full' }) }));
      await expectClosedSilently(peer, ctx, 'a REJECT SERVER_FULL');
    },
  },
  {
    id: 'C17',
    section: '3.4',
    title: 'a WELCOME of version 2 makes the client close without sending a frame',
    async run(ctx) {
      const peer = await ctx.accept();
      await peer.readHandshake(ctx.timeout);
      peer.write(handshakeBytes({ kind: 2, version: 2 }));
      await expectClosedSilently(peer, ctx, 'a WELCOME of version 2');
    },
  },
  {
    id: 'C18',
    section: '7.1',
    title: "the server's GOODBYE is answered with GOODBYE and the end of the client's direction",
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.send([5]);
      const got = await next(peer, ctx, "the client's GOODBYE");
      if (got.length !== 1 || got[0] !== 5) fail(`expected GOODBYE [5], got ${describeJs(got)}`);
      await peer.expectEnd(ctx.timeout, 'the client to end its direction after both GOODBYEs');
      peer.end();
    },
  },
  {
    id: 'C19',
    section: '7.1',
    title: 'a client closing on its own sends GOODBYE and ends its direction once it has the GOODBYE back',
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.send([1, 15, { type: 'conformance.close' }]);
      let goodbye = false;
      let replied = false;
      while (!goodbye) {
        const got = await next(peer, ctx, "the client's GOODBYE");
        if (got[0] === 2 && got[1] === 15) replied = true;
        else if (got.length === 1 && got[0] === 5) goodbye = true;
        else fail(`expected the driver REPLY and GOODBYE [5], got ${describeJs(got)}`);
      }
      if (!replied) fail('the client must answer conformance.close (its REPLY) before its GOODBYE');
      await sleep(100);
      if (peer.ended) fail('the client ended its direction before it had the GOODBYE back');
      peer.send([5]);
      await peer.expectEnd(ctx.timeout, 'the client to end its direction after both GOODBYEs');
      peer.end();
    },
  },
  {
    id: 'C20',
    section: '5.3',
    title: 'a value nested 101 levels deep makes the client close the connection, unanswered',
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.sendBody(Buffer.concat([Buffer.from('930116', 'hex'), Buffer.from('82a474797065a46563686fa576616c7565', 'hex'), Buffer.alloc(101, 0x91), Buffer.of(1)]));
      await expectClosedSilently(peer, ctx, 'a value nested 101 levels deep');
    },
  },
  {
    id: 'C21',
    section: '6',
    title: 'an unknown frame kind makes the client close the connection',
    async run(ctx) {
      const peer = await welcomed(ctx);
      peer.sendBody(Buffer.from('910b', 'hex'));
      await expectClosedSilently(peer, ctx, 'frame kind 11');
    },
  },
];
