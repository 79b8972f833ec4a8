"""``make eval``'s temporary stack over the shared supervisor: a process that dies before it is ready fails at
once naming its log under ``<data dir>/logs``, and ``stop()`` ends what was started."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.local_stack import LocalStack
from services.core.processes import ProcessExitedError, free_port

pytestmark = pytest.mark.unit


def test_a_process_that_dies_fails_fast_naming_its_log_and_stop_ends_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = LocalStack(f"http://127.0.0.1:{free_port()}", tmp_path, ready_timeout_s=60)
    (tmp_path / "sleeper.py").write_text("import time\ntime.sleep(600)\n")
    stack._spawn("sleeper", {"PYTHONPATH": str(tmp_path)}, "sleeper")  # stands for the LLM: runs until stopped
    stack._spawn("api", {}, "json.tool")  # stands for an API that cannot start: stdin is closed, it exits 1
    try:
        with pytest.raises(ProcessExitedError) as failure:
            stack._wait("api", f"{stack.api_url}/readyz")
    finally:
        procs = list(stack.procs)
        stack.stop()
    log = tmp_path / "logs" / "api.log"
    assert "api exited (exit code 1) before it was ready" in str(failure.value)
    assert str(log) in str(failure.value) and "Expecting value" in log.read_text()
    assert stack.procs == [] and all(p.returncode is not None for p in procs)
    out = capsys.readouterr().out
    assert f"[eval] started api (pid {procs[1].pid}, log {log})" in out
    assert "[eval] stopped api" in out and "[eval] stopped sleeper" in out
