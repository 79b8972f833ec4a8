"""The redis and proxy images' own files, run by the real programs where this machine has them (make test installs
Debian's redis-server and haproxy): redis-server started by the image's start script with its baked
configuration, and ``haproxy -c`` on its configuration. Their offline checks are in
tests/unit/deploy/test_scale_compose.py."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.processes import ManagedProcess, free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
HAPROXY_CFG = ROOT / "deploy/proxy/haproxy.cfg"
REDIS_CONF = ROOT / "deploy/redis/redis.conf"
REDIS_START = ROOT / "deploy/redis/start.sh"


@pytest.fixture
def redis_from_the_image_files(tmp_path: Path) -> Iterator[tuple[int, str, ManagedProcess]]:
    """Debian's redis-server started by deploy/redis/start.sh with deploy/redis/redis.conf (only its `dir`
    pointed at a temporary folder), on a free loopback port."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server (make test installs Debian's redis-server package)")
    conf = tmp_path / "redis.conf"
    conf.write_text(re.sub(r"(?m)^dir /data$", f"dir {tmp_path}", REDIS_CONF.read_text()))
    port, password = free_port(), "s3cret-from-env"
    env = {"PATH": os.environ["PATH"], "REDIS_PASSWORD": password, "REDIS_CONFIG": str(conf)}
    argv = ["sh", str(REDIS_START), "--port", str(port), "--bind", "127.0.0.1"]
    with ManagedProcess("redis-server", argv, env=env, inherit_env=False) as proc:
        yield port, password, proc


def test_redis_starts_from_the_baked_config_and_asks_for_the_password(
    redis_from_the_image_files: tuple[int, str, ManagedProcess], tmp_path: Path
) -> None:
    import redis

    port, password, proc = redis_from_the_image_files
    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=5)
    deadline = time.monotonic() + 10
    while True:
        try:
            assert client.ping()
            break
        except redis.ConnectionError:
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    # Without the password (a raw socket: redis-py retries an authentication error with back-off).
    with socket.create_connection(("127.0.0.1", port), timeout=5) as anonymous:
        anonymous.sendall(b"SET k v\r\n")
        assert anonymous.recv(256).startswith(b"-NOAUTH")
    config = {k: client.config_get(k)[k] for k in ("appendonly", "appendfsync", "maxmemory-policy")}
    assert config == {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}
    client.xadd("ragstack:ingest:jobs", {"job": "{}"})
    assert (tmp_path / "appendonlydir").is_dir(), "the append-only file lives in the configured dir"
    assert password.encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes(), "never on the command line"


def test_haproxy_accepts_the_configuration() -> None:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("needs the haproxy binary (Debian's haproxy package: apt-get install haproxy)")
    result = subprocess.run([haproxy, "-c", "-f", str(HAPROXY_CFG)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
