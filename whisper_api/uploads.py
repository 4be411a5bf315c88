"""Turning an uploaded file into a committed, queued job: the one path every API shares."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO

from flask import Request, current_app
from werkzeug.formparser import FormDataParser, MultiPartParser

from . import audio
from .exceptions import ApiError, BadRequest, JobFailed, TooBusy, Unavailable
from .jobs import Job, JobOptions, JobStatus
from .services import Services

log = logging.getLogger(__name__)

EXTENSION = re.compile(r"^\.[a-z0-9]{1,8}$")
READ_SIZE = 512 * 1024
PART = ".part"  # an upload still being received; retention removes one a crash left behind


def clean_filename(raw: str | None) -> str:
    """The client's file name, kept as metadata only: no path, no control characters."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or "upload"


class UploadFormParser(FormDataParser):
    """Reads a multipart body in reads of ``READ_SIZE`` rather than Werkzeug's 64 KiB: gunicorn
    copies all it has read ahead (up to 1 MiB) on every read, and Werkzeug's parser loops once
    per read, so small reads cost a large upload more than the upload itself."""

    def _parse_multipart(self, stream: IO[bytes], mimetype: str, content_length: int | None,
                         options: dict[str, str]):
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        # Werkzeug answers 413 when one read and what it holds back pass max_form_memory_size.
        limit = self.max_form_memory_size
        parser = MultiPartParser(stream_factory=self.stream_factory, max_form_memory_size=limit,
                                 max_form_parts=self.max_form_parts, cls=self.cls,
                                 buffer_size=READ_SIZE if limit is None else min(READ_SIZE, limit // 2))
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


class UploadRequest(Request):
    """Spools each uploaded file straight into the uploads dir, under a ``.part`` name it
    removes when the request ends, so that storing the upload is a rename, not a second copy."""

    form_data_parser_class = UploadFormParser

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> IO[bytes]:
        upload_dir = current_app.extensions["whisper_api"].settings.upload_dir
        try:
            upload_dir.mkdir(parents=True, exist_ok=True)
            part = tempfile.NamedTemporaryFile("w+b", dir=upload_dir, suffix=PART, delete=False)
        except OSError as exc:
            raise cannot_store(exc) from None
        self.__dict__.setdefault("parts", []).append(part.name)
        return part

    def close(self) -> None:
        super().close()
        for name in self.__dict__.get("parts", ()):  # still there when the upload was not stored
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)


def cannot_store(exc: OSError) -> Unavailable:
    log.error("could not store an upload: %s", exc)
    return Unavailable(f"the service could not store the upload ({exc.strerror or exc})")


def save_upload(upload_dir: Path, storage, job_id: str) -> Path:
    """Give the upload (spooled by ``UploadRequest``) its name under the service's own id, once
    it is on disk: no file under that name is ever half written."""
    suffix = Path(clean_filename(storage.filename)).suffix.lower()
    target = upload_dir / (job_id + (suffix if EXTENSION.match(suffix) else ""))
    part = storage.stream
    try:
        part.flush()
        os.fsync(part.fileno())
        os.replace(part.name, target)
    except OSError as exc:
        raise cannot_store(exc) from None
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
    try:
        services.dispatcher.submit(job_id)
        log.info("job %s queued: %s (%.1fs, model %s)", job_id, job.filename, info.duration,
                 options.model_name)
    except Unavailable:
        # The distributed queue refused it: no job the client was not told of is left behind.
        services.store.delete(job_id)
        path.unlink(missing_ok=True)
        raise
    except ConnectionError as exc:
        # The job is committed: the supervisor's sweep queues it once the pool is back.
        log.warning("job %s stored but not yet queued: %s", job_id, exc)
    return job
