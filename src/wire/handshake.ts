import { ConverseError, type ErrorCode } from '../errors.js';
import { HANDSHAKE_HEADER_SIZE, HandshakeFlags, HandshakeKind, MAGIC, MAX_HANDSHAKE_EXTENSION, PROTOCOL_VERSION } from './constants.js';
import { decodeBody, encodeValue } from './codec.js';

/**
 * The handshake (docs/PROTOCOL.md §2): the client sends HELLO, the server answers WELCOME or
 * REJECT. Each message is a 14-byte header (magic, version, kind, flags, max message size,
 * extension length) and an optional MessagePack map.
 */

/** The smallest maxMessageSize a peer may declare (docs/PROTOCOL.md §3.1). */
export const MIN_MAX_MESSAGE_SIZE = 256;

export interface HandshakeMessage {
  version: number;
  kind: number;
  checksum: boolean;
  /** The largest frame body the sender of this message accepts. */
  maxMessageSize: number;
  extension: Record<string, unknown>;
}

export function encodeHandshake(kind: number, options: { checksum: boolean; maxMessageSize: number; extension?: Record<string, unknown> }): Buffer {
  const ext = options.extension && Object.keys(options.extension).length > 0 ? encodeValue(options.extension) : undefined;
  const out = Buffer.alloc(HANDSHAKE_HEADER_SIZE + (ext?.length ?? 0));
  out.set(MAGIC, 0);
  out.writeUInt16BE(PROTOCOL_VERSION, 4);
  out[6] = kind;
  out[7] = options.checksum ? HandshakeFlags.CHECKSUM : 0;
  out.writeUInt32BE(Math.min(options.maxMessageSize, 0xffffffff), 8);
  out.writeUInt16BE(ext?.length ?? 0, 12);
  if (ext) ext.copy(out, HANDSHAKE_HEADER_SIZE);
  return out;
}

export function encodeReject(code: ErrorCode, message: string, maxMessageSize: number): Buffer {
  return encodeHandshake(HandshakeKind.REJECT, { checksum: false, maxMessageSize, extension: { code, message } });
}

/**
 * Reads one handshake message from a byte stream that may arrive in any split. Refuses a
 * foreign protocol on the first wrong magic byte (an HTTP request line fails on byte one).
 */
export class HandshakeReader {
  private readonly buffer = Buffer.alloc(HANDSHAKE_HEADER_SIZE + MAX_HANDSHAKE_EXTENSION);
  private fill = 0;
  private needed = HANDSHAKE_HEADER_SIZE;

  /**
   * Feed a chunk. Returns the message and the bytes after it once complete, `undefined` while
   * incomplete; throws `HANDSHAKE_FAILED` for a foreign protocol.
   */
  push(chunk: Buffer): { message: HandshakeMessage; rest: Buffer } | undefined {
    let pos = 0;
    while (pos < chunk.length && this.fill < this.needed) {
      const byte = chunk[pos++]!;
      if (this.fill < MAGIC.length && byte !== MAGIC[this.fill]) {
        throw new ConverseError(
          'HANDSHAKE_FAILED',
          `The peer is not speaking the interprocess-converse protocol (byte ${this.fill} of the handshake was 0x${byte.toString(16).padStart(2, '0')}, expected 0x${MAGIC[this.fill]!.toString(16)}). Check that both ends use interprocess-converse and the right socket.`,
        );
      }
      this.buffer[this.fill++] = byte;
      if (this.fill === HANDSHAKE_HEADER_SIZE) {
        const extLength = this.buffer.readUInt16BE(12);
        if (extLength > MAX_HANDSHAKE_EXTENSION) {
          throw new ConverseError('HANDSHAKE_FAILED', `The peer's handshake declares a ${extLength}-byte extension, over the ${MAX_HANDSHAKE_EXTENSION}-byte limit.`);
        }
        this.needed = HANDSHAKE_HEADER_SIZE + extLength;
      }
    }
    if (this.fill < this.needed) return undefined;
    const b = this.buffer;
    let extension: Record<string, unknown> = {};
    if (this.needed > HANDSHAKE_HEADER_SIZE) {
      let decoded: unknown;
      try {
        decoded = decodeBody(b.subarray(HANDSHAKE_HEADER_SIZE, this.needed));
      } catch (error) {
        throw new ConverseError('HANDSHAKE_FAILED', `The peer's handshake extension is not a valid MessagePack map.`, { cause: error });
      }
      // Only a MessagePack map decodes to a plain object (a Set or Map extension, bin or timestamp decode to other objects).
      if (typeof decoded !== 'object' || decoded === null || Object.getPrototypeOf(decoded) !== Object.prototype) {
        throw new ConverseError('HANDSHAKE_FAILED', `The peer's handshake extension must be a MessagePack map.`);
      }
      extension = decoded as Record<string, unknown>;
    }
    const message: HandshakeMessage = {
      version: b.readUInt16BE(4),
      kind: b[6]!,
      checksum: (b[7]! & HandshakeFlags.CHECKSUM) !== 0,
      maxMessageSize: b.readUInt32BE(8),
      extension,
    };
    // A limit too small for the library's own control and error frames (GOODBYE, CANCEL, the
    // fallback ERROR) would make them fail to encode on a path with no caller to take the error.
    // (A REJECT's size is informational, and another version is refused by its version.)
    if (message.kind !== HandshakeKind.REJECT && message.version === PROTOCOL_VERSION && message.maxMessageSize < MIN_MAX_MESSAGE_SIZE) {
      throw new ConverseError(
        'HANDSHAKE_FAILED',
        `The peer declared a maxMessageSize of ${message.maxMessageSize} bytes; the protocol needs at least ${MIN_MAX_MESSAGE_SIZE}.`,
      );
    }
    return { message, rest: chunk.subarray(pos) };
  }
}

export function versionMismatch(peerVersion: number, side: 'client' | 'server'): ConverseError {
  return new ConverseError(
    'VERSION_MISMATCH',
    `The ${side} speaks protocol version ${peerVersion}, this side speaks version ${PROTOCOL_VERSION}. Upgrade interprocess-converse so that both ends use the same protocol version.`,
  );
}
