"""The air-gapped guard (pytest plugin, loaded by conftest.py): `make test` runs the suite in a loopback-only
network namespace (`unshare -n`, then `ip link set lo up`), where a connection to anything but this machine
fails at once (ENETUNREACH, no DNS). That stops a reach outside from any process the tests start (API,
launcher, llama-server, Phoenix, Chromium); this plugin also makes it a failure when a component swallows the
error: with RAG_TEST_AIRGAPPED=1, every DNS lookup of a non-local name and every connect to a non-loopback
address made in the test process (the in-process app, its clients, the hub libraries) fails the test that made
it, naming the address. Outside the namespace (plain `pytest`) nothing is checked.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

ENABLED = os.environ.get("RAG_TEST_AIRGAPPED") == "1"
LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}
_attempts: list[str] = []


def is_local(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str) or host.lower() in LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False  # a name that is not this machine's
    return address.is_loopback or address.is_unspecified


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.getaddrinfo" and not is_local(args[0]):
        _attempts.append(f"DNS lookup of {args[0]!r}")
    elif event == "socket.connect" and isinstance(args[1], tuple) and not is_local(args[1][0]):
        _attempts.append(f"connect to {args[1][0]}:{args[1][1]}")


if ENABLED:
    sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def _no_reach_outside() -> Iterator[None]:
    before = len(_attempts)
    yield
    if ENABLED and len(_attempts) > before:
        pytest.fail("reached outside this machine: " + "; ".join(sorted(set(_attempts[before:]))), pytrace=False)
