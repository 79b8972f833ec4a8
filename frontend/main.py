"""``python -m frontend.main``: the chat UI process (Gradio), used by make run, compose and tests alike.

Readiness for a supervisor: ``GET /`` answers 200 once the UI is served.
"""

from __future__ import annotations

import logging
import os
import signal

# Before gradio is imported: no usage analytics leave the machine.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from services.core.observability import tracing
from services.core.settings import FrontendSettings

logger = logging.getLogger("frontend")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # Gradio closes its server on Ctrl-C; SIGTERM (launcher, docker stop) does the same


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    settings = FrontendSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tracing.setup_tracing(settings, "frontend")
    from frontend.app import build_app, launch_options

    demo = build_app(settings)
    logger.info("chat UI on http://%s:%s (API %s)", settings.frontend_host, settings.frontend_port,
                settings.frontend_api_url)  # fmt: skip
    try:
        demo.queue(default_concurrency_limit=settings.max_concurrent_requests).launch(**launch_options(settings))
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    main()
