"""A REAL Redis server (Debian's ``redis-server``) on a free loopback port for one test module, no persistence
on disk but its own temporary folder; skipped with the way to install it when the binary is missing."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from services.core.processes import ManagedProcess, free_port


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server (make test installs Debian's redis-server package)")
    import redis

    port = free_port()
    folder = tempfile.mkdtemp(prefix="redis-test-")
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", "", "--appendonly", "no"]
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        with ManagedProcess("redis-server", argv) as proc:
            proc.wait_ready(answers, timeout_s=20, interval_s=0.05)
            client.close()
            yield url
    finally:
        client.close()
        shutil.rmtree(folder, ignore_errors=True)
