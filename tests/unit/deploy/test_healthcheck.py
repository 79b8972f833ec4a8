"""The container probes (``python -m services.healthcheck``) against a real HTTP server and real files."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.healthcheck import Heartbeat, check_file, check_http, main

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the stdlib's name
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_probe_is_healthy_on_2xx_only(server: str) -> None:
    assert check_http(f"{server}/healthz")[0]
    ok, why = check_http(f"{server}/other")
    assert not ok and "503" in why


def test_http_probe_is_unhealthy_when_nothing_listens(server: str) -> None:
    ok, why = check_http("http://127.0.0.1:9/healthz", timeout_s=1)
    assert not ok and "unreachable" in why


def test_file_probe_follows_the_heartbeat_age(tmp_path: Path) -> None:
    beat = tmp_path / "alive"
    assert not check_file(beat, 60)[0]
    beat.touch()
    assert check_file(beat, 60)[0]
    old = time.time() - 120
    os.utime(beat, (old, old))
    ok, why = check_file(beat, 60)
    assert not ok and "old" in why


def test_heartbeat_stops_touching_when_its_owner_is_unhealthy_and_removes_the_file_on_stop(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "alive"
    beat = Heartbeat(path, interval_s=3600)
    beat.beat()
    assert path.is_file()
    old = time.time() - 120
    os.utime(path, (old, old))
    beat.healthy = False
    beat.beat()
    assert not check_file(path, 60)[0]
    beat.healthy = True
    beat.start()  # the thread beats at once
    deadline = time.monotonic() + 10
    while not check_file(path, 60)[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert check_file(path, 60)[0]
    beat.stop()
    assert not path.exists()


def test_main_exit_status_is_what_docker_reads(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["http", f"{server}/healthz"]) == 0
    monkeypatch.setenv("PROBE_BASE_URL", server)
    assert main(["http", "${PROBE_BASE_URL}/healthz"]) == 0  # as an exec-form HEALTHCHECK passes it
    assert main(["http", f"{server}/nope"]) == 1
    assert main(["file", str(tmp_path / "missing"), "--max-age", "5"]) == 1


def test_the_module_runs_as_the_containers_run_it(server: str) -> None:
    ok = subprocess.run([sys.executable, "-m", "services.healthcheck", "http", f"{server}/healthz"], cwd=ROOT)
    bad = subprocess.run(
        [sys.executable, "-m", "services.healthcheck", "http", f"{server}/x"], cwd=ROOT, capture_output=True, text=True
    )
    assert ok.returncode == 0
    assert bad.returncode == 1 and "unhealthy" in bad.stderr
