"""Ingestion as jobs: an upload is stored durably, a job for it goes on a queue, workers run it, and each
document has a status a client can poll (queued → processing → complete | failed, with the reason).

Two queues behind one ``JobQueue`` interface, picked by ``RAG_INGEST_QUEUE``:

- ``local`` (default, ``make run``): in the API process, a worker thread; jobs are journalled as JSON files
  next to the spooled uploads, so a crash or restart loses nothing: the next start queues them again.
- ``redis``: a Redis stream with a consumer group (docs/scaling.md says why Redis Streams and not Celery).
  Workers are separate processes (``python -m ingest.worker``, the ``worker`` service in compose) that scale
  by count. A worker killed mid-job leaves its entry pending; another worker claims it once it has been idle
  for ``RAG_INGEST_VISIBILITY_TIMEOUT_S`` (a live worker keeps its long jobs alive by re-claiming them).

Delivery is at least once; the ingest pipeline is idempotent (deterministic ids, pending/complete manifest),
so a job run twice leaves exactly what one run leaves. A job that kills its worker every time (a poison
file) or keeps failing is marked ``failed`` after ``RAG_INGEST_MAX_ATTEMPTS`` deliveries and never blocks
the queue. Uploads live in the spool (``<RAG_DATA_DIR>/uploads``, a volume shared with the workers in
compose) until their job ends.
"""

from ingest.jobs.local import LocalQueue
from ingest.jobs.model import DONE, IngestJob, JobStatus, ended
from ingest.jobs.producers import FolderProducer
from ingest.jobs.queue import Delivery, JobQueue, backoff
from ingest.jobs.redis_stream import RedisQueue
from ingest.jobs.runner import JobRunner
from ingest.jobs.spool import UploadSpool

__all__ = [
    "DONE",
    "Delivery",
    "FolderProducer",
    "IngestJob",
    "JobQueue",
    "JobRunner",
    "JobStatus",
    "LocalQueue",
    "RedisQueue",
    "UploadSpool",
    "backoff",
    "ended",
]
