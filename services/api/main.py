"""``python -m services.api.main``: the API process (uvicorn), used by make run, compose and tests alike."""

from __future__ import annotations

import logging

import uvicorn

from services.api.app import create_app
from services.core.settings import ApiSettings


def run() -> None:
    settings = ApiSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    run()
