import { encodeValue } from '../wire/codec.js';
import type { ConformanceCase } from './runner.js';
import { describeJs, differs } from './typed-value.js';
import { envelopeVectors, valueVectors } from './vectors.js';
import { fail, handshakeBytes, WirePeer, type Frame } from './wire-peer.js';

/**
 * Cases for a SERVER implementation: the kit connects as a client and checks what the server
 * sends. The server under test must serve the conformance message types of docs/CONFORMANCE.md
 * (echo, fail, count, sleep, callback, note/notes).
 */

export interface ServerContext {
  /** The socket name the server listens on. */
  name: string;
  /** Time allowed for each expected reaction, in ms. */
  timeout: number;
  /** Raw connections opened by the case; closed after it. */
  peers: WirePeer[];
}

const MiB = 1024 * 1024;

async function open(ctx: ServerContext): Promise<WirePeer> {
  const peer = await WirePeer.connect(ctx.name, ctx.timeout);
  ctx.peers.push(peer);
  return peer;
}

/** Connect and complete the handshake (checksums as asked), checking the WELCOME. */
async function connected(ctx: ServerContext, options: { checksum?: boolean } = {}): Promise<{ peer: WirePeer; maxMessageSize: number }> {
  const peer = await open(ctx);
  peer.write(handshakeBytes({ kind: 1, flags: options.checksum ? 1 : 0, maxMessageSize: MiB }));
  const welcome = await peer.readHandshake(ctx.timeout);
  if (welcome.kind !== 2) fail(`expected WELCOME (kind 2), got kind ${welcome.kind}${welcome.extension ? ` ${describeJs(welcome.extension)}` : ''}`);
  if (welcome.version !== 1) fail(`the WELCOME says version ${welcome.version}, expected 1`);
  peer.checksum = (welcome.flags & 1) === 1;
  if (options.checksum && !peer.checksum) fail('the HELLO asked for checksums but the WELCOME has flag bit 0 clear');
  return { peer, maxMessageSize: welcome.maxMessageSize };
}

/** An ASK body `[1, id, {type, ...fields}]` whose `value` field is raw MessagePack bytes. */
function askWithRawValue(id: number, type: string, rawValue: Buffer): Buffer {
  const head = encodeValue([1, id]); // 92 01 <id>
  const map = Buffer.concat([Buffer.of(0x82), encodeValue('type'), encodeValue(type), encodeValue('value'), rawValue]);
  return Buffer.concat([Buffer.of(0x93), head.subarray(1), map]);
}

function envelope(frame: Frame): unknown[] {
  if (!Array.isArray(frame.value)) fail(`expected an envelope (an array), got ${describeJs(frame.value)}`);
  return frame.value;
}

/** The next frame, which must be `[kind, id, …]`. */
async function expectAnswer(peer: WirePeer, ctx: ServerContext, kind: number, id: number, what: string): Promise<unknown[]> {
  const got = envelope(await peer.nextMessage(ctx.timeout, what));
  if (got[0] !== kind || got[1] !== id) fail(`expected ${what} ([${kind}, ${id}, …]), got ${describeJs(got)}`);
  return got;
}

async function expectReply(peer: WirePeer, ctx: ServerContext, id: number): Promise<unknown> {
  const got = await expectAnswer(peer, ctx, 2, id, `REPLY ${id}`);
  if (got.length !== 3) fail(`a REPLY must have exactly 3 elements, got ${got.length}`);
  return got[2];
}

/** The connection must be closed by the server without any frame being sent first. */
async function expectClosedSilently(peer: WirePeer, ctx: ServerContext, after: string): Promise<void> {
  await peer.expectEnd(ctx.timeout, `the server to close the connection after ${after}`);
  if (peer.pending > 0) fail(`after ${after} the server sent ${peer.pending} bytes before closing; it must close without sending anything`);
}

/** The ERROR payload rules of §6.4. */
function checkErrorPayload(payload: unknown, code: string): Record<string, unknown> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) fail(`an ERROR payload must be a map, got ${describeJs(payload)}`);
  const p = payload as Record<string, unknown>;
  if (p.code !== code) fail(`expected ERROR code ${code}, got ${describeJs(p.code)}`);
  if (typeof p.message !== 'string') fail(`an ERROR must carry a string "message", got ${describeJs(p.message)}`);
  return p;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const serverCases: Array<ConformanceCase<ServerContext>> = [
  {
    id: 'S1',
    section: '3.2',
    title: 'a HELLO is answered with a WELCOME of version 1 (reserved flags 0, maxMessageSize ≥ 256, extension a map)',
    async run(ctx) {
      const peer = await open(ctx);
      peer.write(handshakeBytes({ kind: 1, maxMessageSize: MiB }));
      const welcome = await peer.readHandshake(ctx.timeout);
      if (welcome.kind !== 2) fail(`expected WELCOME (kind 2), got kind ${welcome.kind}`);
      if (welcome.version !== 1) fail(`the WELCOME says version ${welcome.version}, expected 1`);
      if ((welcome.flags & 0xfe) !== 0) fail(`reserved flag bits are set: 0x${welcome.flags.toString(16)}`);
      if (welcome.maxMessageSize < 256) fail(`the WELCOME declares maxMessageSize ${welcome.maxMessageSize}, below 256`);
    },
  },
  {
    id: 'S2',
    section: '3.3',
    title: 'checksums asked for in the HELLO are switched on, and frames then carry a correct CRC-32 both ways',
    async run(ctx) {
      const { peer } = await connected(ctx, { checksum: true });
      peer.send([1, 0, { type: 'echo', value: 'crc' }]);
      const value = await expectReply(peer, ctx, 0); // nextFrame checks the CRC
      if (value !== 'crc') fail(`expected the echo "crc", got ${describeJs(value)}`);
    },
  },
  {
    id: 'S3',
    section: '3.1',
    title: 'unknown handshake extension keys are ignored',
    async run(ctx) {
      const peer = await open(ctx);
      peer.write(handshakeBytes({ kind: 1, extension: encodeValue({ 'x-conformance': [1, 'two'], another: { nested: true } }) }));
      const welcome = await peer.readHandshake(ctx.timeout);
      if (welcome.kind !== 2) fail(`expected WELCOME, got kind ${welcome.kind} ${describeJs(welcome.extension)}`);
    },
  },
  {
    id: 'S4',
    section: '3.4',
    title: 'a HELLO of version 2 is answered with REJECT VERSION_MISMATCH (header version 1), then the server closes',
    async run(ctx) {
      const peer = await open(ctx);
      peer.write(handshakeBytes({ kind: 1, version: 2 }));
      const reject = await peer.readHandshake(ctx.timeout);
      if (reject.kind !== 3) fail(`expected REJECT (kind 3), got kind ${reject.kind}`);
      if (reject.version !== 1) fail(`the REJECT's version is ${reject.version}; it must be the server's own (1)`);
      if (reject.extension?.code !== 'VERSION_MISMATCH') fail(`expected code VERSION_MISMATCH, got ${describeJs(reject.extension)}`);
      if (typeof reject.extension.message !== 'string') fail('a REJECT must carry a string "message"');
      await expectClosedSilently(peer, ctx, 'the REJECT');
    },
  },
  {
    id: 'S5',
    section: '3.4',
    title: 'a foreign protocol (an HTTP request) is refused at the first byte: closed, nothing sent',
    async run(ctx) {
      const peer = await open(ctx);
      peer.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      await expectClosedSilently(peer, ctx, 'an HTTP request');
    },
  },
  {
    id: 'S6',
    section: '3.3',
    title: 'a HELLO declaring maxMessageSize 255 is refused: closed without WELCOME',
    async run(ctx) {
      const peer = await open(ctx);
      peer.write(handshakeBytes({ kind: 1, maxMessageSize: 255 }));
      await expectClosedSilently(peer, ctx, 'a HELLO with maxMessageSize 255');
    },
  },
  {
    id: 'S7',
    section: '3.1',
    title: 'a handshake extension longer than 4096 bytes is refused as soon as the header is read',
    async run(ctx) {
      const peer = await open(ctx);
      const header = handshakeBytes({ kind: 1 });
      header.writeUInt16BE(4097, 12);
      peer.write(header); // the extension's bytes never come: the server must not wait for them
      await expectClosedSilently(peer, ctx, 'a declared 4097-byte extension');
    },
  },
  {
    id: 'S8',
    section: '3.1',
    title: 'a handshake extension that is not a map (an array) is refused',
    async run(ctx) {
      const peer = await open(ctx);
      peer.write(handshakeBytes({ kind: 1, extension: Buffer.from('920102', 'hex') }));
      await expectClosedSilently(peer, ctx, 'an array as the HELLO extension');
    },
  },
  {
    id: 'S9',
    section: '6.3',
    title: 'an ASK is answered with a REPLY carrying its id',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([1, 0, { type: 'echo', value: { a: 1 } }]);
      const value = await expectReply(peer, ctx, 0);
      const problem = differs(value, { map: [['a', { int: '1' }]] });
      if (problem) fail(problem);
    },
  },
  {
    id: 'S10',
    section: '5',
    title: 'every value of the test vectors (canonical and other valid encodings) is echoed with the same meaning',
    async run(ctx) {
      const { peer } = await connected(ctx);
      const vectors = valueVectors().filter((v) => v.error === undefined);
      const problems: string[] = [];
      for (let i = 0; i < vectors.length; i++) {
        const vector = vectors[i]!;
        peer.sendBody(askWithRawValue(i, 'echo', Buffer.from(vector.hex, 'hex')));
        const value = await expectReply(peer, ctx, i);
        const problem = differs(value, vector.value!);
        if (problem) problems.push(`${vector.name}: ${problem}`);
      }
      if (problems.length > 0) fail(`${problems.length} of ${vectors.length} values came back different:\n${problems.join('\n')}`);
    },
  },
  {
    id: 'S11',
    section: '6.2',
    title: 'ids are u32: an ASK with id 4294967295 is answered with that id',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([1, 4294967295, { type: 'echo', value: 'max' }]);
      if ((await expectReply(peer, ctx, 4294967295)) !== 'max') fail('the echo did not match');
    },
  },
  {
    id: 'S12',
    section: '6.3',
    title: 'answers are matched by id, not order: a quick ASK is answered before an earlier slow one',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([1, 1, { type: 'sleep', ms: 300 }]);
      peer.send([1, 2, { type: 'echo', value: 'quick' }]);
      if ((await expectReply(peer, ctx, 2)) !== 'quick') fail('the quick echo did not match');
      await expectReply(peer, ctx, 1);
    },
  },
  {
    id: 'S13',
    section: '6.4',
    title: 'an ASK of a type without a handler is answered with ERROR NO_HANDLER',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([1, 3, { type: 'conformance-no-such-type' }]);
      const got = await expectAnswer(peer, ctx, 3, 3, 'ERROR 3');
      if (got.length !== 3) fail(`an ERROR must have exactly 3 elements, got ${got.length}`);
      checkErrorPayload(got[2], 'NO_HANDLER');
    },
  },
  {
    id: 'S14',
    section: '6.4',
    title: 'a failing handler is answered with ERROR REMOTE_ERROR and remote {name, message}',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([1, 4, { type: 'fail', message: 'it broke' }]);
      const got = await expectAnswer(peer, ctx, 3, 4, 'ERROR 4');
      const payload = checkErrorPayload(got[2], 'REMOTE_ERROR');
      const remote = payload.remote as Record<string, unknown> | undefined;
      if (typeof remote !== 'object' || remote === null) fail(`a REMOTE_ERROR must carry "remote", got ${describeJs(payload)}`);
      if (typeof remote.name !== 'string' || remote.message !== 'it broke') fail(`expected remote {name, message: "it broke"}, got ${describeJs(remote)}`);
    },
  },
  {
    id: 'S15',
    section: '6.3',
    title: 'a TELL is delivered and never answered',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([0, { type: 'note', text: 'first' }]);
      peer.send([0, { type: 'note', text: 'second' }]);
      peer.send([1, 5, { type: 'notes' }]);
      const value = await expectReply(peer, ctx, 5); // the first frame back must be this REPLY
      const problem = differs(value, { array: ['first', 'second'] });
      if (problem) fail(problem);
    },
  },
  {
    id: 'S16',
    section: '6.6',
    title: 'a PING is answered with a PONG',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([6]);
      const got = envelope(await peer.nextFrame(ctx.timeout, 'PONG'));
      if (got.length !== 1 || got[0] !== 7) fail(`expected PONG [7], got ${describeJs(got)}`);
    },
  },
  {
    id: 'S17',
    section: '6.7',
    title: 'a streamed answer never exceeds the credit: window 2, then CREDIT 3 (and 1), then STREAM_END',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([1, 6, { type: 'count', n: 5 }, { stream: 2 }]);
      const items: unknown[] = [];
      for (let i = 0; i < 2; i++) {
        const got = await expectAnswer(peer, ctx, 8, 6, `STREAM_ITEM ${i}`);
        items.push(got[2]);
      }
      await peer.expectSilence(300, 'with the window of 2 used up the server must wait for CREDIT');
      peer.send([10, 6, 3]);
      for (let i = 2; i < 5; i++) items.push((await expectAnswer(peer, ctx, 8, 6, `STREAM_ITEM ${i}`))[2]);
      // A producer may need credit to learn that its sequence has ended; a CREDIT after the end is ignored.
      peer.send([10, 6, 1]);
      const end = await expectAnswer(peer, ctx, 9, 6, 'STREAM_END 6');
      if (end.length !== 2) fail(`a STREAM_END must have exactly 2 elements, got ${end.length}`);
      const problem = differs(items, { array: [0, 1, 2, 3, 4].map((n) => ({ int: String(n) })) }, 'items');
      if (problem) fail(problem);
    },
  },
  {
    id: 'S18',
    section: '6.5',
    title: 'after a CANCEL no answer is sent for that id, and the connection stays usable',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([1, 7, { type: 'sleep', ms: 400 }]);
      await sleep(50);
      peer.send([4, 7]);
      await peer.expectSilence(800, 'the ASK was cancelled');
      peer.send([1, 8, { type: 'echo', value: 'after' }]);
      if ((await expectReply(peer, ctx, 8)) !== 'after') fail('the echo after the cancel did not match');
    },
  },
  {
    id: 'S19',
    section: '6',
    title: 'the protocol is symmetric: the server asks the client (callback) and uses its REPLY',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([1, 9, { type: 'callback', value: 'round trip' }]);
      const ask = envelope(await peer.nextMessage(ctx.timeout, "the server's ASK"));
      if (ask[0] !== 1 || typeof ask[1] !== 'number' || !Number.isInteger(ask[1])) fail(`expected the server's ASK [1, id, {type: "echo", …}], got ${describeJs(ask)}`);
      const event = ask[2] as Record<string, unknown>;
      if (event?.type !== 'echo' || event.value !== 'round trip') fail(`expected the event {type: "echo", value: "round trip"}, got ${describeJs(event)}`);
      peer.send([2, ask[1], event.value]);
      if ((await expectReply(peer, ctx, 9)) !== 'round trip') fail("the callback's REPLY did not carry the client's answer");
    },
  },
  {
    id: 'S20',
    section: '6.2',
    title: 'answers, CANCELs and CREDITs for ids that are not outstanding are ignored',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([2, 77, 'late']);
      peer.send([3, 78, { code: 'REMOTE_ERROR', message: 'late' }]);
      peer.send([8, 79, 'item']);
      peer.send([9, 79]);
      peer.send([4, 80]);
      peer.send([10, 81, 1]);
      peer.send([1, 10, { type: 'echo', value: 'still here' }]);
      if ((await expectReply(peer, ctx, 10)) !== 'still here') fail('the echo did not match');
    },
  },
  {
    id: 'S21',
    section: '4.1',
    title: 'non-minimal length prefixes (0xFC, 0xFD, 0xFE for a short body) are accepted',
    async run(ctx) {
      const { peer } = await connected(ctx);
      for (const [i, marker] of [[11, 0xfc], [12, 0xfd], [13, 0xfe]] as const) {
        const body = encodeValue([1, i, { type: 'echo', value: i }]);
        const size = marker === 0xfc ? 2 : marker === 0xfd ? 4 : 8;
        const prefix = Buffer.alloc(1 + size);
        prefix[0] = marker;
        prefix.writeUInt16BE(body.length, size - 1);
        peer.write(Buffer.concat([prefix, body]));
        if ((await expectReply(peer, ctx, i)) !== i) fail(`the echo after a 0x${marker.toString(16)} prefix did not match`);
      }
    },
  },
  {
    id: 'S22',
    section: '4.4',
    title: 'frames split into single bytes, and several frames in one write, are all read',
    async run(ctx) {
      const { peer } = await connected(ctx);
      const bytes = Buffer.concat([14, 15, 16].map((i) => Buffer.from(encodeValue([1, i, { type: 'echo', value: i }]))).map((b) => Buffer.concat([Buffer.of(b.length), b])));
      const first = bytes.subarray(0, bytes.length - 20);
      for (const byte of first) {
        peer.write(Buffer.of(byte));
        await sleep(1);
      }
      peer.write(bytes.subarray(first.length));
      for (const i of [14, 15, 16]) if ((await expectReply(peer, ctx, i)) !== i) fail(`echo ${i} did not match`);
    },
  },
  {
    id: 'S23',
    section: '7.1',
    title: 'graceful close: a GOODBYE with nothing outstanding is answered with GOODBYE and the end of the stream',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([5]);
      const got = envelope(await peer.nextMessage(ctx.timeout, "the server's GOODBYE"));
      if (got.length !== 1 || got[0] !== 5) fail(`expected GOODBYE [5], got ${describeJs(got)}`);
      peer.end();
      await peer.expectEnd(ctx.timeout, 'the server to end its direction after both GOODBYEs');
      if (peer.pending > 0) fail(`the server sent ${peer.pending} more bytes after its GOODBYE`);
    },
  },
  {
    id: 'S24',
    section: '7.1',
    title: 'graceful close waits for outstanding work: an ASK in progress is still answered after the GOODBYE',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.send([1, 17, { type: 'sleep', ms: 300 }]);
      await sleep(50);
      peer.send([5]);
      let replied = false;
      let goodbye = false;
      while (!(replied && goodbye)) {
        const got = envelope(await peer.nextMessage(ctx.timeout, 'the REPLY and the GOODBYE'));
        if (got[0] === 5) goodbye = true;
        else if (got[0] === 2 && got[1] === 17) replied = true;
        else fail(`unexpected frame ${describeJs(got)}`);
      }
      peer.end();
      await peer.expectEnd(ctx.timeout, 'the server to end its direction');
    },
  },
  {
    id: 'S25',
    section: '7.1',
    title: "an ASK that arrives after the client's GOODBYE is answered with ERROR CONNECTION_CLOSED",
    async run(ctx) {
      const { peer } = await connected(ctx);
      // One write, so both arrive in one read: §7.1 lets a server end its direction once it has
      // handled the read that carried the GOODBYE, and an ASK in a later read may find it closed.
      peer.sendTogether([[5], [1, 18, { type: 'echo', value: 'too late' }]]);
      for (;;) {
        const got = envelope(await peer.nextMessage(ctx.timeout, 'ERROR 18 CONNECTION_CLOSED'));
        if (got[0] === 5) continue;
        if (got[0] !== 3 || got[1] !== 18) fail(`expected ERROR [3, 18, {code: "CONNECTION_CLOSED"}], got ${describeJs(got)}`);
        checkErrorPayload(got[2], 'CONNECTION_CLOSED');
        return;
      }
    },
  },
  {
    id: 'S26',
    section: '4.4',
    title: "a frame declaring a body above the server's maxMessageSize closes the connection before the body arrives",
    async run(ctx) {
      const { peer, maxMessageSize } = await connected(ctx);
      if (maxMessageSize >= 0xffffffff) fail('the server accepts the largest possible frame; nothing to test');
      const prefix = Buffer.alloc(5);
      prefix[0] = 0xfd;
      prefix.writeUInt32BE(maxMessageSize + 1, 1);
      peer.write(prefix);
      await expectClosedSilently(peer, ctx, `a declared ${maxMessageSize + 1}-byte body`);
    },
  },
  {
    id: 'S27',
    section: '4.2',
    title: 'a frame with a wrong CRC-32 closes the connection (checksums on)',
    async run(ctx) {
      const { peer } = await connected(ctx, { checksum: true });
      const body = encodeValue([1, 19, { type: 'echo', value: 1 }]);
      peer.write(Buffer.concat([Buffer.of(body.length, 0xde, 0xad, 0xbe, 0xef), body]));
      await expectClosedSilently(peer, ctx, 'a bad CRC');
    },
  },
  {
    id: 'S28',
    section: '4.1',
    title: 'the reserved length marker 0xFF closes the connection',
    async run(ctx) {
      const { peer } = await connected(ctx);
      peer.write(Buffer.of(0xff, 0, 0, 0, 0, 0, 0, 0, 3, 0x91, 0x06));
      await expectClosedSilently(peer, ctx, 'the length marker 0xFF');
    },
  },
  {
    id: 'S29',
    section: '5',
    title: 'every invalid value of the test vectors closes the connection, unanswered (DECODE_FAILED)',
    async run(ctx) {
      const problems: string[] = [];
      for (const vector of valueVectors().filter((v) => v.error !== undefined)) {
        const { peer } = await connected(ctx);
        // The value as an ASK's field when it is one complete value, else as the whole body.
        const raw = Buffer.from(vector.hex, 'hex');
        peer.sendBody(vector.section === '5.3' || vector.section === '5.2' || vector.section === '5.1' ? askWithRawValue(20, 'echo', raw) : raw);
        try {
          await expectClosedSilently(peer, ctx, vector.name);
        } catch (error) {
          problems.push(`${vector.name}: ${(error as Error).message}`);
        }
        peer.destroy();
      }
      if (problems.length > 0) fail(problems.join('\n'));
    },
  },
  {
    id: 'S30',
    section: '6',
    title: 'every invalid envelope of the test vectors closes the connection, unanswered (PROTOCOL_ERROR)',
    async run(ctx) {
      const problems: string[] = [];
      for (const vector of envelopeVectors().filter((v) => v.error !== undefined)) {
        const { peer } = await connected(ctx);
        peer.sendBody(Buffer.from(vector.hex, 'hex'));
        try {
          await expectClosedSilently(peer, ctx, vector.name);
        } catch (error) {
          problems.push(`${vector.name}: ${(error as Error).message}`);
        }
        peer.destroy();
      }
      if (problems.length > 0) fail(problems.join('\n'));
    },
  },
];
