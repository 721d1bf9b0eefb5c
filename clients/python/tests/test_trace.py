"""W3C trace context (docs/PROTOCOL.md §6.9): the receiving rules, and both directions against
a Node daemon that traces with OpenTelemetry (dist/test/fixtures/otel-daemon.js)."""
import json
import os
import shutil
import subprocess
import tempfile
import threading

import pytest

from conftest import ROOT
from interprocess_converse import Client, TraceContext
from interprocess_converse.trace import read_carrier
from interprocess_converse.wire import FrameKind, ProtocolViolation, decode_envelope
from interprocess_converse.codec import pack

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
VALID = f"00-{TRACE}-{PARENT}-01"


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        "",
        VALID.upper(),  # lowercase only
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has nothing after the flags
        f"01-{TRACE}-{PARENT}-01x",  # a later version: only "-" may follow the flags
        f"00-{TRACE[:-1]}-{PARENT}-01",  # a short trace id
        f"01-{TRACE}-{PARENT}-01-" + "a" * 250,  # over 256 characters
    ],
)
def test_a_malformed_traceparent_is_ignored(value):
    assert TraceContext.from_headers(value) is None
    assert read_carrier({"traceparent": value}) is None


def test_a_valid_traceparent_is_read_and_a_later_version_keeps_its_first_four_fields():
    context = TraceContext.from_headers(VALID, "vendor=1")
    assert (context.trace_id, context.parent_id, context.flags, context.tracestate) == (TRACE, PARENT, "01", "vendor=1")
    assert context.sampled and context.traceparent == VALID
    later = TraceContext.from_headers(f"01-{TRACE}-{PARENT}-00-what-comes-later")
    assert later is not None and later.parent_id == PARENT and not later.sampled
    # Exactly 256 characters is still read.
    assert TraceContext.from_headers(f"01-{TRACE}-{PARENT}-01-" + "a" * (256 - 56)) is not None


@pytest.mark.parametrize("tracestate", [7, "", "k=" + "v" * 511])
def test_a_bad_tracestate_is_dropped_and_the_traceparent_kept(tracestate):
    context = read_carrier({"traceparent": VALID, "tracestate": tracestate})
    assert context is not None and context.parent_id == PARENT and context.tracestate is None
    assert read_carrier({"traceparent": VALID, "tracestate": "k=" + "v" * 510}).tracestate is not None


def test_options_that_are_not_a_map_carry_nothing():
    assert read_carrier(["traceparent", VALID]) is None
    assert read_carrier(None) is None


def test_new_and_child_contexts():
    first = TraceContext.new()
    assert TraceContext.from_headers(first.traceparent) == first
    child = first.child()
    assert child.trace_id == first.trace_id and child.parent_id != first.parent_id and child.flags == first.flags
    assert not TraceContext.new(sampled=False).sampled


def test_a_tell_with_options_is_a_protocol_error_unless_this_side_said_trace_context():
    body = pack([FrameKind.TELL, {"type": "note"}, {"traceparent": VALID}])
    with pytest.raises(ProtocolViolation):
        decode_envelope(body)
    assert decode_envelope(body, tell_options=True)[2] == {"traceparent": VALID}
    with pytest.raises(ProtocolViolation):
        decode_envelope(pack([FrameKind.TELL, {"type": "note"}, {}, {}]), tell_options=True)


class Daemon:
    """dist/test/fixtures/otel-daemon.js: JSON lines out, commands in."""

    def __init__(self):
        script = os.path.join(ROOT, "dist", "test", "fixtures", "otel-daemon.js")
        if not os.path.exists(script):
            pytest.fail(f"{script} is missing: run `npm run build` first")
        self.directory = tempfile.mkdtemp(prefix="converse-py-otel-")
        self.path = os.path.join(self.directory, "s.sock")
        self.process = subprocess.Popen(["node", script, self.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = json.loads(self.process.stdout.readline() or "{}")
        assert ready.get("ready") is True, self.process.stderr.read()

    def spans(self):
        self.process.stdin.write(json.dumps({"op": "spans", "tag": "s"}) + "\n")
        self.process.stdin.flush()
        while True:
            line = json.loads(self.process.stdout.readline())
            if line.get("tag") == "s":
                return line["spans"]

    def stop(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def daemon():
    running = Daemon()
    yield running
    running.stop()


def test_an_ask_carries_the_trace_to_the_daemon_and_its_ask_back_carries_it_on(daemon):
    sent = TraceContext.new()
    seen = []

    def back(event, ctx):
        seen.append(ctx.trace)
        return "back"

    with Client.connect(daemon.path, handlers={"back": back}) as client:
        assert client.peer_reads_trace  # the daemon traces, so its WELCOME said traceContext: 1
        answer = client.ask({"type": "work"}, trace=sent)
    assert answer["back"] == "back"
    server_span = next(s for s in daemon.spans() if s["kind"] == 1 and s["attributes"].get("rpc.method") == "work")
    # The daemon's handler is a child of the context the Python client sent …
    assert (server_span["traceId"], server_span["parentSpanId"], server_span["parentIsRemote"]) == (sent.trace_id, sent.parent_id, True)
    # … and its ask back to the client carried the same trace, with the daemon's span as parent.
    (received,) = seen
    assert received is not None and received.trace_id == sent.trace_id and received.parent_id not in (sent.parent_id, server_span["spanId"])


def test_a_tell_carries_the_trace_to_a_daemon_that_reads_it(daemon):
    sent = TraceContext.new()
    with Client.connect(daemon.path, handlers={"back": lambda event, ctx: None}) as client:
        client.tell({"type": "note"}, trace=sent)
        client.ask({"type": "work"})  # after the tell: the daemon has handled it
    consumer = next(s for s in daemon.spans() if s["kind"] == 4)
    assert (consumer["traceId"], consumer["parentSpanId"]) == (sent.trace_id, sent.parent_id)


def test_the_daemons_tell_carries_its_trace_to_this_client(daemon):
    # This client's HELLO says traceContext: 1, so the daemon's TELL may have a third element.
    received = []
    noted = threading.Event()

    def on_noted(event, ctx):
        received.append(ctx.trace)
        noted.set()

    sent = TraceContext.new()
    with Client.connect(daemon.path, handlers={"noted": on_noted}) as client:
        handler_span_id = client.ask({"type": "tellBack"}, trace=sent)
        assert noted.wait(10)
    (trace,) = received
    assert trace is not None and trace.trace_id == sent.trace_id
    producer = next(s for s in daemon.spans() if s["kind"] == 3)
    assert producer["parentSpanId"] == handler_span_id and trace.parent_id == producer["spanId"]


def test_a_server_that_does_not_read_trace_context_gets_plain_tells(server_path):
    # The conformance server does not trace: a third TELL element would be a protocol error to it.
    with Client.connect(server_path) as client:
        assert not client.peer_reads_trace
        client.tell({"type": "note", "text": "traced"}, trace=TraceContext.new())
        assert client.ask({"type": "notes"}, trace=TraceContext.new()) == ["traced"]
