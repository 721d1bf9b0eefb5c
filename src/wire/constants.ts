/**
 * Wire-format constants. docs/PROTOCOL.md is the normative description; keep the two in step.
 *
 * Stability promise: the first 14 bytes of the handshake (magic, version, kind, flags,
 * max message size, extension length) and the REJECT kind keep this layout in every future
 * version, so any two versions can always tell each other "I speak version N" and part cleanly.
 */

/** 0x89 'I' 'C' 'V': the high first byte makes text protocols (HTTP, JSON) fail on byte one. */
export const MAGIC = Uint8Array.of(0x89, 0x49, 0x43, 0x56);
export const PROTOCOL_VERSION = 1;

export const HANDSHAKE_HEADER_SIZE = 14;
/** Largest handshake extension we accept: it is read before any limit was agreed. */
export const MAX_HANDSHAKE_EXTENSION = 4096;

export const HandshakeKind = {
  HELLO: 0x01,
  WELCOME: 0x02,
  REJECT: 0x03,
} as const;

export const HandshakeFlags = {
  CHECKSUM: 0x01,
} as const;

/** Envelope kinds: the first element of every frame's MessagePack array. */
export const FrameKind = {
  TELL: 0,
  ASK: 1,
  REPLY: 2,
  ERROR: 3,
  CANCEL: 4,
  GOODBYE: 5,
  /** Keepalive probe: [6]. Answered at once with PONG. */
  PING: 6,
  /** Keepalive answer: [7]. */
  PONG: 7,
  /** One item of a streamed reply: [8, id, value]. */
  STREAM_ITEM: 8,
  /** A streamed reply ended: [9, id]. */
  STREAM_END: 9,
  /** The asker of a stream allows n more items: [10, id, n]. */
  CREDIT: 10,
} as const;

/**
 * Length prefix markers (docs/PROTOCOL.md §4.1): one byte up to 251, else a marker and a big-endian
 * u16/u32/u64. The shape resembles async-io-typed's, but the bytes differ (big-endian lengths, no
 * bincode): this is not the Rust crate's format.
 */
export const LENGTH_U16 = 0xfc;
export const LENGTH_U32 = 0xfd;
export const LENGTH_U64 = 0xfe;
export const LENGTH_RESERVED = 0xff;
/** Largest length a single length byte carries. */
export const LENGTH_INLINE_MAX = 0xfb;
export const MAX_LENGTH_PREFIX = 9;
export const CHECKSUM_SIZE = 4;

/**
 * 1 MiB, as the public contract fixes it: a bound on what one peer can make us buffer for one frame.
 * Larger messages need `maxMessageSize` raised on both sides (the size errors say so, with the size
 * to raise it to), or are better sent in parts (a streamed reply). See docs/PROTOCOL.md §3.3.
 */
export const DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024;
export const DEFAULT_REPLY_TIMEOUT = 5000;
export const DEFAULT_HANDSHAKE_TIMEOUT = 5000;
export const DEFAULT_CONNECT_TIMEOUT = 5000;
export const DEFAULT_CLOSE_TIMEOUT = 5000;
/** A frame (once its first byte arrived) must be complete within this many ms. */
export const DEFAULT_FRAME_TIMEOUT = 30_000;
/** User sends wait while this many bytes are queued on the socket. */
export const DEFAULT_MAX_WRITE_BUFFER = 8 * 1024 * 1024;
/** Deepest nesting of arrays/maps/extensions accepted in one message (msgpackr decodes recursively). */
export const MAX_NESTING_DEPTH = 100;

/**
 * MessagePack extension types allowed on the wire (docs/PROTOCOL.md §5.2). Each one carries its
 * whole value inside the extension's data, so a stock decoder reads a frame as exactly one value
 * and can skip or hook an extension it does not know.
 */
export const ExtType = {
  /** fixext 1, type 0: `undefined` (msgpackr / notepack's convention); the data byte is ignored. */
  UNDEFINED: 0x00,
  /** 'S': a Set; the data is one MessagePack array of the members. */
  SET: 0x53,
  /** 'M': a Map with keys of any type; the data is one flat MessagePack array [k0, v0, k1, v1, …]. */
  MAP: 0x4d,
  /** The standard timestamp extension (-1). */
  TIMESTAMP: 0xff,
} as const;
