import { ExtType } from './constants.js';

/**
 * A single iterative pass over a MessagePack value that decides whether msgpackr may decode it.
 *
 * msgpackr is fast but trusts its input: it recurses (a stack overflow at depth ~10^4), builds
 * RegExp/Error/typed arrays and structured-clone cycles from extensions registered process-wide,
 * accepts record definitions even with records off, and turns byte 0xc1 into an object. Its
 * extension table is global, so we cannot switch those off without changing the host
 * application's msgpackr. Instead every frame passes this scan first. It:
 *  - bounds nesting depth (arrays, maps and Set/Map extensions each count one level),
 *  - rejects containers that declare more items than bytes remain (no huge pre-allocation),
 *  - allows only the extension types this protocol defines (undefined, Set, Map, timestamp), and
 *    scans a Set's or Map's data in place as the one array it must be, ending exactly where the
 *    extension's data ends,
 *  - rejects the reserved byte 0xc1 and `__proto__` map keys,
 *  - requires the value to end exactly at the end of the frame.
 * It allocates nothing: the container stack is a preallocated typed array.
 *
 * Returns `undefined` when the value is acceptable, otherwise a short reason.
 */
export function scanMessagePack(buf: Uint8Array, start: number, end: number, maxDepth: number): string | undefined {
  if (stack.length < maxDepth + 1) {
    stack = new Float64Array(maxDepth + 1);
    limitStack = new Float64Array(maxDepth + 1);
    flagStack = new Uint8Array(maxDepth + 1);
  }
  let pos = start;
  let depth = 0;
  let remaining = 1;
  // The current level: is it a map (items at even `remaining` are keys), is it the data of a Set
  // or Map extension (which must end exactly at `limit`), and where its bytes must end. The
  // enclosing levels' values wait in the stacks (typed arrays: no allocation per frame).
  let inMap = 0;
  let inPayload = 0;
  let limit = end;

  for (;;) {
    if (remaining === 0) {
      if (inPayload === 1 && pos !== limit) return `a Set or Map extension's data has ${limit - pos} bytes after its array`;
      if (depth === 0) break;
      depth--;
      remaining = stack[depth]!;
      limit = limitStack[depth]!;
      inMap = flagStack[depth]! & 1;
      inPayload = flagStack[depth]! >> 1;
      continue;
    }
    const isKey = inMap === 1 && (remaining & 1) === 0;
    remaining--;
    if (pos >= limit) return 'the value is truncated';
    const b = buf[pos++]!;
    let open = -1; // item count of a container opened by this byte
    let openIsMap = 0;
    let extData = -1; // length of a Set's or Map's extension data starting at `pos`
    let extType = 0;

    if (b <= 0x7f || b >= 0xe0) continue; // positive / negative fixint
    if (b <= 0x8f) {
      open = (b & 0x0f) * 2;
      openIsMap = 1;
    } else if (b <= 0x9f) {
      open = b & 0x0f;
    } else if (b <= 0xbf) {
      const len = b & 0x1f;
      if (isKey && len === 9 && isProtoKey(buf, pos, limit)) return 'a map key is "__proto__"';
      pos += len;
    } else {
      switch (b) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          break;
        case 0xc1:
          return 'reserved byte 0xc1';
        case 0xc4: // bin 8
        case 0xd9: { // str 8
          if (pos + 1 > limit) return 'the value is truncated';
          const len = buf[pos]!;
          if (b === 0xd9 && isKey && len === 9 && isProtoKey(buf, pos + 1, limit)) return 'a map key is "__proto__"';
          pos += 1 + len;
          break;
        }
        case 0xc5: // bin 16
        case 0xda: { // str 16
          if (pos + 2 > limit) return 'the value is truncated';
          const len = (buf[pos]! << 8) | buf[pos + 1]!;
          // A non-minimal encoding must not smuggle the key past the check above.
          if (b === 0xda && isKey && len === 9 && isProtoKey(buf, pos + 2, limit)) return 'a map key is "__proto__"';
          pos += 2 + len;
          break;
        }
        case 0xc6: // bin 32
        case 0xdb: { // str 32
          if (pos + 4 > limit) return 'the value is truncated';
          const len = readU32(buf, pos);
          if (b === 0xdb && isKey && len === 9 && isProtoKey(buf, pos + 4, limit)) return 'a map key is "__proto__"';
          pos += 4 + len;
          break;
        }
        case 0xc7: { // ext 8: the 12-byte timestamp, or a Set / Map
          if (pos + 2 > limit) return 'the value is truncated';
          const len = buf[pos]!;
          extType = buf[pos + 1]!;
          pos += 2;
          if (extType === ExtType.TIMESTAMP && len === 12) pos += len;
          else if (extType === ExtType.SET || extType === ExtType.MAP) extData = len;
          else return `extension type ${signedExt(extType)} (length ${len}) is not allowed`;
          break;
        }
        case 0xc8: // ext 16: a Set / Map
          if (pos + 3 > limit) return 'the value is truncated';
          extType = buf[pos + 2]!;
          if (extType !== ExtType.SET && extType !== ExtType.MAP) return `extension type ${signedExt(extType)} (ext 16) is not allowed`;
          extData = (buf[pos]! << 8) | buf[pos + 1]!;
          pos += 3;
          break;
        case 0xc9: // ext 32: a Set / Map
          if (pos + 5 > limit) return 'the value is truncated';
          extType = buf[pos + 4]!;
          if (extType !== ExtType.SET && extType !== ExtType.MAP) return `extension type ${signedExt(extType)} (ext 32) is not allowed`;
          extData = readU32(buf, pos);
          pos += 5;
          break;
        case 0xca: pos += 4; break; // float 32
        case 0xcb: pos += 8; break; // float 64
        case 0xcc: case 0xd0: pos += 1; break;
        case 0xcd: case 0xd1: pos += 2; break;
        case 0xce: case 0xd2: pos += 4; break;
        case 0xcf: case 0xd3: pos += 8; break;
        case 0xd4: // fixext 1: undefined, or a Set / Map whose data is one byte (an empty array)
        case 0xd5: // fixext 2: a Set / Map
        case 0xd6: // fixext 4: timestamp 32, or a Set / Map
        case 0xd7: // fixext 8: timestamp 64, or a Set / Map
        case 0xd8: { // fixext 16: a Set / Map
          if (pos + 1 > limit) return 'the value is truncated';
          const len = FIXEXT_LENGTH[b - 0xd4]!;
          extType = buf[pos++]!;
          if (extType === ExtType.SET || extType === ExtType.MAP) extData = len;
          else if ((extType === ExtType.UNDEFINED && b === 0xd4) || (extType === ExtType.TIMESTAMP && (b === 0xd6 || b === 0xd7))) pos += len;
          else return `extension type ${signedExt(extType)} (fixext ${len}) is not allowed`;
          break;
        }
        case 0xdc: // array 16
          if (pos + 2 > limit) return 'the value is truncated';
          open = (buf[pos]! << 8) | buf[pos + 1]!;
          pos += 2;
          break;
        case 0xdd: // array 32
          if (pos + 4 > limit) return 'the value is truncated';
          open = readU32(buf, pos);
          pos += 4;
          break;
        case 0xde: // map 16
          if (pos + 2 > limit) return 'the value is truncated';
          open = ((buf[pos]! << 8) | buf[pos + 1]!) * 2;
          openIsMap = 1;
          pos += 2;
          break;
        case 0xdf: // map 32
          if (pos + 4 > limit) return 'the value is truncated';
          open = readU32(buf, pos) * 2;
          openIsMap = 1;
          pos += 4;
          break;
      }
    }
    if (pos > limit) return 'the value is truncated';
    if (extData >= 0) {
      // A Set's or Map's data: exactly one array (of even length for a Map), nothing after it.
      if (extData > limit - pos) return 'the value is truncated';
      const items = arrayLength(buf, pos, pos + extData);
      if (items < 0) return `a ${extType === ExtType.SET ? 'Set' : 'Map'} extension's data is not an array`;
      if (extType === ExtType.MAP && items % 2 !== 0) return "a Map extension's array has an odd number of items";
      // The extension is one level around its array (so a Set or Map is two levels, as before).
      if (depth >= maxDepth) return `nesting is deeper than ${maxDepth} levels`;
      stack[depth] = remaining;
      limitStack[depth] = limit;
      flagStack[depth] = inMap | (inPayload << 1);
      depth++;
      remaining = 1;
      inMap = 0;
      inPayload = 1;
      limit = pos + extData;
    } else if (open > 0) {
      // Every item takes at least one byte: refuse counts the frame cannot hold.
      if (open > limit - pos) return `a container declares ${openIsMap ? open / 2 : open} items but only ${limit - pos} bytes remain`;
      if (depth >= maxDepth) return `nesting is deeper than ${maxDepth} levels`;
      stack[depth] = remaining;
      limitStack[depth] = limit;
      flagStack[depth] = inMap | (inPayload << 1);
      depth++;
      remaining = open;
      inMap = openIsMap;
      inPayload = 0;
    } else if (open === 0 && depth >= maxDepth) {
      // An empty container is a level too (the encoder counts it so).
      return `nesting is deeper than ${maxDepth} levels`;
    }
  }
  if (pos !== end) return `${end - pos} bytes follow the value`;
  return undefined;
}

/** Data lengths of fixext 1, 2, 4, 8 and 16 (bytes 0xd4 … 0xd8). */
const FIXEXT_LENGTH = [1, 2, 4, 8, 16];

/** The item count of the array that starts at `at` and whose header fits before `end`, or -1. */
function arrayLength(buf: Uint8Array, at: number, end: number): number {
  if (at >= end) return -1;
  const b = buf[at]!;
  if (b >= 0x90 && b <= 0x9f) return b & 0x0f;
  if (b === 0xdc && at + 3 <= end) return (buf[at + 1]! << 8) | buf[at + 2]!;
  if (b === 0xdd && at + 5 <= end) return readU32(buf, at + 1);
  return -1;
}

let stack = new Float64Array(128);
let limitStack = new Float64Array(128);
let flagStack = new Uint8Array(128);

const PROTO = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f]; // "__proto__"

/** Whether the 9 bytes at `at` spell "__proto__"; bytes past `limit` are not looked at (the key is then truncated). */
function isProtoKey(buf: Uint8Array, at: number, limit: number): boolean {
  if (at + 9 > limit) return false;
  for (let i = 0; i < 9; i++) if (buf[at + i] !== PROTO[i]) return false;
  return true;
}

function readU32(buf: Uint8Array, at: number): number {
  return buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!);
}

function signedExt(type: number): number {
  return type > 127 ? type - 256 : type;
}
