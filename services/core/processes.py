"""The one process supervisor: spawn a long-running process, wait until it is ready, stop it and its children.

``make run``'s launcher, ``make eval``'s temporary stack, the query benchmark and the test helpers all start
services with it, so they share one way to do each step:

- spawn: ``argv`` (or ``python -m module``) with the caller's environment overlaid on this one's, in its own
  process group (``start_new_session``: a terminal's Ctrl-C reaches the caller only, which then stops its
  children in order), stdin closed, stdout and stderr together appended to a log file, or piped line by line
  to a callback (the launcher's prefixed output), or discarded;
- readiness: poll an HTTP URL (ready on 200) or a callable; a process that exits first fails at once, with
  its exit status and its last output (and the log file's name);
- stop: SIGTERM to the whole group, a grace period, then SIGKILL to whatever of the group is left; stopping
  twice is harmless.

Usage::

    with ManagedProcess.module("api", "services.api.main", env={"RAG_API_PORT": str(port)}, log=path) as api:
        api.wait_ready(f"http://127.0.0.1:{port}/readyz", timeout_s=120)
        ...  # stopped (group SIGTERM, then SIGKILL after the grace period) on leaving the block

    # or, when the caller keeps it running: started and ready, or stopped and raised
    api = ManagedProcess.module("api", "services.api.main", log=path).start_ready(url, timeout_s=120)
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

logger = logging.getLogger(__name__)

Probe = str | Callable[[], bool]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS's pick), for a process to bind next."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ProcessError(RuntimeError):
    """A managed process did not become ready: it exited first, or the probe never passed in time."""

    def __init__(self, message: str, process: ManagedProcess) -> None:
        super().__init__(message)
        self.process = process


class ProcessExitedError(ProcessError):
    """The process exited before it was ready."""


class NotReadyError(ProcessError):
    """The process still runs, but its readiness probe did not pass in time."""


class ManagedProcess:
    """One supervised process. Configure in ``__init__`` (or :meth:`module`), then :meth:`start`,
    :meth:`wait_ready` and :meth:`stop`; or use it as a context manager (start on entry, stop on exit).

    Output goes to ``log`` (appended; the file's folder is created), or, with ``on_line``, through a pipe to
    that callback one line at a time (the last ``tail_lines`` are kept for error messages), or, with
    neither, nowhere. ``env`` is overlaid on this process's environment (``PYTHONUNBUFFERED=1`` in between,
    so a Python child's output reaches the log as it is written), or with ``inherit_env=False`` is the whole
    environment (plus that one variable). ``delete_log`` removes the log file once
    :meth:`stop` has ended the process (a temporary log that only matters while something goes wrong).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: Path | str | None = None,
        log: Path | None = None,
        on_line: Callable[[str], None] | None = None,
        tail_lines: int = 30,
        delete_log: bool = False,
    ) -> None:
        if log is not None and on_line is not None:
            raise ValueError("output goes either to a log file or to on_line, not both")
        self.name = name
        self.argv = [str(a) for a in argv]
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.cwd = cwd
        self.log = log
        self.on_line = on_line
        self.delete_log = delete_log
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self.popen: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None
        self._terminated = False
        self._stopped = False

    @classmethod
    def module(cls, name: str, module: str, *args: str, **kwargs: Any) -> Self:
        """``python -m module args...`` with this interpreter; keyword arguments as for the constructor."""
        return cls(name, [sys.executable, "-m", module, *args], **kwargs)

    # -- state -----------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._started().pid

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def poll(self) -> int | None:
        return self._started().poll()

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process itself (not its group) to exit; ``subprocess.TimeoutExpired`` past ``timeout``."""
        return self._started().wait(timeout=timeout)

    def send_signal(self, sig: int) -> None:
        """Signal the process itself only (a fault test's SIGKILL or SIGSTOP); :meth:`stop` signals the group."""
        self._started().send_signal(sig)

    def exit_description(self) -> str:
        """``"exit code N"`` or ``"signal N"`` once exited; ``"running"`` before."""
        code = self.returncode
        if code is None:
            return "running"
        return f"signal {-code}" if code < 0 else f"exit code {code}"

    def last_output(self, lines: int = 10, chars: int = 3000) -> str:
        """The last lines the process wrote (from the pipe's tail, or the end of the log file)."""
        if self._pump is not None and self.returncode is not None:
            self._pump.join(timeout=2.0)  # an exited process's last lines may still be in the pipe
        if self.log is None:
            text = "\n".join(list(self.tail)[-lines:])
        else:
            try:
                text = self.log.read_text(errors="replace")[-chars:]
            except OSError:
                text = ""
        return text or "(no output)"

    def log_text(self) -> str:
        """Everything the process wrote to its log file so far ("" without one)."""
        if self.log is None:
            return ""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    # -- start -----------------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self.popen is not None:
            raise RuntimeError(f"{self.name} was already started (pid {self.popen.pid})")
        env = {**(os.environ if self.inherit_env else {}), "PYTHONUNBUFFERED": "1", **self.env}
        stdout: int | IO[bytes] = subprocess.DEVNULL
        log_file: IO[bytes] | None = None
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            log_file = stdout = self.log.open("ab")
        elif self.on_line is not None:
            stdout = subprocess.PIPE
        try:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,  # its own process group: stop() ends it and its children, nothing else
            )
        finally:
            if log_file is not None:
                log_file.close()  # the child keeps its own copy of the descriptor
        if self.on_line is not None:
            self._pump = threading.Thread(target=self._read_lines, name=f"{self.name}-output", daemon=True)
            self._pump.start()
        logger.debug("started %s (pid %s): %s", self.name, self.popen.pid, " ".join(self.argv))
        return self

    def _read_lines(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None and self.on_line is not None
        for raw in self.popen.stdout:
            line = raw.rstrip("\n")
            self.tail.append(line)
            try:
                self.on_line(line)
            except Exception:  # a broken consumer must not stop the draining (the child would block on a full pipe)
                logger.exception("output callback of %s failed", self.name)

    def _started(self) -> subprocess.Popen[str]:
        if self.popen is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self.popen

    # -- readiness -------------------------------------------------------------------------------------------

    def wait_ready(
        self,
        probe: Probe,
        timeout_s: float,
        *,
        interval_s: float = 0.5,
        request_timeout_s: float = 2.0,
    ) -> None:
        """Return once ``probe`` passes: a URL that answers GET with 200, or a callable that returns true.

        Raises :class:`ProcessExitedError` at once when the process exits first, :class:`NotReadyError` after
        ``timeout_s``; both name the process, the log file and its last output. The process is left as it is
        (the caller stops it, or the ``with`` block does)."""
        proc = self._started()
        check = _http_probe(probe, request_timeout_s) if isinstance(probe, str) else probe
        what = probe if isinstance(probe, str) else getattr(probe, "__name__", "probe")
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise ProcessExitedError(self._failure(f"exited ({self.exit_description()}) before it was ready"), self)
            if check():
                return
            if time.monotonic() >= deadline:
                if proc.poll() is not None:
                    continue  # it died while the last probe waited: say so rather than "not ready"
                raise NotReadyError(self._failure(f"not ready after {timeout_s:.0f} s ({what})"), self)
            time.sleep(interval_s)

    def start_ready(
        self,
        probe: Probe,
        timeout_s: float,
        *,
        interval_s: float = 0.5,
        request_timeout_s: float = 2.0,
        grace_s: float = 10.0,
    ) -> Self:
        """:meth:`start`, then :meth:`wait_ready`; a process that does not become ready (or a caller that is
        interrupted meanwhile) is stopped before the error propagates, so no half-started service is left. Its
        log is kept then, even with ``delete_log``: the error names it."""
        self.start()
        try:
            self.wait_ready(probe, timeout_s, interval_s=interval_s, request_timeout_s=request_timeout_s)
        except BaseException:
            self.delete_log = False
            self.stop(grace_s)
            raise
        return self

    def _failure(self, what: str) -> str:
        where = f"; log {self.log}" if self.log is not None else ""
        return f"{self.name} {what}{where}; last output:\n{self.last_output()}"

    # -- stop ------------------------------------------------------------------------------------------------

    def terminate(self) -> None:
        """Send SIGTERM to the process group, once: a second one makes some servers skip their clean exit."""
        if self.popen is None or self._terminated:
            return
        self._terminated = True
        _signal_group(self.popen.pid, signal.SIGTERM)

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM the group, wait up to ``grace_s`` for it, then SIGKILL what is left. Returns the exit status
        (``None`` if never started). Safe to call again, and on a process that already exited."""
        if self.popen is None:
            return None
        if not self._stopped:
            deadline = time.monotonic() + grace_s
            self.terminate()  # the group, even when the leader already exited: what it left behind hears it too
            try:
                self.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
            else:  # the leader is gone: the rest of its group gets what is left of the grace period
                _wait_group(self.popen.pid, deadline)
                _signal_group(self.popen.pid, signal.SIGKILL)
            self._stopped = True
            if self._pump is not None:
                self._pump.join(timeout=2.0)
            if self.popen.stdout is not None:
                with contextlib.suppress(OSError):
                    self.popen.stdout.close()
            if self.delete_log and self.log is not None:
                self.log.unlink(missing_ok=True)
        return self.popen.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        pid = self.popen.pid if self.popen is not None else None
        return f"ManagedProcess({self.name!r}, pid={pid}, {self.exit_description()})"


def stop_all(processes: Iterable[ManagedProcess], grace_s: float = 10.0) -> None:
    """Stop several processes together: SIGTERM to every group in the given order, then one shared grace period
    (not one each) before SIGKILL."""
    procs = list(processes)
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in procs:
        proc.stop(grace_s=max(0.1, deadline - time.monotonic()))


def _http_probe(url: str, timeout_s: float) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return httpx.get(url, timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs. A zombie does not count: an orphan waits for whoever
    adopted it to reap it, and where that is a container's init that never reaps, it would wait forever."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp ...
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _wait_group(pgid: int, deadline: float) -> None:
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)


def interrupt_on_sigterm() -> None:
    """Make SIGTERM end this process as Ctrl-C does (``KeyboardInterrupt``), so ``finally`` blocks run and stop the
    servers a tool started (a local LLM, an API): by default SIGTERM kills Python outright and leaves them running.
    Call it from a command's ``main`` (the main thread), never at import."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():  # only the main thread may set a handler
        signal.signal(signal.SIGTERM, interrupt)
