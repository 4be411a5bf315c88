"""Deletes finished jobs and their files once they are older than the retention period."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from .config import Settings
from .store import JobStore

log = logging.getLogger(__name__)


def clean(settings: Settings, store: JobStore, now: float | None = None) -> int:
    """Remove jobs finished more than ``retention_hours`` ago; returns how many."""
    if settings.retention_hours <= 0:
        return 0
    cutoff = (now or time.time()) - settings.retention_hours * 3600
    removed = 0
    for job in store.finished_before(cutoff):
        Path(job.path).unlink(missing_ok=True)
        store.delete(job.id)
        removed += 1
    if removed:
        log.info("retention: removed %d jobs finished over %.0f h ago", removed, settings.retention_hours)
    return removed
