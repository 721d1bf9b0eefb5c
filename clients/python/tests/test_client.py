"""The Python client against a real Node server of this library."""
import datetime
import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import CLIENT_DIR, ROOT
from interprocess_converse import UNDEFINED, Client, ConverseError, WireMap


def test_ask_echoes_every_type(server_path):
    value = {
        "n": 2**40,
        "neg": -(2**40),
        "big": 2**64 - 1,
        "f": 1.5,
        "s": "héllo",
        "b": b"\x00\x01",
        "l": [None, True, False],
        "set": {1, 2},
        "map": WireMap([(1, "one"), ("k", [1])]),
        "u": UNDEFINED,
        "when": datetime.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=datetime.timezone.utc),
    }
    with Client.connect(server_path) as client:
        assert client.ask({"type": "echo", "value": value}) == value


def test_tell_is_delivered_and_not_answered(server_path):
    with Client.connect(server_path) as client:
        client.tell({"type": "note", "text": "a"})
        client.tell({"type": "note", "text": "b"})
        assert client.ask({"type": "notes"}) == ["a", "b"]


def test_errors_carry_their_codes(server_path):
    with Client.connect(server_path) as client:
        with pytest.raises(ConverseError) as failed:
            client.ask({"type": "fail", "message": "broken"})
        assert failed.value.code == "REMOTE_ERROR"
        assert failed.value.remote.message == "broken"
        with pytest.raises(ConverseError) as missing:
            client.ask({"type": "no-such-type"})
        assert missing.value.code == "NO_HANDLER"


def test_the_server_asks_the_client_back(server_path):
    seen = []

    def echo(event, ctx):
        seen.append(ctx.connection)
        return event["value"]

    with Client.connect(server_path, handlers={"echo": echo}) as client:
        assert client.ask({"type": "callback", "value": [1, "two"]}) == [1, "two"]
        assert seen == [client]


def test_streams_with_credit(server_path):
    with Client.connect(server_path) as client:
        assert list(client.stream({"type": "count", "n": 50}, window=4)) == list(range(50))
        assert list(client.stream({"type": "count", "n": 0})) == []


def test_cancel_and_timeout(server_path):
    with Client.connect(server_path) as client:
        pending = client.start_ask({"type": "sleep", "ms": 2000})
        pending.cancel()
        with pytest.raises(ConverseError) as cancelled:
            pending.result()
        assert cancelled.value.code == "ABORTED"
        with pytest.raises(ConverseError) as timed_out:
            client.ask({"type": "sleep", "ms": 2000}, timeout=0.2)
        assert timed_out.value.code == "TIMEOUT"
        assert client.ask({"type": "echo", "value": "still fine"}) == "still fine"


def test_graceful_close_waits_for_outstanding_asks(server_path):
    client = Client.connect(server_path)
    pending = client.start_ask({"type": "sleep", "ms": 300})
    closer = threading.Thread(target=client.close)
    closer.start()
    assert pending.result() == "slept"
    closer.join(5)
    assert client.closed.is_set()
    assert client.close_reason is None
    with pytest.raises(ConverseError) as after:
        client.ask({"type": "echo", "value": 1})
    assert after.value.code == "CONNECTION_CLOSED"


def test_checksums(server_path):
    with Client.connect(server_path, checksum=True) as client:
        assert client.ask({"type": "echo", "value": "crc"}) == "crc"


def test_passes_the_conformance_kit_in_client_role():
    result = subprocess.run(
        ["node", os.path.join(ROOT, "dist", "src", "cli.js"), "conformance", "client", "--", sys.executable, os.path.join(CLIENT_DIR, "conformance_client.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "21 cases: 21 passed, 0 failed" in result.stdout


def test_the_servers_asks_are_handled_at_most_max_in_flight_at_once(server_path):
    # Each "callback" makes the server ask this client "echo"; 40 at once would be 40 threads.
    lock = threading.Lock()
    running = [0]
    most = [0]

    def echo(event, ctx):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return event["value"]

    with Client.connect(server_path, handlers={"echo": echo}, max_in_flight=4, reply_timeout=30) as client:
        pending = [client.start_ask({"type": "callback", "value": i}) for i in range(40)]
        assert [p.result() for p in pending] == list(range(40))
    assert most[0] == 4


def test_max_in_flight_must_be_a_positive_integer(server_path):
    for bad in (0, -1, 1.5, None):
        with pytest.raises(ConverseError) as refused:
            Client.connect(server_path, max_in_flight=bad)
        assert refused.value.code == "INVALID_ARGUMENT"


def test_stream_credit_is_a_capped_count_not_one_wakeup_per_item():
    # A server may grant 2**32-1 items per CREDIT frame, again and again: constant work and memory.
    from interprocess_converse.client import _Credit

    credit = _Credit(1)
    for _ in range(1000):
        credit.grant(0xFFFFFFFF)  # one addition each (it was up to 2**20 semaphore releases each)
    assert credit._available == 0xFFFFFFFF
    credit.take()
    assert credit._available == 0xFFFFFFFE
    empty = _Credit(0)
    taker = threading.Thread(target=empty.take)
    taker.start()
    taker.join(0.1)
    assert taker.is_alive()  # waits for credit …
    empty.wake()
    taker.join(5)
    assert not taker.is_alive()  # … until woken (cancelled or closed)
