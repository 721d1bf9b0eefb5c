import { Packr, Unpackr, addExtension, RESERVE_START_SPACE, REUSE_BUFFER_MODE } from 'msgpackr';
import * as zlib from 'node:zlib';
import { ConverseError } from '../errors.js';
import {
  CHECKSUM_SIZE,
  ExtType,
  LENGTH_INLINE_MAX,
  LENGTH_U16,
  LENGTH_U32,
  LENGTH_U64,
  MAX_LENGTH_PREFIX,
  MAX_NESTING_DEPTH,
} from './constants.js';
import { scanMessagePack } from './msgpack-scan.js';

/**
 * The codec: values ⇄ MessagePack bodies, and bodies ⇄ frames.
 *
 * One Packr and one Unpackr serve every connection in the process. msgpackr's Packr writes into
 * a slab and hands out non-overlapping views of it, so a frame can go straight to
 * `socket.write` without a copy, and sharing the slab keeps idle connections small (a Packr per
 * connection would cost 8 KiB each). Records are off (standard MessagePack on the wire).
 */

// Private carrier classes. A user's Map, Set or wide integer is re-wrapped in one of these before
// packing so that it reaches msgpackr's extension path (msgpackr writes a plain Map as a
// MessagePack map, which would come back as an object, and an integer beyond 32 bits as a float).
// Registering extensions for private classes cannot change how the host application's own
// msgpackr encodes anything.
class WireMap {
  constructor(readonly flat: unknown[]) {}
}
class WireSet {
  constructor(readonly members: unknown[]) {}
}
/** An integer beyond the 32-bit formats: a safe-integer number, or a bigint within 64 bits. */
class WireInt {
  constructor(readonly value: number | bigint) {}
}

const TWO_32 = 2 ** 32;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * Map and Set carry their array inside the extension's data (docs/PROTOCOL.md §5.2): the array is
 * packed on its own (msgpackr's pack is re-entrant) and msgpackr writes it as the extension's
 * data with the smallest ext header. A stock decoder therefore sees one extension value, which
 * it may skip or hook.
 */
function mapFromPayload(data: Uint8Array): Map<unknown, unknown> {
  // msgpackr's unpack is re-entrant; the pre-scan has already checked that `data` is exactly one
  // acceptable value.
  const flat = unpackr.unpack(data) as unknown;
  if (!Array.isArray(flat) || flat.length % 2 !== 0) throw new Error('a Map extension must carry an even-length array');
  const map = new Map();
  for (let i = 0; i < flat.length; i += 2) map.set(flat[i], flat[i + 1]);
  return map;
}

function setFromPayload(data: Uint8Array): Set<unknown> {
  const members = unpackr.unpack(data) as unknown;
  if (!Array.isArray(members)) throw new Error('a Set extension must carry an array');
  return new Set(members);
}

addExtension({ Class: WireMap, type: ExtType.MAP, pack: (map: WireMap) => packr.pack(map.flat), unpack: mapFromPayload });
addExtension({ Class: WireSet, type: ExtType.SET, pack: (set: WireSet) => packr.pack(set.members), unpack: setFromPayload });
// WireInt writes a plain uint 64 / int 64, never an extension: its `pack` writes the 9 bytes itself
// and returns nothing. msgpackr insists on a type for `pack` and registers a reader under it, so it
// shares the Set's type and reader (registered again after it, so the Set's reader stays in place).
type Allocate = (size: number) => { target: Uint8Array; targetView: DataView; position: number };
addExtension({
  Class: WireInt,
  type: ExtType.SET,
  // (msgpackr's typings omit the second argument of `pack` and a `pack` that returns nothing.)
  pack: ((wide: WireInt, allocate: Allocate): void => {
    const { target, targetView, position } = allocate(9);
    const v = wide.value;
    if (typeof v === 'bigint') {
      target[position] = v < 0n ? 0xd3 : 0xcf;
      if (v < 0n) targetView.setBigInt64(position + 1, v);
      else targetView.setBigUint64(position + 1, v);
    } else {
      // A safe integer as two 32-bit halves (two's complement for negatives), without a BigInt.
      target[position] = v < 0 ? 0xd3 : 0xcf;
      const high = Math.floor(v / TWO_32);
      targetView.setInt32(position + 1, high);
      targetView.setUint32(position + 5, v - high * TWO_32);
    }
  }) as unknown as (value: unknown) => Buffer,
});
addExtension({ type: ExtType.SET, unpack: setFromPayload });

const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false, useBigIntExtension: false });
// int64AsType 'auto': int 64 / uint 64 within ±2^53 decode as numbers, beyond as bigints (§5.4).
const unpackr = new Unpackr({
  useRecords: false,
  structuredClone: false,
  mapsAsObjects: true,
  moreTypes: false,
  int64AsType: 'auto' as 'bigint', // (msgpackr's typings lack 'auto')
});

/** zlib's CRC-32 where the module has one (Node 20.15+), else `crc32Fallback`. */
export function selectCrc32(zlibModule: { crc32?: unknown }): (data: Uint8Array) => number {
  const native = zlibModule.crc32;
  return typeof native === 'function' ? (data) => (native as (d: Uint8Array) => number)(data) : crc32Fallback;
}

const crc32 = selectCrc32(zlib);

/**
 * Thrown by `prepare` where a value cannot be sent, when it runs without paths: the one place
 * that catches it walks the value again with paths, for the error message. One object, made once.
 */
const CANNOT_SEND = new Error('cannot send');

/**
 * Prepare a value for packing (see `prepare`); the error names the path of what cannot be sent.
 * The first walk builds no path strings (a message is walked on every send; the paths are only
 * for the error message): where it finds a problem, a second walk with paths explains it.
 */
function prepareMessage(value: unknown, root: string): unknown {
  try {
    return prepare(value, 0, undefined);
  } catch (error) {
    if (error !== CANNOT_SEND) throw error;
  }
  prepare(value, 0, root); // throws ENCODE_FAILED with the path
  throw encodeError(`${root} changed while it was being encoded`);
}

/**
 * Prepare a value for packing: wraps Maps and Sets in their carriers (copying only the path to
 * them, so the common Map-free message is returned as is), enforces the nesting limit (which
 * also catches cycles), and rejects what cannot cross faithfully (functions, symbols, Errors,
 * RegExps) instead of letting msgpackr silently drop or mangle it. `path` is undefined on the
 * fast walk (problems throw CANNOT_SEND) and the value's path on the explaining walk.
 */
function prepare(value: unknown, depth: number, path: string | undefined): unknown {
  if (typeof value !== 'object' || value === null) return prepareScalar(value, path);
  // The common containers first, told apart by their prototype alone: a plain object or array
  // costs one comparison here instead of the instanceof chain below.
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto === Object.prototype || proto === null) return prepareObject(value as Record<string, unknown>, depth, path);
  if (proto === Array.prototype) return prepareArray(value as unknown[], depth, path);
  if (ArrayBuffer.isView(value)) return value;
  if (value instanceof Date) {
    // msgpackr would write an invalid Date as a 1-byte timestamp, which is not valid MessagePack.
    if (Number.isNaN(value.getTime())) throw cannotSend(path, 'is an invalid Date');
    return value;
  }
  if (Array.isArray(value)) return prepareArray(value, depth, path);
  if (value instanceof Map) {
    checkDepth(depth + 2, path);
    const flat: unknown[] = new Array(value.size * 2);
    let i = 0;
    for (const [k, v] of value) {
      flat[i++] = prepare(k, depth + 2, path === undefined ? undefined : `${path}<key>`);
      flat[i++] = prepare(v, depth + 2, path === undefined ? undefined : `${path}<value>`);
    }
    return new WireMap(flat);
  }
  if (value instanceof Set) {
    checkDepth(depth + 2, path);
    const members: unknown[] = [];
    for (const m of value) members.push(prepare(m, depth + 2, path === undefined ? undefined : `${path}<member>`));
    return new WireSet(members);
  }
  if (value instanceof Error || value instanceof RegExp || value instanceof Promise) {
    throw cannotSend(path, `is ${value.constructor.name === 'Error' ? 'an Error' : `a ${value.constructor.name}`}, which cannot be sent; send a plain object (for example { name, message }) instead`);
  }
  return prepareObject(value as Record<string, unknown>, depth, path);
}

/**
 * `levels` counts the containers around and including a value. The receiver's scan counts every
 * array and map as one level and a Map or Set as two (its tag and its array); count the same way
 * here, so that whatever this side encodes the peer can decode.
 */
function checkDepth(levels: number, path: string | undefined): void {
  if (levels > MAX_NESTING_DEPTH) throw cannotSend(path, `is nested deeper than ${MAX_NESTING_DEPTH} levels (or the value has a cycle)`);
}

function prepareArray(value: unknown[], depth: number, path: string | undefined): unknown[] {
  checkDepth(depth + 1, path);
  let copy: unknown[] | undefined;
  for (let i = 0; i < value.length; i++) {
    const item = value[i];
    const prepared = typeof item === 'object' && item !== null ? prepare(item, depth + 1, path === undefined ? undefined : `${path}[${i}]`) : prepareLeaf(item, path, i);
    if (prepared !== item) {
      copy ??= value.slice();
      copy[i] = prepared;
    }
  }
  return copy ?? value;
}

function prepareObject(value: Record<string, unknown>, depth: number, path: string | undefined): Record<string, unknown> {
  checkDepth(depth + 1, path);
  let copy: Record<string, unknown> | undefined;
  for (const key in value) {
    // The receiver refuses a "__proto__" key (it would be renamed or pollute a prototype).
    if (key === '__proto__') throw cannotSend(path, 'has a "__proto__" key, which cannot be sent');
    const item = value[key];
    const prepared = typeof item === 'object' && item !== null ? prepare(item, depth + 1, path === undefined ? undefined : `${path}.${key}`) : prepareLeaf(item, path, key);
    if (prepared !== item) {
      copy ??= { ...value };
      copy[key] = prepared;
    }
  }
  return copy ?? value;
}

/**
 * A scalar field: integers get the MessagePack int format of docs/PROTOCOL.md §5.4 (msgpackr alone
 * would write a number beyond 32 bits as a float 64, and every bigint as 9 bytes), functions and
 * symbols are refused. The common case (a small number, a string) returns at the first test.
 */
function prepareScalar(item: unknown, path: string | undefined): unknown {
  switch (typeof item) {
    case 'number':
      // Outside int32/uint32 but a safe integer: uint 64 / int 64 rather than float 64.
      if ((item >= TWO_32 || item < -0x80000000) && Number.isSafeInteger(item)) return new WireInt(item);
      return item;
    case 'bigint':
      if (item >= -0x80000000n && item < 0x100000000n) return Number(item); // the shortest int format
      if (item < INT64_MIN || item > UINT64_MAX) throw cannotSend(path, 'is a bigint outside the 64-bit range (−2^63 … 2^64−1)');
      return new WireInt(item);
    case 'function':
    case 'symbol':
      throw cannotSend(path, `is a ${typeof item}, which cannot be sent`);
    default:
      return item;
  }
}

function prepareLeaf(item: unknown, path: string | undefined, key: string | number): unknown {
  if (typeof item === 'string' || typeof item === 'boolean' || item === undefined || item === null) return item;
  return prepareScalar(item, path === undefined ? undefined : typeof key === 'number' ? `${path}[${key}]` : `${path}.${key}`);
}

/** The error for a value at `path` that cannot be sent; on the fast walk (no path), CANNOT_SEND. */
function cannotSend(path: string | undefined, what: string): Error {
  return path === undefined ? CANNOT_SEND : encodeError(`${path} ${what}`);
}

function encodeError(what: string): ConverseError {
  return new ConverseError('ENCODE_FAILED', `Cannot encode the message: ${what}.`);
}

/**
 * Encode a value into one complete frame (length prefix, optional CRC-32, body), in a single
 * buffer: msgpackr reserves room in front of the body and the prefix is written into it, so the
 * body is never copied. `maxBody` is the limit the peer agreed to receive.
 */
export function encodeFrame(value: unknown, checksum: boolean, maxBody: number): Buffer {
  const slab = packFrame(value, checksum, maxBody);
  return slab.subarray(packedStart, packedEnd);
}

/**
 * `encodeFrame` without making a Buffer for the frame: the frame is bytes `packedStart` …
 * `packedEnd` of the returned slab (msgpackr's, shared by the process), valid until the next
 * encode. A writer that copies small frames into its own batch saves a view per message.
 */
export function packFrame(value: unknown, checksum: boolean, maxBody: number): Buffer {
  const reserve = MAX_LENGTH_PREFIX + (checksum ? CHECKSUM_SIZE : 0);
  let slab: PackedSlab;
  try {
    // REUSE_BUFFER_MODE: msgpackr hands back its slab and the packed range, not a view of it.
    slab = packr.pack(prepareMessage(value, 'message'), REUSE_BUFFER_MODE | RESERVE_START_SPACE | reserve) as PackedSlab;
  } catch (error) {
    if (error instanceof ConverseError) throw error;
    throw new ConverseError('ENCODE_FAILED', `Cannot encode the message: ${(error as Error).message}.`, { cause: error });
  }
  // The packed range: `reserve` bytes of room, then the body.
  const bodyStart = slab.start + reserve;
  const end = slab.end;
  const bodyLength = end - bodyStart;
  if (bodyLength > maxBody) {
    throw new ConverseError(
      'MESSAGE_TOO_LARGE',
      `The message is ${bodyLength} bytes encoded, over the limit of ${maxBody} bytes agreed with the peer (the smaller of the two sides' maxMessageSize). Raise the maxMessageSize option of both listen() and connect() to at least ${bodyLength}, or send it in parts. The connection is still usable.`,
    );
  }
  const prefixLength = bodyLength <= LENGTH_INLINE_MAX ? 1 : bodyLength <= 0xffff ? 3 : bodyLength <= 0xffffffff ? 5 : 9;
  const headerStart = bodyStart - prefixLength - (checksum ? CHECKSUM_SIZE : 0);
  writeLengthPrefix(slab, headerStart, bodyLength, prefixLength);
  if (checksum) slab.writeUInt32BE(crc32(slab.subarray(bodyStart, end)), bodyStart - CHECKSUM_SIZE);
  packedStart = headerStart;
  packedEnd = end;
  return slab;
}

/** The frame `packFrame` last made: its first byte and the byte after its last in the slab. */
export let packedStart = 0;
export let packedEnd = 0;

/** msgpackr's slab as REUSE_BUFFER_MODE returns it: the value was packed into `start` … `end`. */
type PackedSlab = Buffer & { start: number; end: number };

function writeLengthPrefix(target: Buffer, at: number, length: number, prefixLength: number): void {
  switch (prefixLength) {
    case 1:
      target[at] = length;
      return;
    case 3:
      target[at] = LENGTH_U16;
      target.writeUInt16BE(length, at + 1);
      return;
    case 5:
      target[at] = LENGTH_U32;
      target.writeUInt32BE(length, at + 1);
      return;
    default:
      target[at] = LENGTH_U64;
      target.writeUInt32BE(Math.floor(length / 0x100000000), at + 1);
      target.writeUInt32BE(length >>> 0, at + 5);
  }
}

/** Encode a value as a bare MessagePack body (used for the handshake extension). */
export function encodeValue(value: unknown): Buffer {
  return packr.pack(prepareMessage(value, 'value')) as Buffer;
}

/**
 * Decode one frame body: `body`, or bytes `start` … `end` of it. Throws `DECODE_FAILED` for
 * anything the scan or msgpackr refuses. Binary fields come back as views into `body` (no copy).
 */
export function decodeBody(body: Uint8Array, start = 0, end = body.length): unknown {
  const problem = scanMessagePack(body, start, end, MAX_NESTING_DEPTH);
  if (problem !== undefined) {
    throw new ConverseError('DECODE_FAILED', `The peer sent a frame that is not valid for this protocol: ${problem}. The connection was closed; check that the peer follows docs/PROTOCOL.md.`);
  }
  try {
    if (start === 0 && end === body.length) return unpackr.unpack(body);
    // A range of a larger buffer (a read chunk): decoded in place, binary fields are views of it.
    RANGE.start = start;
    RANGE.end = end;
    return unpackr.unpack(body, RANGE);
  } catch (error) {
    throw new ConverseError('DECODE_FAILED', `The peer sent a frame that could not be decoded: ${(error as Error).message}. The connection was closed.`, { cause: error });
  }
}

/** msgpackr's options for decoding a range (one object, reused). */
const RANGE = { start: 0, end: 0 };

export function checksumOf(body: Uint8Array): number {
  return crc32(body);
}

/**
 * CRC-32/ISO-HDLC (zlib's) from a table: zlib.crc32 arrived in Node 20.15, older 20.x uses this.
 * Exported so that it is tested on every Node, against zlib where zlib has it.
 */
let crcTable: Int32Array | undefined;
export function crc32Fallback(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let crc = -1;
  for (let i = 0; i < data.length; i++) crc = crcTable[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}
