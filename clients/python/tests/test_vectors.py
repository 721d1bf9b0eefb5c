"""test-vectors/*.json with stock msgpack: every recorded frame is one value, and the codec agrees."""
import json
import os
import socket
import struct

import msgpack
import pytest

from conftest import ROOT
from interprocess_converse import DecodeError, unpack
from interprocess_converse.wire import encode_frame, encode_handshake, read_frame, read_handshake

VALUES = json.load(open(os.path.join(ROOT, "test-vectors", "values.json")))["vectors"]


@pytest.mark.parametrize("vector", [v for v in VALUES if "error" not in v], ids=lambda v: v["name"])
def test_valid_values_are_one_stock_msgpack_value(vector):
    # A stock decoder, no hooks: one value, nothing left over (unpackb raises ExtraData otherwise).
    msgpack.unpackb(bytes.fromhex(vector["hex"]), raw=False, strict_map_key=False)
    unpack(bytes.fromhex(vector["hex"]))


# msgpack-python reads a timestamp in any ext container; this client accepts that one (README.md).
LENIENT = {"a timestamp in ext 8 of length 8"}


@pytest.mark.parametrize("vector", [v for v in VALUES if "error" in v and v["name"] not in LENIENT], ids=lambda v: v["name"])
def test_invalid_values_are_refused(vector):
    with pytest.raises(DecodeError):
        unpack(bytes.fromhex(vector["hex"]))


def test_a_recorded_session_of_every_value_type_decodes_with_a_stock_decoder(server_path):
    """Every frame of a session that echoes every documented value type, both directions."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(server_path)
    buffer = bytearray()

    def exact(n):
        while len(buffer) < n:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            buffer.extend(chunk)
        out = bytes(buffer[:n])
        del buffer[:n]
        return out

    sock.sendall(encode_handshake(1, checksum=False, max_message_size=1 << 20))
    assert read_handshake(exact).kind == 2
    recorded = []
    for i, vector in enumerate(v for v in VALUES if "error" not in v):
        # [1, i, {"type": "echo", "value": <the vector's bytes>}]
        body = b"\x93\x01" + msgpack.packb(i) + b"\x82" + msgpack.packb("type") + msgpack.packb("echo") + msgpack.packb("value") + bytes.fromhex(vector["hex"])
        recorded.append(body)
        sock.sendall(encode_frame(body, False))
        recorded.append(read_frame(exact, False, 1 << 20))
    sock.close()
    assert len(recorded) == 2 * len([v for v in VALUES if "error" not in v])
    for body in recorded:
        value = msgpack.unpackb(body, raw=False, strict_map_key=False)  # exactly one value, or ExtraData
        assert isinstance(value, list) and value[0] in (1, 2)
