import { ExtType } from './constants.js';

/**
 * A single iterative pass over a MessagePack value that decides whether msgpackr may decode it.
 *
 * msgpackr is fast but trusts its input: it recurses (a stack overflow at depth ~10^4), builds
 * RegExp/Error/typed arrays and structured-clone cycles from extensions registered process-wide,
 * accepts record definitions even with records off, and turns byte 0xc1 into an object. Its
 * extension table is global, so we cannot switch those off without changing the host
 * application's msgpackr. Instead every frame passes this scan first. It:
 *  - bounds nesting depth (arrays, maps and tag extensions each count one level),
 *  - rejects containers that declare more items than bytes remain (no huge pre-allocation),
 *  - allows only the extension types this protocol defines (undefined, Set, Map, timestamp),
 *  - rejects the reserved byte 0xc1 and `__proto__` map keys,
 *  - requires the value to end exactly at the end of the frame.
 * It allocates nothing: the container stack is a preallocated typed array.
 *
 * Returns `undefined` when the value is acceptable, otherwise a short reason.
 */
export function scanMessagePack(buf: Uint8Array, start: number, end: number, maxDepth: number): string | undefined {
  if (stack.length < maxDepth + 1) stack = new Float64Array(maxDepth + 1);
  let pos = start;
  let depth = 0;
  let remaining = 1;
  // Which levels are maps: bit i of mapLevels (a number array is avoided for speed) — depth can
  // exceed 32, so keep a parallel byte stack instead.
  if (mapStack.length < maxDepth + 1) mapStack = new Uint8Array(maxDepth + 1);
  let inMap = 0;

  for (;;) {
    if (remaining === 0) {
      if (depth === 0) break;
      depth--;
      remaining = stack[depth]!;
      inMap = mapStack[depth]!;
      continue;
    }
    // In a map, items at even `remaining` (counted down from 2n) are keys.
    const isKey = inMap === 1 && (remaining & 1) === 0;
    remaining--;
    if (pos >= end) return 'the value is truncated';
    const b = buf[pos++]!;
    let open = -1; // item count of a container opened by this byte
    let openIsMap = 0;

    if (b <= 0x7f || b >= 0xe0) continue; // positive / negative fixint
    if (b <= 0x8f) {
      open = (b & 0x0f) * 2;
      openIsMap = 1;
    } else if (b <= 0x9f) {
      open = b & 0x0f;
    } else if (b <= 0xbf) {
      const len = b & 0x1f;
      if (isKey && len === 9 && isProtoKey(buf, pos)) return 'a map key is "__proto__"';
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
          if (pos + 1 > end) return 'the value is truncated';
          const len = buf[pos]!;
          if (b === 0xd9 && isKey && len === 9 && isProtoKey(buf, pos + 1)) return 'a map key is "__proto__"';
          pos += 1 + len;
          break;
        }
        case 0xc5: // bin 16
        case 0xda: { // str 16
          if (pos + 2 > end) return 'the value is truncated';
          const len = (buf[pos]! << 8) | buf[pos + 1]!;
          // A non-minimal encoding must not smuggle the key past the check above.
          if (b === 0xda && isKey && len === 9 && isProtoKey(buf, pos + 2)) return 'a map key is "__proto__"';
          pos += 2 + len;
          break;
        }
        case 0xc6: // bin 32
        case 0xdb: { // str 32
          if (pos + 4 > end) return 'the value is truncated';
          const len = readU32(buf, pos);
          if (b === 0xdb && isKey && len === 9 && isProtoKey(buf, pos + 4)) return 'a map key is "__proto__"';
          pos += 4 + len;
          break;
        }
        case 0xc7: { // ext 8: only the 12-byte timestamp
          if (pos + 2 > end) return 'the value is truncated';
          const len = buf[pos]!;
          const type = buf[pos + 1]!;
          if (type !== ExtType.TIMESTAMP || len !== 12) return `extension type ${signedExt(type)} (length ${len}) is not allowed`;
          pos += 2 + len;
          break;
        }
        case 0xc8: // ext 16
        case 0xc9: // ext 32
          if (pos + (b === 0xc8 ? 3 : 5) > end) return 'the value is truncated';
          return `extension type ${signedExt(buf[pos + (b === 0xc8 ? 2 : 4)]!)} is not allowed`;
        case 0xca: pos += 4; break; // float 32
        case 0xcb: pos += 8; break; // float 64
        case 0xcc: case 0xd0: pos += 1; break;
        case 0xcd: case 0xd1: pos += 2; break;
        case 0xce: case 0xd2: pos += 4; break;
        case 0xcf: case 0xd3: pos += 8; break;
        case 0xd4: { // fixext 1: undefined, or a Set / Map tag wrapping the next value
          if (pos + 2 > end) return 'the value is truncated';
          const type = buf[pos]!;
          pos += 2;
          if (type === ExtType.UNDEFINED) break;
          if (type === ExtType.SET || type === ExtType.MAP) {
            open = 1; // the tagged value is one nested level
            break;
          }
          return `extension type ${signedExt(type)} is not allowed`;
        }
        case 0xd6: // fixext 4: timestamp 32
        case 0xd7: { // fixext 8: timestamp 64
          if (pos + 1 > end) return 'the value is truncated';
          const type = buf[pos]!;
          if (type !== ExtType.TIMESTAMP) return `extension type ${signedExt(type)} is not allowed`;
          pos += 1 + (b === 0xd6 ? 4 : 8);
          break;
        }
        case 0xd5: // fixext 2
        case 0xd8: // fixext 16
          if (pos + 1 > end) return 'the value is truncated';
          return `extension type ${signedExt(buf[pos]!)} is not allowed`;
        case 0xdc: // array 16
          if (pos + 2 > end) return 'the value is truncated';
          open = (buf[pos]! << 8) | buf[pos + 1]!;
          pos += 2;
          break;
        case 0xdd: // array 32
          if (pos + 4 > end) return 'the value is truncated';
          open = readU32(buf, pos);
          pos += 4;
          break;
        case 0xde: // map 16
          if (pos + 2 > end) return 'the value is truncated';
          open = ((buf[pos]! << 8) | buf[pos + 1]!) * 2;
          openIsMap = 1;
          pos += 2;
          break;
        case 0xdf: // map 32
          if (pos + 4 > end) return 'the value is truncated';
          open = readU32(buf, pos) * 2;
          openIsMap = 1;
          pos += 4;
          break;
      }
    }
    if (pos > end) return 'the value is truncated';
    if (open > 0) {
      // Every item takes at least one byte: refuse counts the frame cannot hold.
      if (open > end - pos) return `a container declares ${openIsMap ? open / 2 : open} items but only ${end - pos} bytes remain`;
      if (depth >= maxDepth) return `nesting is deeper than ${maxDepth} levels`;
      stack[depth] = remaining;
      mapStack[depth] = inMap;
      depth++;
      remaining = open;
      inMap = openIsMap;
    } else if (open === 0 && depth >= maxDepth) {
      // An empty container is a level too (the encoder counts it so).
      return `nesting is deeper than ${maxDepth} levels`;
    }
  }
  if (pos !== end) return `${end - pos} bytes follow the value`;
  return undefined;
}

let stack = new Float64Array(128);
let mapStack = new Uint8Array(128);

const PROTO = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f]; // "__proto__"

function isProtoKey(buf: Uint8Array, at: number): boolean {
  if (at + 9 > buf.length) return false;
  for (let i = 0; i < 9; i++) if (buf[at + i] !== PROTO[i]) return false;
  return true;
}

function readU32(buf: Uint8Array, at: number): number {
  return buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!);
}

function signedExt(type: number): number {
  return type > 127 ? type - 256 : type;
}
