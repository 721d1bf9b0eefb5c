"""A reference Python client for interprocess-converse servers (docs/PROTOCOL.md).

Standard library plus the stock ``msgpack`` package::

    from interprocess_converse import Client

    with Client.connect("/run/user/1000/app.sock") as client:
        print(client.ask({"type": "add", "a": 1, "b": 2}))
"""
from .client import Client, ConverseError, ErrorPayload, HandlerContext, PendingAsk, RemoteInfo
from .trace import TraceContext
from .codec import UNDEFINED, DecodeError, EncodeError, WireMap, WireSet, pack, timestamp, unpack
from .wire import FrameKind, Handshake, ProtocolViolation

__all__ = [
    "Client",
    "ConverseError",
    "DecodeError",
    "EncodeError",
    "ErrorPayload",
    "FrameKind",
    "HandlerContext",
    "Handshake",
    "PendingAsk",
    "ProtocolViolation",
    "RemoteInfo",
    "TraceContext",
    "UNDEFINED",
    "WireMap",
    "WireSet",
    "pack",
    "timestamp",
    "unpack",
]
