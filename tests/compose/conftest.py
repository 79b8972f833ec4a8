"""The compose tests need images `make images` built and a container engine: `make compose-test` runs them."""

from __future__ import annotations

import os

import pytest

# tests/conftest.py points in-process APIs at a temporary SQLite file; compose passes RAG_DATABASE_URL on to the
# containers, which keep their own database: the host's path must not reach them.
if "/ragstack-test-db-" in os.environ.get("RAG_DATABASE_URL", ""):
    del os.environ["RAG_DATABASE_URL"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("COMPOSE"):
        return
    skip = pytest.mark.skip(reason="needs the images and an engine: run `make compose-test`")
    for item in items:
        if item.get_closest_marker("compose"):
            item.add_marker(skip)
