"""Start the REAL Phoenix server (``python -m services.phoenix.server``, from .venv-phoenix) for tests.

Usage::

    proc, url = start_phoenix(tmp_path)    # url: "http://127.0.0.1:PORT"
    try:
        ...   # export OTLP/HTTP to f"{url}/v1/traces", read spans from f"{url}/v1/projects/<p>/spans"
    finally:
        stop(proc)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from llm_server import REPO_ROOT, stop

from services.core.processes import ManagedProcess, free_port

__all__ = ["phoenix_screenshot", "read_spans", "start_phoenix", "stop"]


def start_phoenix(data_dir: Path, *, timeout_s: float = 120.0) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = {
        "RAG_DATA_DIR": str(data_dir),
        "RAG_PHOENIX_PORT": str(port),
        "RAG_PHOENIX_GRPC_PORT": str(free_port()),
    }
    url = f"http://127.0.0.1:{port}"
    proc = ManagedProcess.module(
        "phoenix", "services.phoenix.server", env=env, cwd=REPO_ROOT, log=data_dir / "phoenix.log"
    ).start_ready(f"{url}/healthz", timeout_s, interval_s=1.0, grace_s=10)
    return proc, url


def read_spans(
    url: str, project: str, *, expect: int, names: set[str] = frozenset(), timeout_s: float = 30.0
) -> list[dict]:
    """Poll Phoenix's REST API until at least ``expect`` spans, including ``names``, of the project are stored."""
    deadline = time.monotonic() + timeout_s
    spans: list[dict] = []
    while time.monotonic() < deadline:
        r = httpx.get(f"{url}/v1/projects/{project}/spans", params={"limit": 1000}, timeout=10)
        if r.status_code == 200:
            spans = r.json()["data"]
            if len(spans) >= expect and names <= {s["name"] for s in spans}:
                return spans
        time.sleep(1)
    raise AssertionError(f"only {len(spans)} spans in Phoenix project {project!r} after {timeout_s:.0f} s")


def phoenix_screenshot(url: str, path: str, out: Path, show: Callable[[Any], None]) -> Path | None:
    """Phoenix's UI at ``url + path`` in headless Debian chromium, ``show(page)`` clicked through, saved to ``out``
    (None when no browser is installed). The docs' Phoenix pictures come from here (make screenshots)."""
    if not Path("/usr/bin/chromium").exists():
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.goto(f"{url}{path}", wait_until="networkidle")
            show(page)
            page.mouse.move(1, 1)  # no hover tooltip over the picture
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out))
        finally:
            browser.close()
    assert out.stat().st_size > 10_000
    return out
