"""A client of an interprocess-converse server (docs/PROTOCOL.md), on threads.

A reader thread reads frames and settles asks; each ASK from the server runs its handler on a
thread of its own, so a handler may ask the server back. Every send goes through one lock.
"""
from __future__ import annotations

import itertools
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Optional, TypedDict

from .codec import EncodeError, pack
from .trace import TraceContext, read_carrier
from .wire import (
    HELLO,
    PROTOCOL_VERSION,
    REJECT,
    WELCOME,
    FrameKind,
    ProtocolViolation,
    decode_envelope,
    encode_frame,
    encode_handshake,
    read_frame,
    read_handshake,
)

#: The codes of docs/PROTOCOL.md §9.
ERROR_CODES = frozenset(
    "TIMEOUT ABORTED CONNECTION_CLOSED MESSAGE_TOO_LARGE RECEIVED_MESSAGE_TOO_LARGE VERSION_MISMATCH "
    "HANDSHAKE_FAILED CHECKSUM_MISMATCH DECODE_FAILED NO_HANDLER REMOTE_ERROR ADDRESS_IN_USE SERVER_FULL "
    "ACCESS_DENIED INVALID_MESSAGE NOT_ACCEPTED ENCODE_FAILED INVALID_NAME CONNECT_FAILED PROTOCOL_ERROR "
    "FRAME_TIMEOUT PEER_NOT_READING INVALID_ARGUMENT".split()
)
#: Codes an ERROR frame may carry; anything else reads as REMOTE_ERROR (§6.4).
WIRE_ERROR_CODES = frozenset({"NO_HANDLER", "REMOTE_ERROR", "CONNECTION_CLOSED", "INVALID_MESSAGE", "NOT_ACCEPTED"})


@dataclass
class RemoteInfo:
    """What the peer's handler threw (§6.4)."""

    name: str
    message: str
    code: Optional[str] = None


class ErrorPayload(TypedDict, total=False):
    """The map of an ERROR frame (§6.4)."""

    code: str
    message: str
    remote: dict
    issues: list


class ConverseError(Exception):
    """A failure with a stable ``code`` from docs/PROTOCOL.md §9."""

    def __init__(self, code: str, message: str, remote: Optional[RemoteInfo] = None, issues: Optional[list] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.remote = remote
        self.issues = issues or []


@dataclass
class HandlerContext:
    """What a handler gets besides the event."""

    connection: "Client"
    #: Set when the server cancels the ask (or the connection closes): stop working.
    cancelled: threading.Event
    #: True when the server asked for a streamed answer: the handler may return an iterator.
    streaming: bool
    #: The W3C trace context the server's ask or tell carried (§6.9), checked; None without one.
    trace: Optional[TraceContext] = None


Handler = Callable[[dict, HandlerContext], Any]


@dataclass
class _Pending:
    event_type: str
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: Optional[ConverseError] = None
    #: For a stream: ("item", v) / ("end", None) / ("reply", v) / ("error", e) in order.
    items: Optional["queue.Queue[tuple[str, Any]]"] = None


class PendingAsk:
    """An ask in progress: ``result()`` waits for the answer, ``cancel()`` gives up on it."""

    def __init__(self, client: "Client", ask_id: int, pending: _Pending, timeout: float) -> None:
        self._client = client
        self.id = ask_id
        self._pending = pending
        self._deadline = time.monotonic() + timeout

    def result(self) -> Any:
        if not self._pending.done.wait(max(0.0, self._deadline - time.monotonic())):
            self._client._give_up(self.id, "TIMEOUT", f'no reply to "{self._pending.event_type}" in time')
        if self._pending.error is not None:
            raise self._pending.error
        return self._pending.value

    def cancel(self) -> None:
        self._client._give_up(self.id, "ABORTED", f'the ask "{self._pending.event_type}" was cancelled')


class _Reader:
    """Exact reads from a socket; EOFError at the end of the stream."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.in_frame = False

    def exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise EOFError
            self.buffer += chunk
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out


class Client:
    """One connection to a server. Use :meth:`connect`."""

    def __init__(self, sock: socket.socket, handlers: Mapping[str, Handler], checksum: bool, send_limit: int, max_message_size: int, reply_timeout: float, reader: _Reader, peer_protocol: Optional[dict], peer_reads_trace: bool = False, max_in_flight: int = 64) -> None:
        self._sock = sock
        #: Handlers of the server's asks and tells running at once; at the bound, reading pauses.
        self._handler_slots = threading.Semaphore(max_in_flight)
        #: The server said ``traceContext: 1`` (§3.1): a TELL may carry trace context to it.
        self.peer_reads_trace = peer_reads_trace
        self._handlers = dict(handlers)
        self._checksum = checksum
        self._send_limit = send_limit
        self._max_message_size = max_message_size
        self.reply_timeout = reply_timeout
        self._reader = reader
        self.peer_protocol = peer_protocol
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count()
        self._handling: dict[int, threading.Event] = {}
        self._credit: dict[int, _Credit] = {}
        self._we_said_goodbye = False
        self._peer_said_goodbye = False
        self._write_ended = False
        #: Set once the connection is closed (cleanly or not).
        self.closed = threading.Event()
        #: Why the connection closed, when not cleanly (a ConverseError), else None.
        self.close_reason: Optional[ConverseError] = None
        self._thread = threading.Thread(target=self._read_loop, name="converse-reader", daemon=True)
        self._thread.start()

    # ── Connecting ────────────────────────────────────────────────────────────────────────

    @classmethod
    def connect(
        cls,
        path: str,
        *,
        handlers: Optional[Mapping[str, Handler]] = None,
        checksum: bool = False,
        max_message_size: int = 4 * 1024 * 1024,
        timeout: float = 5.0,
        reply_timeout: float = 5.0,
        protocol: Optional[dict] = None,
        max_in_flight: int = 64,
    ) -> "Client":
        """Connect to the server at ``path`` and complete the handshake (§3).

        ``max_in_flight``: how many of the server's asks and tells are handled at once (each on a
        thread of its own); at the bound the client stops reading until one finishes, so a server
        cannot make it start threads without end."""
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ConverseError("INVALID_ARGUMENT", "max_in_flight must be an integer ≥ 1")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as error:
            sock.close()
            code = "ACCESS_DENIED" if isinstance(error, PermissionError) else "CONNECT_FAILED"
            raise ConverseError(code, f"cannot connect to {path}: {error}") from error
        reader = _Reader(sock)
        try:
            # traceContext: 1 — this client reads trace context on the server's TELLs (§3.1, §6.9).
            extension: dict = {"traceContext": 1}
            if protocol:
                extension["protocol"] = protocol
            sock.sendall(encode_handshake(HELLO, checksum=checksum, max_message_size=max_message_size, extension=extension))
            answer = read_handshake(reader.exact)
        except ProtocolViolation as violation:
            sock.close()
            raise ConverseError(violation.code, str(violation)) from violation
        except (EOFError, OSError) as error:
            sock.close()
            raise ConverseError("HANDSHAKE_FAILED", f"the server closed the connection during the handshake ({error!r})") from error
        if answer.kind == REJECT:
            sock.close()
            code = answer.extension.get("code")
            message = answer.extension.get("message", "no reason given")
            if code not in ERROR_CODES:
                code = "VERSION_MISMATCH" if answer.version != PROTOCOL_VERSION else "HANDSHAKE_FAILED"
            raise ConverseError(code, f"the server refused the connection: {message}")
        if answer.version != PROTOCOL_VERSION:
            sock.close()
            raise ConverseError("VERSION_MISMATCH", f"the server speaks protocol version {answer.version}, this client {PROTOCOL_VERSION}")
        if answer.kind != WELCOME:
            sock.close()
            raise ConverseError("HANDSHAKE_FAILED", f"the server answered with handshake kind {answer.kind}, not WELCOME")
        peer_protocol = answer.extension.get("protocol") if isinstance(answer.extension.get("protocol"), dict) else None
        if protocol and peer_protocol and protocol.get("name") and peer_protocol.get("name") and protocol["name"] != peer_protocol["name"]:
            sock.close()
            raise ConverseError("HANDSHAKE_FAILED", f'the server speaks protocol "{peer_protocol["name"]}", not "{protocol["name"]}"')
        sock.settimeout(None)
        peer_reads_trace = answer.extension.get("traceContext") == 1
        return cls(sock, handlers or {}, answer.checksum, min(max_message_size, answer.max_message_size), max_message_size, reply_timeout, reader, peer_protocol, peer_reads_trace, max_in_flight)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ── Asking and telling ────────────────────────────────────────────────────────────────

    def ask(self, event: dict, *, timeout: Optional[float] = None, trace: Optional[TraceContext] = None) -> Any:
        """Ask the server and wait for its answer; raises ConverseError on ERROR or TIMEOUT.

        ``trace``: W3C trace context for the server's handler (§6.9), in the ASK's options map."""
        return self.start_ask(event, timeout=timeout, trace=trace).result()

    def start_ask(self, event: dict, *, timeout: Optional[float] = None, trace: Optional[TraceContext] = None) -> PendingAsk:
        """Send an ASK and return at once (``result()`` waits, ``cancel()`` sends CANCEL)."""
        ask_id, pending = self._send_ask(event, None, trace)
        return PendingAsk(self, ask_id, pending, self.reply_timeout if timeout is None else timeout)

    def tell(self, event: dict, *, trace: Optional[TraceContext] = None) -> None:
        """Send a one-way message (TELL); it is never answered.

        ``trace`` travels only to a server that said ``traceContext: 1`` (§6.9); to any other the
        TELL keeps its two elements (a third would be a protocol error to it)."""
        self._check_sendable(event)
        if trace is not None and self.peer_reads_trace:
            self._write([FrameKind.TELL, event, trace.to_headers()])
        else:
            self._write([FrameKind.TELL, event])

    def stream(self, event: dict, *, window: int = 16, timeout: Optional[float] = None, trace: Optional[TraceContext] = None) -> Iterator[Any]:
        """Ask for a streamed answer (§6.7): yields the items, granting credit as they are consumed."""
        if not isinstance(window, int) or not 1 <= window <= 0xFFFFFFFF:
            raise ConverseError("INVALID_ARGUMENT", "window must be an integer in 1 … 2**32-1")
        ask_id, pending = self._send_ask(event, window, trace)
        return self._items(ask_id, pending, window, self.reply_timeout if timeout is None else timeout)

    def _items(self, ask_id: int, pending: _Pending, window: int, timeout: float) -> Iterator[Any]:
        consumed = 0
        finished = False
        try:
            while True:
                try:
                    kind, value = pending.items.get(timeout=timeout)  # type: ignore[union-attr]
                except queue.Empty:
                    self._give_up(ask_id, "TIMEOUT", f'no stream item for "{pending.event_type}" in time')
                    raise ConverseError("TIMEOUT", f'no stream item for "{pending.event_type}" in time') from None
                if kind == "item":
                    yield value
                    consumed += 1
                    if consumed >= max(1, window // 2):
                        self._write_control([FrameKind.CREDIT, ask_id, consumed])
                        consumed = 0
                elif kind == "reply":
                    finished = True
                    yield value
                    return
                elif kind == "end":
                    finished = True
                    return
                else:
                    finished = True
                    raise value
        finally:
            if not finished:
                self._give_up(ask_id, "ABORTED", "the stream was closed before its end")

    def _check_sendable(self, event: Any) -> None:
        if self.closed.is_set() or self._we_said_goodbye:
            raise ConverseError("CONNECTION_CLOSED", "the connection is closing or closed")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ConverseError("INVALID_ARGUMENT", 'a message is a dict with a str "type"')

    def _send_ask(self, event: dict, window: Optional[int], trace: Optional[TraceContext]) -> tuple[int, _Pending]:
        self._check_sendable(event)
        pending = _Pending(event["type"], items=queue.Queue() if window is not None else None)
        with self._state_lock:
            ask_id = next(self._ids) % 2**32
            while ask_id in self._pending:
                ask_id = next(self._ids) % 2**32
            self._pending[ask_id] = pending
        try:
            options: dict = {} if trace is None else trace.to_headers()
            if window is not None:
                options["stream"] = window
            self._write([FrameKind.ASK, ask_id, event, options] if options else [FrameKind.ASK, ask_id, event])
        except ConverseError:
            with self._state_lock:
                self._pending.pop(ask_id, None)
            raise
        return ask_id, pending

    def _give_up(self, ask_id: int, code: str, message: str) -> None:
        """Stop waiting for ask ``ask_id``: CANCEL it (§6.5) and fail its waiter with ``code``."""
        with self._state_lock:
            pending = self._pending.pop(ask_id, None)
        if pending is None:
            return
        self._write_control([FrameKind.CANCEL, ask_id])
        self._settle(pending, error=ConverseError(code, message))
        self._maybe_end()

    # ── Writing ───────────────────────────────────────────────────────────────────────────

    def _write(self, envelope: list) -> None:
        try:
            body = pack(envelope)
        except EncodeError as error:
            raise ConverseError("ENCODE_FAILED", str(error)) from error
        if len(body) > self._send_limit:
            raise ConverseError("MESSAGE_TOO_LARGE", f"the message is {len(body)} bytes, over the limit of {self._send_limit} agreed with the server")
        self._write_body(body)

    def _write_control(self, envelope: list) -> None:
        try:
            self._write(envelope)
        except ConverseError:
            pass  # the connection is gone: nothing to tell

    def _write_body(self, body: bytes) -> None:
        with self._write_lock:
            if self._write_ended or self.closed.is_set():
                raise ConverseError("CONNECTION_CLOSED", "the connection is closed")
            try:
                self._sock.sendall(encode_frame(body, self._checksum))
            except OSError as error:
                raise ConverseError("CONNECTION_CLOSED", f"the connection was lost: {error}") from error

    # ── Reading ───────────────────────────────────────────────────────────────────────────

    def _read_loop(self) -> None:
        reason: Optional[ConverseError] = None
        try:
            while True:
                try:
                    body = read_frame(self._reader.exact, self._checksum, self._max_message_size)
                except EOFError:
                    if self._reader.buffer:
                        reason = ConverseError("PROTOCOL_ERROR", "the server closed the connection in the middle of a frame")
                    elif not (self._we_said_goodbye and self._peer_said_goodbye):
                        reason = ConverseError("CONNECTION_CLOSED", "the server went away")
                    return
                self._on_frame(decode_envelope(body, tell_options=True))
                self._maybe_end()
        except ProtocolViolation as violation:
            reason = ConverseError(violation.code, str(violation))
        except OSError as error:
            reason = ConverseError("CONNECTION_CLOSED", f"the connection was lost: {error}")
        finally:
            self._finish(reason)

    def _on_frame(self, message: list) -> None:
        kind = message[0]
        if kind == FrameKind.PING:
            self._write_control([FrameKind.PONG])
        elif kind in (FrameKind.PONG, FrameKind.TELL):
            if kind == FrameKind.TELL:
                self._start_handler(-1, message[1], None, read_carrier(message[2]) if len(message) == 3 else None)
        elif kind == FrameKind.GOODBYE:
            self._peer_said_goodbye = True
            self._say_goodbye()
        elif kind == FrameKind.ASK:
            ask_id = message[1]
            if ask_id in self._handling:
                raise ProtocolViolation("PROTOCOL_ERROR", f"the server reused the id {ask_id} of an ask still in progress")
            options = message[3] if len(message) == 4 else None
            window = None
            if isinstance(options, dict) and "stream" in options:
                window = options["stream"]
                if type(window) is not int or not 1 <= window <= 0xFFFFFFFF:
                    raise ProtocolViolation("PROTOCOL_ERROR", "an ASK's stream window must be an integer in 1 … 2**32-1")
            self._start_handler(ask_id, message[2], window, read_carrier(options))
        elif kind == FrameKind.CANCEL:
            cancelled = self._handling.get(message[1])
            if cancelled is not None:
                cancelled.set()
                credit = self._credit.get(message[1])
                if credit is not None:
                    credit.wake()
        elif kind == FrameKind.CREDIT:
            credit = self._credit.get(message[1])
            if credit is not None:
                credit.grant(message[2])
        else:
            self._on_answer(kind, message)

    def _on_answer(self, kind: int, message: list) -> None:
        ask_id = message[1]
        with self._state_lock:
            pending = self._pending.get(ask_id)
            if pending is None:
                return  # not outstanding: dropped (§6.2)
            if kind in (FrameKind.STREAM_ITEM, FrameKind.STREAM_END) and pending.items is None:
                raise ProtocolViolation("PROTOCOL_ERROR", f"a stream frame answered the plain ask {ask_id}")
            if kind != FrameKind.STREAM_ITEM:
                del self._pending[ask_id]
        if kind == FrameKind.STREAM_ITEM:
            pending.items.put(("item", message[2]))  # type: ignore[union-attr]
        elif kind == FrameKind.STREAM_END:
            self._settle(pending, end=True)
        elif kind == FrameKind.REPLY:
            self._settle(pending, value=message[2])
        else:
            self._settle(pending, error=_error_from_wire(message[2], pending.event_type))

    def _settle(self, pending: _Pending, value: Any = None, error: Optional[ConverseError] = None, end: bool = False) -> None:
        if pending.items is not None:
            pending.items.put(("error", error) if error is not None else ("end", None) if end else ("reply", value))
        pending.value, pending.error = value, error
        pending.done.set()

    # ── Serving the server's asks ─────────────────────────────────────────────────────────

    def _start_handler(self, ask_id: int, event: Any, window: Optional[int], trace: Optional[TraceContext]) -> None:
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ProtocolViolation("PROTOCOL_ERROR", 'a message must be a map with a str "type"')
        if ask_id < 0:
            handler = self._handlers.get(event["type"])
            if handler is not None and self._take_handler_slot():
                threading.Thread(target=self._run_tell, args=(handler, event, trace), daemon=True).start()
            return
        if self._peer_said_goodbye:
            self._answer(ask_id, error=("CONNECTION_CLOSED", f'the ask "{event["type"]}" came after GOODBYE', None))
            return
        handler = self._handlers.get(event["type"])
        if handler is None:
            self._answer(ask_id, error=("NO_HANDLER", f'this client has no handler for "{event["type"]}"', None))
            return
        if not self._take_handler_slot():
            return
        cancelled = threading.Event()
        self._handling[ask_id] = cancelled
        if window is not None:
            self._credit[ask_id] = _Credit(window)
        threading.Thread(target=self._run_ask, args=(handler, event, ask_id, cancelled, window, trace), daemon=True).start()

    def _take_handler_slot(self) -> bool:
        """Wait (reading paused) until fewer than max_in_flight handlers run; False once the connection closed."""
        while not self._handler_slots.acquire(timeout=0.1):
            if self.closed.is_set():
                return False
        return True

    def _run_tell(self, handler: Handler, event: dict, trace: Optional[TraceContext]) -> None:
        try:
            handler(event, HandlerContext(self, threading.Event(), False, trace))
        except Exception:
            pass  # a TELL is never answered
        finally:
            self._handler_slots.release()

    def _run_ask(self, handler: Handler, event: dict, ask_id: int, cancelled: threading.Event, window: Optional[int], trace: Optional[TraceContext]) -> None:
        try:
            result = handler(event, HandlerContext(self, cancelled, window is not None, trace))
            if window is not None and _is_iterator(result):
                for item in result:
                    self._credit[ask_id].take()
                    if cancelled.is_set() or self.closed.is_set():
                        return
                    self._write_control([FrameKind.STREAM_ITEM, ask_id, item])
                if not cancelled.is_set():
                    self._write_control([FrameKind.STREAM_END, ask_id])
                return
            if not cancelled.is_set():
                self._answer(ask_id, value=result)
        except ConverseError as error:
            if not cancelled.is_set():
                code = error.code if error.code in WIRE_ERROR_CODES else "REMOTE_ERROR"
                self._answer(ask_id, error=(code, str(error), {"name": "ConverseError", "message": str(error), "code": error.code}))
        except Exception as error:  # the handler failed: REMOTE_ERROR (§6.4)
            if not cancelled.is_set():
                self._answer(ask_id, error=("REMOTE_ERROR", f'the handler for "{event["type"]}" failed: {error}', {"name": type(error).__name__, "message": str(error)}))
        finally:
            self._handling.pop(ask_id, None)
            self._credit.pop(ask_id, None)
            self._handler_slots.release()
            self._maybe_end()

    def _answer(self, ask_id: int, value: Any = None, error: Optional[tuple[str, str, Optional[dict]]] = None) -> None:
        if error is None:
            try:
                self._write([FrameKind.REPLY, ask_id, value])
                return
            except ConverseError as failure:
                if failure.code == "CONNECTION_CLOSED":
                    return
                error = ("REMOTE_ERROR", "the reply could not be sent", {"name": "ConverseError", "message": str(failure), "code": failure.code})
        code, message, remote = error
        payload: dict = {"code": code, "message": message}
        if remote is not None:
            payload["remote"] = remote
        try:
            self._write([FrameKind.ERROR, ask_id, payload])
        except ConverseError:
            self._write_control([FrameKind.ERROR, ask_id, {"code": code, "message": "the error could not be encoded"}])

    # ── Closing ───────────────────────────────────────────────────────────────────────────

    def close(self, timeout: float = 5.0) -> None:
        """Close gracefully (§7.1): GOODBYE, let work in both directions finish, end, wait for the server."""
        if self.closed.is_set():
            return
        self._say_goodbye()
        self._maybe_end()
        if not self.closed.wait(timeout):
            self.destroy()

    def destroy(self) -> None:
        """Close at once: pending asks fail with CONNECTION_CLOSED."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._finish(self.close_reason or ConverseError("CONNECTION_CLOSED", "the connection was destroyed"))

    def _say_goodbye(self) -> None:
        with self._state_lock:
            if self._we_said_goodbye:
                return
            self._we_said_goodbye = True
        self._write_control([FrameKind.GOODBYE])

    def _maybe_end(self) -> None:
        """End this side's direction once both GOODBYEs are exchanged and nothing is in progress."""
        with self._state_lock:
            if self._write_ended or not (self._we_said_goodbye and self._peer_said_goodbye) or self._pending or self._handling:
                return
        with self._write_lock:
            self._write_ended = True
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _finish(self, reason: Optional[ConverseError]) -> None:
        with self._state_lock:
            if self.closed.is_set():
                return
            self.close_reason = reason
            pending = list(self._pending.values())
            self._pending.clear()
            for cancelled in self._handling.values():
                cancelled.set()
            for credit in self._credit.values():
                credit.wake()
            self.closed.set()
        try:
            self._sock.close()
        except OSError:
            pass
        lost = ConverseError("CONNECTION_CLOSED", f"the connection closed{f' ({reason.code})' if reason else ''}")
        for item in pending:
            self._settle(item, error=lost)


class _Credit:
    """Stream items the server will take (§6.7): a count, capped at 2**32-1 however much is granted."""

    def __init__(self, window: int) -> None:
        self._available = window
        self._woken = False
        self._changed = threading.Condition()

    def grant(self, count: int) -> None:
        with self._changed:
            self._available = min(self._available + count, 0xFFFFFFFF)
            self._changed.notify()

    def take(self) -> None:
        """Wait for one item's credit, or until woken (cancelled or closed: the caller checks)."""
        with self._changed:
            while self._available == 0 and not self._woken:
                self._changed.wait()
            if self._available > 0:
                self._available -= 1

    def wake(self) -> None:
        with self._changed:
            self._woken = True
            self._changed.notify_all()


def _is_iterator(value: Any) -> bool:
    return hasattr(value, "__next__") and hasattr(value, "__iter__")


def _error_from_wire(payload: Any, event_type: str) -> ConverseError:
    """The ConverseError for an ERROR frame's payload (§6.4), which is untrusted."""
    if not isinstance(payload, dict):
        payload = {}
    code = payload.get("code")
    if code not in WIRE_ERROR_CODES:
        code = "REMOTE_ERROR"
    message = payload.get("message") if isinstance(payload.get("message"), str) else f'the ask "{event_type}" failed'
    remote = None
    raw_remote = payload.get("remote")
    if isinstance(raw_remote, dict):
        remote = RemoteInfo(str(raw_remote.get("name", "Error")), str(raw_remote.get("message", "")), raw_remote.get("code") if isinstance(raw_remote.get("code"), str) else None)
    elif code == "REMOTE_ERROR":
        remote = RemoteInfo("Error", message)
    issues = [i for i in payload.get("issues", []) if isinstance(i, dict)] if isinstance(payload.get("issues"), list) else []
    return ConverseError(code, message, remote, issues)
