import { FrameKind } from './constants.js';

/**
 * The shape every frame body must have (docs/PROTOCOL.md §6), checked before the frame is routed:
 * an array of exactly the element count its kind defines, whose kind, id and CREDIT count are
 * MessagePack integers (a float such as 5.0 decodes to the same JavaScript number, so the
 * encoding itself is checked) within their ranges. Returns a reason, or undefined when the shape
 * is right. It reads only the first few bytes of the body (from `start`) and allocates nothing. `tellOptions`:
 * this side said in its handshake that it reads trace context, so a TELL may have a third element (§6.9).
 */
export function envelopeProblem(body: Uint8Array, message: unknown, tellOptions = false, start = 0): string | undefined {
  if (!Array.isArray(message) || message.length === 0) return 'a frame body must be a MessagePack array starting with the frame kind';
  const kind = message[0];
  if (typeof kind !== 'number' || !Number.isInteger(kind) || kind < 0 || kind > FrameKind.CREDIT) return `unknown frame kind ${describe(kind)}`;
  const arity = message.length;
  const expected = ARITY[kind]!;
  if (arity !== expected && !(kind === FrameKind.ASK && arity === 4) && !(tellOptions && kind === FrameKind.TELL && arity === 3)) {
    return `a frame of kind ${kind} has ${kind === FrameKind.ASK ? '3 or 4' : tellOptions && kind === FrameKind.TELL ? '2 or 3' : expected} elements, this one has ${arity}`;
  }
  // The integers must be MessagePack integers: find the kind's and the id's encodings.
  let at = start + arrayHeaderSize(body[start]!);
  const kindSize = intSize(body[at]!);
  if (kindSize === 0) return `the frame kind must be a MessagePack integer (got format 0x${body[at]!.toString(16)})`;
  if (HAS_ID[kind] === 0) return undefined;
  at += kindSize;
  const id = message[1];
  const idSize = intSize(body[at]!);
  if (idSize === 0 || typeof id !== 'number' || id < 0 || id > 0xffffffff) return `frame kind ${kind} needs an id that is an integer in 0 … 2^32−1 (got ${describe(id)})`;
  if (kind === FrameKind.CREDIT) {
    at += idSize;
    const n = message[2];
    if (intSize(body[at]!) === 0 || typeof n !== 'number' || n < 1 || n > 0xffffffff) return `a CREDIT's count must be an integer in 1 … 2^32−1 (got ${describe(n)})`;
  }
  return undefined;
}

/** Element counts by kind: TELL, ASK (or 4 with options), REPLY, ERROR, CANCEL, GOODBYE, PING, PONG, STREAM_ITEM, STREAM_END, CREDIT. */
const ARITY = [2, 3, 3, 3, 2, 1, 1, 1, 3, 2, 3];
/** Whether the kind's second element is an id. */
const HAS_ID = [0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1];

/** Bytes of an array header (the body is known to be an array: the decoder said so). */
function arrayHeaderSize(b: number): number {
  return b === 0xdc ? 3 : b === 0xdd ? 5 : 1;
}

/** Bytes of the MessagePack integer starting with format byte `b`, or 0 if `b` starts no integer. */
function intSize(b: number): number {
  if (b <= 0x7f || b >= 0xe0) return 1; // positive / negative fixint
  switch (b) {
    case 0xcc:
    case 0xd0:
      return 2;
    case 0xcd:
    case 0xd1:
      return 3;
    case 0xce:
    case 0xd2:
      return 5;
    case 0xcf:
    case 0xd3:
      return 9;
    default:
      return 0;
  }
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value === 'bigint' ? `${value}` : typeof value === 'number' || typeof value === 'boolean' || value == null ? String(value) : typeof value;
}
