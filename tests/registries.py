"""The hosts this machine installs from, read from its own configuration (never written in our code): pip's
index URLs (its configuration and environment, else pip's built-in default index), apt's sources, and the
model hub huggingface_hub would call. The air-gap tests assert that a container cannot reach them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
DOCUMENTATION_ADDRESS = "192.0.2.1"  # TEST-NET-1 (RFC 5737): an address by number, never a real host


def _hosts(urls: list[str]) -> set[str]:
    return {h for u in urls if (h := urlsplit(u).hostname) and urlsplit(u).scheme in ("http", "https")}


def pip_hosts() -> set[str]:
    """The index hosts pip uses here: index-url and extra-index-url from ``pip config list`` and PIP_*."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
    ).stdout
    values: dict[str, list[str]] = {"index-url": [], "extra-index-url": []}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        if name in values:
            values[name] += value.strip().strip("'\"").split()
    for name, env in (("index-url", "PIP_INDEX_URL"), ("extra-index-url", "PIP_EXTRA_INDEX_URL")):
        values[name] += os.environ.get(env, "").split()
    if not values["index-url"]:
        from pip._internal.models.index import PyPI  # pip's own default index, as pip itself names it

        values["index-url"].append(PyPI.url)
    return _hosts(values["index-url"] + values["extra-index-url"])


def apt_hosts() -> set[str]:
    """The mirrors apt uses here: ``URIs:`` of deb822 sources and ``deb`` lines of one-line sources."""
    files = [p for root in APT_SOURCES for p in ([root] if root.is_file() else sorted(root.glob("*")))]
    urls: list[str] = []
    for path in files:
        if path.suffix not in (".list", ".sources") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        urls += [u for line in re.findall(r"(?m)^URIs:\s*(.+)$", text) for u in line.split()]
        urls += re.findall(r"(?m)^deb(?:-src)?\s+(?:\[[^]]*\]\s+)?(\S+)", text)
    return _hosts(urls)


def hub_hosts() -> set[str]:
    """The model hub huggingface_hub would call (its configured endpoint)."""
    from huggingface_hub import constants

    return _hosts([constants.ENDPOINT])


def outside_targets() -> list[str]:
    """Every host a container must not reach, plus a documentation address (a route by number)."""
    return sorted(pip_hosts() | apt_hosts() | hub_hosts()) + [DOCUMENTATION_ADDRESS]
