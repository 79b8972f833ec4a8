"""``python -m ingest.worker``: an ingestion worker, the consumer side of the job queue (ingest/jobs/).

Run as many as you need embedding capacity (compose: ``--scale worker=N``); each takes one job at a time from
the Redis stream named by ``RAG_REDIS_URL``, reads the upload from the shared spool (``RAG_UPLOAD_DIR``), runs
the idempotent ingest pipeline into the Qdrant server, and records the outcome. SIGTERM lets the job in hand
finish first; SIGKILL leaves it pending, and another worker takes it over after the visibility timeout.
Healthy while its heartbeat file is fresh (``python -m services.healthcheck file``): the heartbeat stops when
the queue cannot be reached.

The local queue lives in the API process (``make run``), so a worker process needs ``RAG_INGEST_QUEUE=redis``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from ingest.factory import build_pipeline, build_queue, build_spool
from ingest.jobs import JobRunner
from ingest.maintenance import IndexMaintainer
from services.core.observability import tracing
from services.core.settings import IngestSettings
from services.healthcheck import Heartbeat

logger = logging.getLogger("ingest.worker")
HEARTBEAT = Path("/tmp/ragstack-ingest-worker.alive")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heartbeat", type=Path, default=HEARTBEAT, help="file touched while the worker is healthy")
    parser.add_argument("--once", action="store_true", help="run the jobs waiting now, then exit (tests, cron)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = IngestSettings()
    if settings.ingest_queue != "redis":
        print(
            "ingest.worker needs RAG_INGEST_QUEUE=redis and RAG_REDIS_URL: the local queue runs inside the API process",
            file=sys.stderr,
        )
        return 2
    tracing.setup_tracing(settings, "ingest-worker")
    queue = build_queue(settings)
    pipeline = build_pipeline(settings)
    pipeline.warm_up()
    runner = JobRunner(queue, build_spool(settings), pipeline, maintainer=IndexMaintainer(pipeline.store))
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("signal %d: finishing the job in hand, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    heartbeat = Heartbeat(args.heartbeat)
    heartbeat.start()
    logger.info("worker %s taking ingest jobs from %s", runner.consumer, queue.kind)
    try:
        if args.once:
            while runner.run_once(1.0) is not None:
                pass
        else:
            runner.run(stop, on_health=lambda ok: setattr(heartbeat, "healthy", ok))
    finally:
        heartbeat.stop()
        queue.close()
        pipeline.store.close()
        tracing.shutdown()
    logger.info("worker %s stopped after %d job(s)", runner.consumer, runner.done)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
