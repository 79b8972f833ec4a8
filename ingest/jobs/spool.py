"""Where uploaded bytes wait for their job: a folder shared by the API and the workers."""

from __future__ import annotations

import os
import re
from pathlib import Path

BLOB_NAME = re.compile(r"[0-9a-f]{32}")


class UploadSpool:
    """Uploaded bytes on disk until their job ends: one file per job, written atomically (temporary file,
    fsync, rename), so a crash never leaves a half-written upload under a job's name."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, blob: str) -> Path:
        """A blob is a job id (32 hex digits): a job read from the queue can never name another path."""
        if not BLOB_NAME.fullmatch(blob):
            raise ValueError(f"not a spool blob name: {blob!r}")
        return self.root / blob

    def put(self, blob: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(blob)
        tmp = path.with_name(f".{blob}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)

    def read(self, blob: str) -> bytes:
        return self._path(blob).read_bytes()

    def discard(self, blob: str) -> None:
        self._path(blob).unlink(missing_ok=True)
