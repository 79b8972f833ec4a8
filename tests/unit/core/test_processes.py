"""The process supervisor with tiny Python children: readiness over HTTP and by a callable, a child that dies
before it is ready, and stop() ending a child that ignores SIGTERM together with its own child."""

from __future__ import annotations

import os
import signal
import socket
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from services.core.processes import (
    ManagedProcess,
    NotReadyError,
    ProcessExitedError,
    free_port,
    stop_all,
)

pytestmark = pytest.mark.unit

HTTP_CHILD = textwrap.dedent(
    """
    import http.server, sys
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ready" else 404)
            self.end_headers()
        def log_message(self, *args):
            pass
    print("serving", flush=True)
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
    """
)

# Ignores SIGTERM, starts a grandchild that ignores it too, writes both pids, then waits forever.
STUBBORN_CHILD = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"]
    )
    with open(sys.argv[1], "w") as f:
        f.write(f"{grandchild.pid}")
    time.sleep(600)
    """
)

# Exits on SIGTERM at once, but leaves a grandchild behind that ignores it.
LEAVES_A_GRANDCHILD = textwrap.dedent(
    """
    import subprocess, sys, time
    grandchild = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"]
    )
    with open(sys.argv[1], "w") as f:
        f.write(f"{grandchild.pid}")
    time.sleep(600)
    """
)


def python(name: str, code: str, *args: str, **kwargs: Any) -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "-c", code, *args], **kwargs)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")  # a zombie still answers kill(0): look at its state
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_for_file(path: Path, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.02)
    return path.read_text()


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_wait_ready_on_an_http_url_then_stop(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "logs" / "http.log"
    with python("http", HTTP_CHILD, str(port), log=log) as proc:
        proc.wait_ready(f"http://127.0.0.1:{port}/ready", timeout_s=30, interval_s=0.05)
        assert proc.running()
    assert not proc.running()
    assert proc.returncode == -signal.SIGTERM
    assert "serving" in log.read_text()


def test_wait_ready_on_a_callable_with_the_env_overlay_cwd_and_closed_stdin(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    code = (
        "import os, sys, time; data = sys.stdin.read(); "
        "open(os.environ['OUT'], 'w').write(f\"{os.environ['GREETING']}|{os.getcwd()}|{data!r}\"); time.sleep(600)"
    )
    with python("writer", code, env={"OUT": str(out), "GREETING": "hello"}, cwd=tmp_path) as proc:
        proc.wait_ready(lambda: out.exists() and out.read_text() != "", timeout_s=30, interval_s=0.02)
    assert out.read_text() == f"hello|{tmp_path}|''"


def test_without_inherit_env_the_child_gets_only_the_given_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERVISOR_TEST_MARK", "leaked")
    out = tmp_path / "env.txt"
    code = "import os, sys; open(sys.argv[1], 'w').write(' '.join(sorted(os.environ)))"
    proc = python("clean", code, str(out), env={"ONLY": "1"}, inherit_env=False).start()
    assert proc.wait(timeout=30) == 0
    assert set(out.read_text().split()) - {"LC_CTYPE"} == {"ONLY", "PYTHONUNBUFFERED"}


def test_a_child_that_exits_early_fails_fast_naming_its_log(tmp_path: Path) -> None:
    log = tmp_path / "early.log"
    proc = python("early", "import sys; print('the config is broken', file=sys.stderr); sys.exit(3)", log=log)
    proc.start()
    started = time.monotonic()
    with pytest.raises(ProcessExitedError) as failure:
        proc.wait_ready(f"http://127.0.0.1:{free_port()}/ready", timeout_s=60, interval_s=0.05)
    assert time.monotonic() - started < 20  # not the 60 s timeout
    message = str(failure.value)
    assert "early exited (exit code 3) before it was ready" in message
    assert str(log) in message and "the config is broken" in message
    assert failure.value.process is proc and proc.returncode == 3
    assert proc.stop() == 3


def test_a_child_that_never_gets_ready_times_out_naming_its_log(tmp_path: Path) -> None:
    log = tmp_path / "slow.log"
    with python("sleeper", "print('warming up', flush=True); import time; time.sleep(600)", log=log) as proc:
        with pytest.raises(NotReadyError) as failure:
            proc.wait_ready(lambda: False, timeout_s=0.3, interval_s=0.05)
        assert proc.running()  # the caller decides: here the with block stops it
    message = str(failure.value)
    assert message.startswith("sleeper not ready after 0 s (<lambda>)")
    assert str(log) in message


def test_start_ready_returns_a_ready_process_or_stops_it_keeping_its_log(tmp_path: Path) -> None:
    port = free_port()
    served = python("served", HTTP_CHILD, str(port), log=tmp_path / "served.log", delete_log=True)
    assert served.start_ready(f"http://127.0.0.1:{port}/ready", timeout_s=30, interval_s=0.05) is served
    assert served.running()
    served.stop()
    log = tmp_path / "slow.log"
    slow = python("slow", "print('warming up', flush=True); import time; time.sleep(600)", log=log, delete_log=True)
    with pytest.raises(NotReadyError, match="slow not ready"):
        slow.start_ready(lambda: False, timeout_s=0.3, interval_s=0.05, grace_s=1)
    assert slow.poll() is not None  # stopped, not left half-started
    assert "warming up" in log.read_text()  # the error names the log, so it is kept


def test_piped_output_reaches_the_callback_line_by_line_and_names_the_last_lines_on_death() -> None:
    lines: list[str] = []
    code = "import sys; print('one'); print('two'); print('three', file=sys.stderr); sys.exit(1)"
    with python("piped", code, on_line=lines.append) as proc, pytest.raises(ProcessExitedError) as failure:
        proc.wait_ready(lambda: False, timeout_s=30, interval_s=0.05)
    assert lines == ["one", "two", "three"]
    assert list(proc.tail) == ["one", "two", "three"]
    assert "exited (exit code 1)" in str(failure.value) and "three" in str(failure.value)
    assert proc.last_output(lines=2) == "two\nthree"


def test_stop_kills_a_child_that_ignores_sigterm_and_its_grandchild(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    proc = python("stubborn", STUBBORN_CHILD, str(pids)).start()
    grandchild = int(wait_for_file(pids))
    assert alive(proc.pid) and alive(grandchild)
    started = time.monotonic()
    assert proc.stop(grace_s=0.5) == -signal.SIGKILL
    assert time.monotonic() - started >= 0.5  # it had its grace period
    deadline = time.monotonic() + 10
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(proc.pid) and not alive(grandchild)


def test_stop_also_ends_what_a_child_that_obeys_sigterm_left_behind(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    proc = python("parent", LEAVES_A_GRANDCHILD, str(pids)).start()
    grandchild = int(wait_for_file(pids))
    assert proc.stop(grace_s=0.5) == -signal.SIGTERM
    deadline = time.monotonic() + 10
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(grandchild)


def test_stop_is_idempotent_and_harmless_before_start_or_after_exit(tmp_path: Path) -> None:
    never = python("never", "pass")
    assert never.stop() is None
    done = python("done", "import sys; sys.exit(5)").start()
    done.wait(timeout=30)
    assert done.stop() == 5
    assert done.stop() == 5
    running = python("running", "import time; time.sleep(600)").start()
    assert running.stop(grace_s=5) == -signal.SIGTERM
    assert running.stop(grace_s=5) == -signal.SIGTERM
    with pytest.raises(RuntimeError, match="already started"):
        running.start()


def test_delete_log_removes_a_temporary_log_on_stop(tmp_path: Path) -> None:
    log = tmp_path / "temp.log"
    proc = python("temp", "print('hi')", log=log, delete_log=True).start()
    proc.wait(timeout=30)
    assert "hi" in proc.log_text()
    proc.stop()
    assert not log.exists()


def test_module_form_runs_python_dash_m() -> None:
    proc = ManagedProcess.module("json", "json.tool", "--help")
    assert proc.argv[:3] == [sys.executable, "-m", "json.tool"] and proc.argv[3:] == ["--help"]


def test_stop_all_shares_one_grace_period(tmp_path: Path) -> None:
    stubborn = [python(f"s{i}", STUBBORN_CHILD, str(tmp_path / f"pids{i}")).start() for i in range(2)]
    for i in range(2):
        wait_for_file(tmp_path / f"pids{i}")
    started = time.monotonic()
    stop_all(stubborn, grace_s=1.5)
    assert 1.5 <= time.monotonic() - started < 2.9  # one grace period for both, not one each
    assert [p.returncode for p in stubborn] == [-signal.SIGKILL, -signal.SIGKILL]


def test_output_goes_to_a_log_or_a_callback_not_both(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        python("both", "pass", log=tmp_path / "x.log", on_line=print)
