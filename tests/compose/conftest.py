"""The compose tests need images `make images` built and a container engine: `make compose-test` runs them."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("COMPOSE"):
        return
    skip = pytest.mark.skip(reason="needs the images and an engine: run `make compose-test`")
    for item in items:
        if item.get_closest_marker("compose"):
            item.add_marker(skip)
