"""Handshake messages and frames (docs/PROTOCOL.md §3 and §4)."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from .codec import DecodeError, pack, unpack

MAGIC = b"\x89ICV"
PROTOCOL_VERSION = 1
HELLO, WELCOME, REJECT = 1, 2, 3
FLAG_CHECKSUM = 0x01
HEADER_SIZE = 14
MAX_EXTENSION = 4096
MIN_MAX_MESSAGE_SIZE = 256


class FrameKind:
    TELL = 0
    ASK = 1
    REPLY = 2
    ERROR = 3
    CANCEL = 4
    GOODBYE = 5
    PING = 6
    PONG = 7
    STREAM_ITEM = 8
    STREAM_END = 9
    CREDIT = 10


#: Element count of each kind (ASK may also have 4, with its options map), §6.
ARITY = {0: 2, 1: 3, 2: 3, 3: 3, 4: 2, 5: 1, 6: 1, 7: 1, 8: 3, 9: 2, 10: 3}


@dataclass
class Handshake:
    version: int
    kind: int
    checksum: bool
    max_message_size: int
    extension: dict[str, Any] = field(default_factory=dict)


class ProtocolViolation(Exception):
    """The peer broke the protocol; ``code`` is the error code of §9."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def encode_handshake(kind: int, *, checksum: bool, max_message_size: int, extension: dict[str, Any] | None = None) -> bytes:
    ext = pack(extension) if extension else b""
    return MAGIC + struct.pack(">HBBIH", PROTOCOL_VERSION, kind, FLAG_CHECKSUM if checksum else 0, max_message_size, len(ext)) + ext


def read_handshake(read_exact) -> Handshake:
    """Read one handshake message with ``read_exact(n)``; fails on the first wrong magic byte."""
    header = b""
    for i in range(4):
        byte = read_exact(1)
        if byte != MAGIC[i : i + 1]:
            raise ProtocolViolation("HANDSHAKE_FAILED", f"byte {i} of the handshake was {byte.hex()}, not the magic")
        header += byte
    header += read_exact(HEADER_SIZE - 4)
    version, kind, flags, max_size, ext_length = struct.unpack(">HBBIH", header[4:])
    if ext_length > MAX_EXTENSION:
        raise ProtocolViolation("HANDSHAKE_FAILED", f"a {ext_length}-byte handshake extension is over the limit")
    extension: dict[str, Any] = {}
    if ext_length:
        try:
            decoded = unpack(read_exact(ext_length))
        except DecodeError as error:
            raise ProtocolViolation("HANDSHAKE_FAILED", f"bad handshake extension: {error}") from error
        if not isinstance(decoded, dict):
            raise ProtocolViolation("HANDSHAKE_FAILED", "the handshake extension is not a map")
        extension = decoded
    message = Handshake(version, kind, bool(flags & FLAG_CHECKSUM), max_size, extension)
    if kind != REJECT and version == PROTOCOL_VERSION and max_size < MIN_MAX_MESSAGE_SIZE:
        raise ProtocolViolation("HANDSHAKE_FAILED", f"the peer declared maxMessageSize {max_size}, below {MIN_MAX_MESSAGE_SIZE}")
    return message


def encode_frame(body: bytes, checksum: bool) -> bytes:
    n = len(body)
    if n <= 0xFB:
        prefix = bytes([n])
    elif n <= 0xFFFF:
        prefix = b"\xfc" + struct.pack(">H", n)
    else:
        prefix = b"\xfd" + struct.pack(">I", n)
    return prefix + (struct.pack(">I", zlib.crc32(body)) if checksum else b"") + body


def read_frame(read_exact, checksum: bool, max_message_size: int) -> bytes:
    """Read one frame's body; checks the declared size before reading the body, then the CRC."""
    marker = read_exact(1)[0]
    if marker <= 0xFB:
        length = marker
    elif marker == 0xFC:
        length = struct.unpack(">H", read_exact(2))[0]
    elif marker == 0xFD:
        length = struct.unpack(">I", read_exact(4))[0]
    elif marker == 0xFE:
        length = struct.unpack(">Q", read_exact(8))[0]
    else:
        raise ProtocolViolation("PROTOCOL_ERROR", "the reserved length marker 0xFF")
    if length > max_message_size:
        raise ProtocolViolation("RECEIVED_MESSAGE_TOO_LARGE", f"a frame declares {length} bytes, over the limit of {max_message_size}")
    crc = struct.unpack(">I", read_exact(4))[0] if checksum else None
    body = read_exact(length) if length else b""
    if crc is not None and crc != zlib.crc32(body):
        raise ProtocolViolation("CHECKSUM_MISMATCH", "a frame's CRC-32 does not match its body")
    return body


def decode_envelope(body: bytes, *, tell_options: bool = False) -> list[Any]:
    """Decode a frame body and check its envelope shape (§6): exact arity, integer kind/id/credit.

    ``tell_options``: this side said ``traceContext: 1``, so a TELL may have a third element (§6.9)."""
    try:
        message = unpack(body)
    except DecodeError as error:
        raise ProtocolViolation("DECODE_FAILED", str(error)) from error
    if not isinstance(message, list) or not message:
        raise ProtocolViolation("PROTOCOL_ERROR", "a frame body must be an array")
    kind = message[0]
    if type(kind) is not int or kind not in ARITY:
        raise ProtocolViolation("PROTOCOL_ERROR", f"unknown frame kind {kind!r}")
    if len(message) != ARITY[kind] and not (len(message) == ARITY[kind] + 1 and (kind == FrameKind.ASK or (kind == FrameKind.TELL and tell_options))):
        raise ProtocolViolation("PROTOCOL_ERROR", f"frame kind {kind} with {len(message)} elements")
    # (A float kind, id or count decodes to a Python float, so `type(x) is int` refuses 5.0.)
    if kind in (FrameKind.TELL, FrameKind.GOODBYE, FrameKind.PING, FrameKind.PONG):
        return message
    frame_id = message[1]
    if type(frame_id) is not int or not 0 <= frame_id <= 0xFFFFFFFF:
        raise ProtocolViolation("PROTOCOL_ERROR", f"frame kind {kind} needs an integer id in 0 … 2**32-1")
    if kind == FrameKind.CREDIT and (type(message[2]) is not int or not 1 <= message[2] <= 0xFFFFFFFF):
        raise ProtocolViolation("PROTOCOL_ERROR", "a CREDIT's count must be an integer in 1 … 2**32-1")
    return message
