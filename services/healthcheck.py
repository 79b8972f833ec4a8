"""``python -m services.healthcheck``: the probes every container's HEALTHCHECK runs.

Why a module and not ``curl`` in the compose file: the slim Python images have no curl, and a probe that is
a Python module is exercised by the local tests like any other entry point, so a healthcheck cannot rot
unnoticed in a file no test reads.

Two probes:

* ``http URL``: healthy when the URL answers 2xx (the API's ``/healthz``, the frontend's page). The URL
  may name environment variables (``${RAG_EVAL_API_URL}/healthz``): they are expanded here, so a
  Dockerfile's exec-form HEALTHCHECK follows the container's configuration without a shell;
* ``file PATH --max-age S``: healthy when a heartbeat file was touched within S seconds (the ingest
  watcher, which serves no HTTP). :class:`Heartbeat` is the writer side.

Exit status 0 = healthy, 1 = unhealthy, with one line on stderr saying why (Docker shows it in
``docker inspect``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


def check_http(url: str, timeout_s: float = 4.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # URL is operator config
            status = response.status
    except urllib.error.HTTPError as exc:
        return False, f"{url} answered {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url} unreachable: {exc}"
    return 200 <= status < 300, f"{url} answered {status}"


def check_file(path: Path, max_age_s: float, now: float | None = None) -> tuple[bool, str]:
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False, f"no heartbeat at {path}"
    if age > max_age_s:
        return False, f"heartbeat {path} is {age:.0f} s old (limit {max_age_s:.0f} s)"
    return True, f"heartbeat {age:.0f} s old"


class Heartbeat:
    """Touches a file every ``interval_s`` from a daemon thread while the owner says it is healthy.

    A thread rather than a touch in the owner's loop, because the owner may legitimately block for a long
    time (the first sync of a large folder); the owner reports failure with ``healthy = False`` instead,
    and the file then goes stale so the probe fails.
    """

    def __init__(self, path: Path, interval_s: float = 10.0) -> None:
        self.path = path
        self.interval_s = interval_s
        self.healthy = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        if self.healthy:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.beat()
            self._stop.wait(self.interval_s)

    def start(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 1)
        self.path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.healthcheck", description=__doc__.split("\n")[0])
    probes = parser.add_subparsers(dest="probe", required=True)
    http = probes.add_parser("http", help="healthy when URL answers 2xx")
    http.add_argument("url")
    http.add_argument("--timeout", type=float, default=4.0)
    beat = probes.add_parser("file", help="healthy when PATH was touched within --max-age seconds")
    beat.add_argument("path", type=Path)
    beat.add_argument("--max-age", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.probe == "http":
        ok, why = check_http(os.path.expandvars(args.url), args.timeout)
    else:
        ok, why = check_file(args.path, args.max_age)
    print(("healthy: " if ok else "unhealthy: ") + why, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
