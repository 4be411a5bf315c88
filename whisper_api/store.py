"""The durable job store: one SQLite database (WAL) in the data dir, shared by all processes."""
from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterator

from .jobs import Callback, Job, JobOptions, JobStatus

CALLBACK_PENDING, CALLBACK_DELIVERED, CALLBACK_FAILED = "pending", "delivered", "failed"

COLUMNS = (
    ("id", "TEXT PRIMARY KEY"),
    ("status", "TEXT NOT NULL"),
    ("filename", "TEXT NOT NULL"),
    ("path", "TEXT NOT NULL"),
    ("file_size", "INTEGER NOT NULL"),
    ("options", "TEXT NOT NULL"),
    ("created_at", "REAL NOT NULL"),
    ("started_at", "REAL"),
    ("completed_at", "REAL"),
    ("device", "TEXT"),
    ("attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("progress", "REAL NOT NULL DEFAULT 0"),
    ("duration", "REAL"),
    ("language", "TEXT"),
    ("segments", "TEXT"),
    ("result", "TEXT"),
    ("error", "TEXT"),
    ("stage", "TEXT"),
    ("raw_result", "TEXT"),
    ("upgrade_error", "TEXT"),
    # callback delivery: pending -> delivered | failed
    ("callback_state", "TEXT"),
    ("callback_attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("callback_error", "TEXT"),
    ("callback_next_at", "REAL"),
    ("callback_at", "REAL"),
    # a worker host's hold on a processing job (distributed queue): its lease and last report
    ("lease", "TEXT"),
    ("heartbeat_at", "REAL"),
)
TRANSCRIPT_COLUMNS = ("segments", "result", "raw_result")
SUMMARY_COLUMNS = ", ".join(f"NULL AS {name}" if name in TRANSCRIPT_COLUMNS else name for name, _ in COLUMNS)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS jobs (" + ", ".join(f"{name} {decl}" for name, decl in COLUMNS) + ");"
    "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);"
    "CREATE INDEX IF NOT EXISTS jobs_callbacks ON jobs (callback_state, callback_next_at);"
    # ids removed by retention, so their status can say "expired" rather than "unknown"
    "CREATE TABLE IF NOT EXISTS expired (id TEXT PRIMARY KEY, expired_at REAL NOT NULL);"
)


class JobStore:
    """Jobs in SQLite; one connection per thread, every write its own transaction."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        db.executescript(SCHEMA)
        present = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
        for name, decl in COLUMNS:  # a database from an older version gains the new columns
            if name not in present:
                try:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {decl}")
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):  # another process added it first
                        raise

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def _write(self, sql: str, params: tuple = ()) -> int:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            rowcount = db.execute(sql, params).rowcount
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return rowcount

    def add(self, job: Job) -> None:
        """Commit a new queued job."""
        self._write(
            "INSERT INTO jobs (id, status, filename, path, file_size, options, created_at, duration,"
            " callback_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job.id, JobStatus.QUEUED.value, job.filename, job.path, job.file_size,
             json.dumps(job.options.to_dict(), ensure_ascii=False), job.created_at, job.duration,
             CALLBACK_PENDING if job.options.callback_url else None),
        )

    def get(self, job_id: str) -> Job | None:
        row = self._connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def status_of(self, job_id: str) -> JobStatus | None:
        """Only the job's state (a waiting status request reads it every few milliseconds)."""
        row = self._connect().execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobStatus(row["status"]) if row else None

    def get_unparsed(self, job_id: str) -> tuple[Job, str] | None:
        """The job without its segments, and their JSON text as stored: for an answer that passes
        the text on rather than parsing and encoding a long transcript again on every poll."""
        row = self._connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return (_job(row, segments=False), row["segments"] or "[]") if row else None

    def claim(self, job_id: str, device: str) -> Job | None:
        """Move a queued job to processing on ``device``; None if someone else has it."""
        changed = self._write(
            "UPDATE jobs SET status = ?, device = ?, started_at = ?, attempts = attempts + 1,"
            " progress = 0 WHERE id = ? AND status = ?",
            (JobStatus.PROCESSING.value, device, time.time(), job_id, JobStatus.QUEUED.value),
        )
        return self.get(job_id) if changed else None

    def claim_remote(self, job_id: str, holder: str) -> tuple[Job, str] | None:
        """Move a queued job to processing on a worker host's ``holder``; the job and the lease
        that host must show with every later report. None if the job is not queued."""
        lease, now = secrets.token_hex(16), time.time()
        changed = self._write(
            "UPDATE jobs SET status = ?, device = ?, started_at = ?, attempts = attempts + 1,"
            " progress = 0, lease = ?, heartbeat_at = ? WHERE id = ? AND status = ?",
            (JobStatus.PROCESSING.value, holder, now, lease, now, job_id, JobStatus.QUEUED.value),
        )
        return (self.get(job_id), lease) if changed else None

    def holds(self, job_id: str, lease: str) -> bool:
        """Whether ``lease`` is the current hold on the processing job (a stale host's is not)."""
        row = self._connect().execute("SELECT lease FROM jobs WHERE id = ? AND status = ? AND stage IS NULL",
                                      (job_id, JobStatus.PROCESSING.value)).fetchone()
        return row is not None and row["lease"] is not None and secrets.compare_digest(row["lease"], lease)

    def heartbeat(self, job_id: str, lease: str, progress: float | None = None) -> bool:
        """A worker host's report on the job it holds; False when it holds it no more."""
        return bool(self._write(
            "UPDATE jobs SET heartbeat_at = ?, progress = COALESCE(?, progress)"
            " WHERE id = ? AND status = ? AND stage IS NULL AND lease = ?",
            (time.time(), progress, job_id, JobStatus.PROCESSING.value, lease),
        ))

    def stale_remote(self, before: float) -> list[Job]:
        """Jobs held by worker hosts that have not reported since ``before``."""
        rows = self._connect().execute(
            f"SELECT {SUMMARY_COLUMNS} FROM jobs WHERE status = ? AND stage IS NULL AND lease IS NOT NULL"
            " AND heartbeat_at < ?", (JobStatus.PROCESSING.value, before)).fetchall()
        return [_job(row) for row in rows]

    def progress(self, job_id: str, progress: float) -> None:
        self._write(
            "UPDATE jobs SET progress = ? WHERE id = ? AND status = ?",
            (progress, job_id, JobStatus.PROCESSING.value),
        )

    def record_transcript(self, job_id: str, *, segments: list, text: str, language: str | None,
                          duration: float | None, then: str | None = None, lease: str | None = None) -> bool:
        """Store a processing job's transcript: the job is done, unless after-step ``then`` follows.

        False when the job was no longer processing (it ended meanwhile), or, with ``lease``, when
        that worker host's hold on it has ended.
        """
        done = then is None
        return bool(self._write(
            "UPDATE jobs SET status = ?, stage = ?, completed_at = ?, progress = 100, segments = ?,"
            " raw_result = ?, result = ?, language = ?, duration = COALESCE(?, duration), error = NULL"
            " WHERE id = ? AND status = ? AND (? IS NULL OR lease = ?)",
            (JobStatus.DONE.value if done else JobStatus.PROCESSING.value, then,
             time.time() if done else None, json.dumps(segments, ensure_ascii=False), text,
             text if done else None, language, duration, job_id, JobStatus.PROCESSING.value, lease, lease),
        ))

    def complete(self, job_id: str, *, result: str, upgrade_error: str | None = None) -> bool:
        """End a job's after-step: it is done with the final ``result``."""
        return bool(self._write(
            "UPDATE jobs SET status = ?, stage = NULL, completed_at = ?, result = ?, upgrade_error = ?"
            " WHERE id = ? AND status = ? AND stage IS NOT NULL",
            (JobStatus.DONE.value, time.time(), result, upgrade_error, job_id,
             JobStatus.PROCESSING.value),
        ))

    def fail(self, job_id: str, error: str, lease: str | None = None) -> bool:
        """End an unfinished job with ``error`` (with ``lease``: only while that hold lasts)."""
        return bool(self._write(
            "UPDATE jobs SET status = ?, completed_at = ?, error = ? WHERE id = ? AND status IN (?, ?)"
            " AND (? IS NULL OR lease = ?)",
            (JobStatus.ERROR.value, time.time(), error, job_id,
             JobStatus.QUEUED.value, JobStatus.PROCESSING.value, lease, lease),
        ))

    def requeue(self, job_id: str, refund: bool = False) -> bool:
        """Put a processing job back in the queue (its worker is gone).

        ``refund`` gives the attempt back: the job was stopped by a shutdown, not a crash.
        """
        return bool(self._write(
            "UPDATE jobs SET status = ?, device = NULL, started_at = NULL, progress = 0, lease = NULL,"
            " heartbeat_at = NULL, attempts = MAX(0, attempts - ?) WHERE id = ? AND status = ?",
            (JobStatus.QUEUED.value, int(refund), job_id, JobStatus.PROCESSING.value),
        ))

    def delete(self, job_id: str) -> bool:
        """Delete a job that is not processing; False when there was none to delete."""
        return bool(self._write("DELETE FROM jobs WHERE id = ? AND status != ?",
                                (job_id, JobStatus.PROCESSING.value)))

    def expire(self, job_id: str) -> None:
        """Delete a finished job for good, leaving a tombstone with its id."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            db.execute("INSERT OR REPLACE INTO expired (id, expired_at) VALUES (?, ?)", (job_id, time.time()))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def expired_at(self, job_id: str) -> float | None:
        row = self._connect().execute("SELECT expired_at FROM expired WHERE id = ?", (job_id,)).fetchone()
        return row[0] if row else None

    def forget_expired(self, before: float) -> None:
        self._write("DELETE FROM expired WHERE expired_at < ?", (before,))

    def ids(self) -> set[str]:
        return {row[0] for row in self._connect().execute("SELECT id FROM jobs")}

    def by_status(self, status: JobStatus, limit: int = 1000, newest_first: bool = False) -> list[Job]:
        """Jobs in ``status`` for listings: without their transcripts, which can be large."""
        order = "completed_at DESC" if newest_first else "created_at"
        rows = self._connect().execute(
            f"SELECT {SUMMARY_COLUMNS} FROM jobs WHERE status = ? ORDER BY {order} LIMIT ?",
            (status.value, limit),
        ).fetchall()
        return [_job(row) for row in rows]

    def finished_before(self, cutoff: float) -> Iterator[Job]:
        rows = self._connect().execute(
            "SELECT * FROM jobs WHERE status IN (?, ?) AND completed_at < ?",
            (JobStatus.DONE.value, JobStatus.ERROR.value, cutoff),
        ).fetchall()
        return (_job(row) for row in rows)

    def due_callbacks(self, now: float, limit: int = 20) -> list[Job]:
        """Finished jobs whose callback is pending and due."""
        rows = self._connect().execute(
            "SELECT * FROM jobs WHERE callback_state = ? AND status IN (?, ?)"
            " AND COALESCE(callback_next_at, 0) <= ? ORDER BY completed_at LIMIT ?",
            (CALLBACK_PENDING, JobStatus.DONE.value, JobStatus.ERROR.value, now, limit),
        ).fetchall()
        return [_job(row) for row in rows]

    def callback_attempted(self, job_id: str, *, delivered: bool, error: str | None,
                           retry_at: float | None) -> None:
        """Record one delivery attempt: delivered, to be retried at ``retry_at``, or failed."""
        state = CALLBACK_DELIVERED if delivered else CALLBACK_PENDING if retry_at else CALLBACK_FAILED
        self._write(
            "UPDATE jobs SET callback_state = ?, callback_attempts = callback_attempts + 1,"
            " callback_error = ?, callback_next_at = ?, callback_at = ? WHERE id = ?",
            (state, error, retry_at, time.time(), job_id),
        )

    def counts(self) -> dict[str, int]:
        rows = self._connect().execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {status.value: 0 for status in JobStatus} | {row[0]: row[1] for row in rows}


def _job(row: sqlite3.Row, segments: bool = True) -> Job:
    return Job(
        id=row["id"],
        status=JobStatus(row["status"]),
        filename=row["filename"],
        path=row["path"],
        file_size=row["file_size"],
        options=JobOptions(**json.loads(row["options"])),
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        device=row["device"],
        attempts=row["attempts"],
        progress=row["progress"],
        duration=row["duration"],
        language=row["language"],
        segments=json.loads(row["segments"]) if segments and row["segments"] else [],
        result=row["result"],
        error=row["error"],
        stage=row["stage"],
        raw_result=row["raw_result"],
        upgrade_error=row["upgrade_error"],
        callback=Callback(state=row["callback_state"], attempts=row["callback_attempts"],
                          error=row["callback_error"], next_at=row["callback_next_at"],
                          last_at=row["callback_at"]) if row["callback_state"] else None,
    )
