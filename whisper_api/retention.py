"""Deletes finished jobs and their files once they are older than the retention period,
and upload files no job owns (a crash between writing the file and recording the job)."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from .config import Settings
from .store import JobStore

log = logging.getLogger(__name__)

ORPHAN_AGE = 3600.0  # an upload younger than this may still be on its way to a job row
TOMBSTONE_DAYS = 30


def clean(settings: Settings, store: JobStore, now: float | None = None) -> int:
    """Remove jobs finished more than ``retention_hours`` ago, and orphaned files; returns the jobs."""
    now = now or time.time()
    removed = 0
    if settings.retention_hours > 0:
        for job in store.finished_before(now - settings.retention_hours * 3600):
            Path(job.path).unlink(missing_ok=True)
            store.expire(job.id)
            removed += 1
        store.forget_expired(now - TOMBSTONE_DAYS * 86400)
    orphans = _remove_orphans(settings.upload_dir, store, now)
    if removed or orphans:
        log.info("retention: removed %d jobs finished over %g h ago and %d orphaned files",
                 removed, settings.retention_hours, orphans)
    return removed


def _remove_orphans(upload_dir: Path, store: JobStore, now: float) -> int:
    if not upload_dir.is_dir():
        return 0
    owned = store.ids()
    removed = 0
    for path in upload_dir.iterdir():
        job_id = path.name.split(".", 1)[0]
        if job_id in owned or now - path.stat().st_mtime < ORPHAN_AGE:
            continue
        path.unlink(missing_ok=True)
        removed += 1
    return removed
