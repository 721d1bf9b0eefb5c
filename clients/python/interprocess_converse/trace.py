"""W3C trace context as it travels on the wire (docs/PROTOCOL.md §6.9).

The client carries it without depending on OpenTelemetry: an ask or tell may be given a
:class:`TraceContext` to send, and a handler sees the one the server's ask or tell carried
(``ctx.trace``), already checked. A bridge to an OpenTelemetry SDK is a few lines in the
application: ``TraceContext.from_headers`` of what its propagator injects, and ``to_headers`` for
what it extracts.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Optional

#: The longest ``traceparent`` read (version 00 is 55 characters; later versions may append fields).
MAX_TRACEPARENT_LENGTH = 256
#: The longest ``tracestate`` kept; a longer one is dropped (the ``traceparent`` is still used).
MAX_TRACESTATE_LENGTH = 512

_FIELDS = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = "0" * 32
_ZERO_PARENT = "0" * 16


@dataclass(frozen=True)
class TraceContext:
    """A checked ``traceparent`` (version 00 form) and an optional ``tracestate``."""

    trace_id: str
    parent_id: str
    flags: str = "01"
    tracestate: Optional[str] = None

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags}"

    @property
    def sampled(self) -> bool:
        return int(self.flags, 16) & 1 == 1

    @classmethod
    def new(cls, *, sampled: bool = True) -> "TraceContext":
        """The start of a new trace (random trace and parent ids)."""
        return cls(secrets.token_hex(16), _nonzero_hex(8), "01" if sampled else "00")

    def child(self) -> "TraceContext":
        """The same trace with a new parent id: what to send on from inside a handler."""
        return TraceContext(self.trace_id, _nonzero_hex(8), self.flags, self.tracestate)

    @classmethod
    def from_headers(cls, traceparent: Any, tracestate: Any = None) -> Optional["TraceContext"]:
        """The context the header values name, or None when ``traceparent`` is malformed (§6.9's receiving rules)."""
        if not isinstance(traceparent, str) or len(traceparent) > MAX_TRACEPARENT_LENGTH:
            return None
        match = _FIELDS.match(traceparent)
        if match is None:
            return None
        version, trace_id, parent_id, flags = match.groups()
        rest = traceparent[match.end():]
        if version == "ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_PARENT:
            return None
        if version == "00" and rest:
            return None
        if rest and not rest.startswith("-"):
            return None
        if not isinstance(tracestate, str) or tracestate == "" or len(tracestate) > MAX_TRACESTATE_LENGTH:
            tracestate = None
        return cls(trace_id, parent_id, flags, tracestate)

    def to_headers(self) -> dict[str, str]:
        """The options-map keys this context travels as."""
        headers = {"traceparent": self.traceparent}
        if self.tracestate is not None:
            headers["tracestate"] = self.tracestate
        return headers


def read_carrier(options: Any) -> Optional[TraceContext]:
    """The trace context in an ASK's options map or a TELL's third element; None if absent or malformed."""
    if not isinstance(options, dict):
        return None
    return TraceContext.from_headers(options.get("traceparent"), options.get("tracestate"))


def _nonzero_hex(size: int) -> str:
    while True:
        value = secrets.token_hex(size)
        if value.strip("0"):
            return value
