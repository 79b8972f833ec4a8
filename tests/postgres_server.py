"""A REAL PostgreSQL server (Debian's ``postgresql`` package) on a free loopback port for one test module, in a
temporary cluster of its own; skipped with the way to install it when the binaries are missing.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to the package's
``postgres`` user and its programs run under ``setpriv`` as that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.core.processes import ManagedProcess, free_port


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a SQLAlchemy URL (``postgresql+psycopg://...``) of an empty database ``ragstack``."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("needs PostgreSQL (make test installs Debian's postgresql package)")
    pytest.importorskip("psycopg")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="pg-test-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
    data = folder / "data"
    port = free_port()
    try:
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "ragstack", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        argv = [*as_user, str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1"]
        argv += ["-k", str(folder), "-c", "fsync=off", "-c", "full_page_writes=off"]
        url = f"postgresql+psycopg://ragstack@127.0.0.1:{port}/ragstack"

        def answers() -> bool:
            done = subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True, check=False
            )
            return done.returncode == 0

        with ManagedProcess("postgres", argv) as proc:
            proc.wait_ready(answers, timeout_s=30, interval_s=0.1)
            subprocess.run(
                [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "ragstack", "ragstack"],
                check=True,
                capture_output=True,
            )
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)
