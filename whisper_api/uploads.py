"""Turning an uploaded file into a committed, queued job: the one path every API shares."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import time
import uuid
from pathlib import Path

from . import audio
from .exceptions import ApiError, BadRequest, JobFailed, TooBusy, Unavailable
from .jobs import Job, JobOptions, JobStatus
from .services import Services

log = logging.getLogger(__name__)

EXTENSION = re.compile(r"^\.[a-z0-9]{1,8}$")


def clean_filename(raw: str | None) -> str:
    """The client's file name, kept as metadata only: no path, no control characters."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or "upload"


def save_upload(upload_dir: Path, storage, job_id: str) -> Path:
    """Write the upload under the service's own id; a failed write leaves nothing behind."""
    suffix = Path(clean_filename(storage.filename)).suffix.lower()
    target = upload_dir / (job_id + (suffix if EXTENSION.match(suffix) else ""))
    partial = target.with_name(target.name + ".part")
    try:
        upload_dir.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as out:
            storage.save(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        log.error("could not store an upload: %s", exc)
        raise Unavailable(f"the service could not store the upload ({exc.strerror or exc})") from None
    return target


def create_job(services: Services, storage, options: JobOptions) -> Job:
    """Store ``storage`` (a Werkzeug FileStorage), probe it, commit the job and queue it.

    Raises BadRequest (no, empty or non-audio file; too few channels for split_roads) or
    Unavailable (the upload could not be written). Nothing is left behind on failure.
    """
    if storage is None:
        raise BadRequest("no file: send the audio as the multipart field 'file'")
    limit = services.settings.queue_limit
    if limit and services.store.counts()[JobStatus.QUEUED.value] >= limit:
        raise TooBusy(f"the queue is full ({limit} jobs waiting); retry later")
    job_id = uuid.uuid4().hex
    path = save_upload(services.settings.upload_dir, storage, job_id)
    try:
        size = path.stat().st_size
        if size == 0:
            raise BadRequest("the file is empty")
        info = audio.probe(path)
        limit = services.settings.max_audio_minutes
        if limit and info.duration > limit * 60:
            raise ApiError(f"the audio is {info.duration / 60:.0f} minutes long; the limit is {limit:g} minutes",
                           413)
        if options.roads and len(options.roads.roles) > info.channels:
            raise BadRequest(
                f"split_roads asks for {len(options.roads.roles)} tracks but the file has "
                f"{info.channels} channel(s)"
            )
        job = Job(id=job_id, filename=clean_filename(storage.filename), path=str(path),
                  file_size=size, options=options, created_at=time.time(), duration=info.duration)
        services.store.add(job)
    except JobFailed as exc:
        path.unlink(missing_ok=True)
        raise BadRequest(str(exc)) from None
    except sqlite3.Error as exc:
        path.unlink(missing_ok=True)
        log.error("could not record job %s: %s", job_id, exc)
        raise Unavailable(f"the service could not record the job ({exc})") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    log.info("job %s queued: %s (%.1fs, model %s)", job_id, job.filename, info.duration,
             options.model_name)
    try:
        services.dispatcher.submit(job_id)
    except ConnectionError as exc:
        # The job is committed: the supervisor's sweep queues it once the pool is back.
        log.warning("job %s stored but not yet queued: %s", job_id, exc)
    return job
