"""``RAG_INGEST_QUEUE=redis``: a Redis stream with a consumer group, read by separate worker processes."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from ingest.jobs.model import DONE, IngestJob, JobStatus, cancelling
from ingest.jobs.queue import Delivery
from services.core.types import IngestQueueKind

logger = logging.getLogger(__name__)


class RedisQueue:
    """Jobs on a Redis stream read by the consumer group ``workers``; statuses as keys with a TTL.

    - ``reserve`` first claims an entry another consumer left pending for longer than the visibility timeout
      (XAUTOCLAIM: that worker died), then reads new ones (XREADGROUP, blocking);
    - the delivery count Redis keeps per pending entry is the attempt number, crashes included;
    - ``finish`` acknowledges and deletes the entry; ``retry`` acknowledges it and adds the job again, with
      its attempts carried in the entry, so a retried job goes to the back of the queue.
    """

    kind: IngestQueueKind = "redis"
    GROUP = "workers"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "ragstack:ingest",
        max_attempts: int = 3,
        visibility_timeout_s: float = 300.0,
        retry_backoff_s: float = 5.0,
        status_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        import redis

        # Any: redis-py types every command as sync-or-async; this client is the sync one.
        self.redis: Any = redis.Redis.from_url(
            url, socket_timeout=30, socket_connect_timeout=5, health_check_interval=30
        )
        self.stream = f"{prefix}:jobs"
        self.delayed = f"{prefix}:delayed"  # retried jobs by due time (a sorted set), moved to the stream when due
        self.retry_backoff_s = retry_backoff_s
        self.prefix = prefix
        self.max_attempts = max_attempts
        self.visibility_ms = int(visibility_timeout_s * 1000)
        self.status_ttl_s = status_ttl_s
        self._group_ready = False

    def _group(self) -> None:
        if self._group_ready:
            return
        import redis

        try:
            self.redis.xgroup_create(self.stream, self.GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _key(self, doc_id: str) -> str:
        return f"{self.prefix}:status:{doc_id}"

    def _cancel_key(self, job_id: str) -> str:
        return f"{self.prefix}:cancel:{job_id}"

    def _set(self, status: JobStatus, *, latest_only: bool = True) -> None:
        """Write a status unless a newer job of the same document owns it (a re-upload while one runs)."""
        key = self._key(status.doc_id)
        if latest_only:
            current = self.status(status.doc_id)
            if current is not None and current.job_id != status.job_id and current.state not in DONE:
                return
        self.redis.set(key, status.to_json(), ex=self.status_ttl_s)

    def submit(self, job: IngestJob) -> JobStatus:
        self._group()
        status = JobStatus.of(job, "queued")
        self._set(status, latest_only=False)
        self.redis.xadd(self.stream, {"job": job.to_json(), "retries": "0"})
        return status

    def _delivery(self, entry_id: bytes | str, fields: dict[Any, Any], deliveries: int) -> Delivery:
        token = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        get = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
        job = IngestJob.from_json(get["job"])
        retries = int(get.get("retries", 0))
        return Delivery(job, retries + deliveries, token)

    def _times_delivered(self, token: str) -> int:
        pending = self.redis.xpending_range(self.stream, self.GROUP, min=token, max=token, count=1)
        return int(pending[0]["times_delivered"]) if pending else 1

    def _promote_due(self) -> None:
        """Move retried jobs whose backoff has passed onto the stream. ZREM is the claim: of several workers
        promoting at once, only the one that removed an entry adds it."""
        for member in self.redis.zrangebyscore(self.delayed, 0, time.time(), start=0, num=20):
            if self.redis.zrem(self.delayed, member):
                job_json, _, retries = (member.decode() if isinstance(member, bytes) else member).rpartition("\n")
                self.redis.xadd(self.stream, {"job": job_json, "retries": retries})

    def reserve(self, consumer: str, timeout_s: float) -> Delivery | None:
        self._group()
        self._promote_due()
        claimed = self.redis.xautoclaim(self.stream, self.GROUP, consumer, self.visibility_ms, "0-0", count=1)
        entries = claimed[1] if len(claimed) > 1 else []
        entries = [e for e in entries if e and e[1]]  # an entry deleted meanwhile comes back empty
        if entries:
            entry_id, fields = entries[0]
            token = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            delivery = self._delivery(entry_id, fields, self._times_delivered(token))
            logger.warning("took over ingest job %s (%s) left by a worker that stopped", token, delivery.job.source)
        else:
            block = max(1, int(timeout_s * 1000))
            read = self.redis.xreadgroup(self.GROUP, consumer, {self.stream: ">"}, count=1, block=block)
            if not read:
                return None
            entry_id, fields = read[0][1][0]
            delivery = self._delivery(entry_id, fields, 1)
        if not self.cancel_requested(delivery.job.job_id):  # a cancelled one is only handed out to be ended
            self._set(JobStatus.of(delivery.job, "processing", attempts=delivery.attempt))
        return delivery

    def extend(self, delivery: Delivery) -> None:
        # Re-claiming our own entry resets its idle time (and adds no delivery with JUSTID).
        consumer = f"heartbeat-{os.getpid()}"
        self.redis.xclaim(self.stream, self.GROUP, consumer, 0, [delivery.token], justid=True)

    def finish(self, delivery: Delivery, status: JobStatus) -> None:
        self._set(status)
        pipe = self.redis.pipeline()
        pipe.xack(self.stream, self.GROUP, delivery.token)
        pipe.xdel(self.stream, delivery.token)
        pipe.delete(self._cancel_key(delivery.job.job_id))
        pipe.execute()

    def requeue(self, delivery: Delivery, status: JobStatus, delay_s: float) -> None:
        self._set(status)
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(self.delayed, {f"{delivery.job.to_json()}\n{delivery.attempt}": time.time() + delay_s})
        pipe.xack(self.stream, self.GROUP, delivery.token)
        pipe.xdel(self.stream, delivery.token)
        pipe.execute()

    def status(self, doc_id: str) -> JobStatus | None:
        raw = self.redis.get(self._key(doc_id))
        return JobStatus.from_json(raw) if raw else None

    def report(self, status: JobStatus) -> None:
        self._set(status)

    def cancel(self, doc_id: str) -> JobStatus | None:
        status = self.status(doc_id)
        if status is None or status.state in DONE:
            return status
        # The flag first: a worker that reserves the job from here on ends it instead of running it.
        self.redis.set(self._cancel_key(status.job_id), "1", ex=self.status_ttl_s)
        stopped = cancelling(status)
        self._set(stopped)
        return stopped

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.redis.exists(self._cancel_key(job_id)))

    def depth(self) -> int:
        self._group()
        return int(self.redis.xlen(self.stream)) + int(self.redis.zcard(self.delayed))

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except Exception:
            return False

    def close(self) -> None:
        self.redis.close()
