"""The compose stack's PostgreSQL start script (deploy/postgres/start.sh) with Debian's postgresql-15, the package
its image installs: the first start makes the cluster with the password from the environment, the application
database opens and migrates over the network with it, a wrong password is refused, and a restart keeps the data
without making the cluster again. (The image itself is built and started by `make compose-test`.)"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from postgres_server import _bindir
from sqlalchemy.exc import OperationalError

from services.core.processes import ManagedProcess, free_port
from services.core.settings import DatabaseSettings
from services.state.db import Database, DatabaseUnavailable
from services.state.store import AppState, TurnRecord

pytestmark = pytest.mark.integration

START = Path(__file__).resolve().parents[3] / "deploy" / "postgres" / "start.sh"
PASSWORD = "s3cret-0123456789"


@pytest.fixture
def folder() -> Iterator[Path]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("needs PostgreSQL (make test installs Debian's postgresql package)")
    path = Path(tempfile.mkdtemp(prefix="pg-image-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def started(folder: Path, port: int, log: Path) -> Iterator[ManagedProcess]:
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses root; the image runs it as uid 10001
        user = pwd.getpwnam("postgres")
        as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
    env = {
        "POSTGRES_PASSWORD": PASSWORD,
        "PG_BIN": str(_bindir()),
        "PGDATA": str(folder / "pgdata"),
        "POSTGRES_SOCKET_DIR": str(folder),
    }
    argv = [*as_user, "sh", str(START), "-p", str(port), "-c", "listen_addresses=127.0.0.1"]
    url = f"postgresql+psycopg://ragstack:{PASSWORD}@127.0.0.1:{port}/ragstack"

    def answers() -> bool:
        db = Database.open(DatabaseSettings(database_url=url, database_timeout_s=1), migrate=False)
        try:
            db.revision()  # connects
        except OperationalError:
            return False
        finally:
            db.close()
        return True

    with ManagedProcess("postgres", argv, env=env, log=log) as proc:
        proc.wait_ready(answers, timeout_s=60, interval_s=0.2)
        yield proc


def test_first_start_makes_the_cluster_and_a_restart_keeps_the_data(folder: Path) -> None:
    port = free_port()
    url = f"postgresql+psycopg://ragstack:{PASSWORD}@127.0.0.1:{port}/ragstack"
    with started(folder, port, folder / "first.log"):
        state = AppState(Database.open(DatabaseSettings(database_url=url)))
        state.record_turn(TurnRecord(id="a" * 32, question="Q?", answer="A [1].", declined=False))
        state.db.close()
        wrong = DatabaseSettings(database_url=url.replace(PASSWORD, "wrong"), database_timeout_s=2)
        with pytest.raises(DatabaseUnavailable, match="password authentication failed"):
            Database.open(wrong)
    assert "password" not in " ".join(os.listdir(folder))  # the password file is gone
    with started(folder, port, folder / "second.log"):
        again = AppState(Database.open(DatabaseSettings(database_url=url)))
        assert again.turn("a" * 32).question == "Q?"
        again.db.close()
    assert "The files belonging to this database system" in (folder / "first.log").read_text()  # initdb's own words
    assert "The files belonging to this database system" not in (folder / "second.log").read_text()  # no second initdb
    assert "scram-sha-256" in (folder / "pgdata" / "pg_hba.conf").read_text()
