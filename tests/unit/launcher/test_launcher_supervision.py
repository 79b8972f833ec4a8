"""``make run``'s launcher over the shared supervisor, with tiny Python children instead of the real services:
output printed behind the service's name, a service that dies named with its exit code and last lines, and
every service stopped at the end."""

from __future__ import annotations

import sys

import pytest

from services import launcher
from services.core.processes import free_port

pytestmark = pytest.mark.unit


def test_a_service_that_dies_before_it_is_ready_is_named_with_its_last_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = "import sys; print('loading'); print('bad model file', file=sys.stderr); sys.exit(2)"
    service = launcher.Service("llm", [sys.executable, "-c", code], f"http://127.0.0.1:{free_port()}/")
    launcher.start(service, launcher.COLORS[0])
    try:
        with pytest.raises(RuntimeError) as failure:
            launcher.wait_ready(service)
    finally:
        launcher.stop_all([service])
    assert str(failure.value) == "service 'llm' died (exit code 2); last lines:\n    loading\n    bad model file"
    out = capsys.readouterr().out
    assert f"[launcher] started llm pid {service.proc.pid}" in out  # type: ignore[union-attr]
    assert f"{launcher.COLORS[0]}     llm |{launcher.RESET} loading" in out
    assert f"     llm |{launcher.RESET} bad model file" in out
    assert out.rstrip().endswith("[launcher] all services stopped")


def test_a_ready_service_is_announced_and_stopped_with_the_rest(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code = (
        "import http.server, sys\n"
        "class Ok(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers()\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), Ok).serve_forever()\n"
    )
    url = f"http://127.0.0.1:{port}/"
    services = [
        launcher.Service("api", [sys.executable, "-c", code], url),
        launcher.Service("frontend", [sys.executable, "-c", "import time; time.sleep(600)"], url),
    ]
    try:
        for i, service in enumerate(services):
            launcher.start(service, launcher.COLORS[i])
        launcher.wait_ready(services[0])
    finally:
        launcher.stop_all(services)
    assert f"[launcher] api ready ({url})" in capsys.readouterr().out
    assert all(s.proc is not None and s.proc.returncode is not None for s in services)
