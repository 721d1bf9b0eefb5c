"""Fixtures: a real Node server from this repository (npm run build first)."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_DIR = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(CLIENT_DIR))
sys.path.insert(0, CLIENT_DIR)


@pytest.fixture
def server_path():
    """Start dist/test/fixtures/conformance-server.js on a fresh socket; yields its path."""
    script = os.path.join(ROOT, "dist", "test", "fixtures", "conformance-server.js")
    if not os.path.exists(script):
        pytest.fail(f"{script} is missing: run `npm run build` first")
    directory = tempfile.mkdtemp(prefix="converse-py-")
    path = os.path.join(directory, "s.sock")
    process = subprocess.Popen(["node", script, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = process.stdout.readline()
    assert b'"ready":true' in line, process.stderr.read().decode()
    yield path
    process.stdin.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    shutil.rmtree(directory, ignore_errors=True)
