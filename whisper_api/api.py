"""The seed's HTTP API: ``/api/transcribe``, ``/api/status``, ``/api/queue`` and the monitors."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, current_app, jsonify, request

from . import render, uploads
from .exceptions import BadRequest, Conflict, NotFound, Unavailable
from .jobs import KNOWN_MODELS, Job, JobOptions, JobStatus, device_key, gpu_id, iso_time
from .models import local_models
from .services import Services

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

LIST_LIMIT = 100


def services() -> Services:
    return current_app.extensions["whisper_api"]


def model_names() -> set[str]:
    return set(KNOWN_MODELS) | local_models(services().settings.models_dir)


@bp.post("/transcribe")
def transcribe():
    options = JobOptions.from_form(request.form, model_names())
    job = uploads.create_job(services(), request.files.get("file"), options)
    return jsonify(task_id=job.id)


MAX_WAIT = 60.0  # seconds a status request may wait for its job to end
WAIT_STEP = 0.02  # seconds between the store reads of a waiting status request


@bp.get("/status/<task_id>")
def status(task_id: str):
    """The job; with ``?wait=N`` the answer waits up to N seconds (at most 60) for it to end."""
    store = services().store
    wait = parse_wait(request.args.get("wait"))
    if wait:
        deadline = time.monotonic() + wait
        state = store.status_of(task_id)
        while state is not None and not state.finished and time.monotonic() < deadline:
            time.sleep(WAIT_STEP)  # one indexed read of one column: far cheaper than a client's poll
            state = store.status_of(task_id)
    found = store.get_unparsed(task_id)
    if found is None:
        raise not_found(task_id)
    job, segments = found
    # Polled many times a second: the stored segments go out as they are, never parsed.
    head = current_app.json.dumps(job.to_dict(with_segments=False))
    return current_app.response_class(f'{head[:-1]}, "segments": {segments}}}\n', mimetype="application/json")


def parse_wait(raw: str | None) -> float:
    if raw is None or not raw.strip():
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        raise BadRequest(f"wait must be a number of seconds (0-{MAX_WAIT:g}), got {raw[:50]!r}") from None
    if not 0 <= seconds <= MAX_WAIT:  # also refuses nan and inf
        raise BadRequest(f"wait must be between 0 and {MAX_WAIT:g} seconds, got {raw[:50]!r}")
    return seconds


def existing_job(task_id: str) -> Job:
    """The job, or 404 saying whether it never existed or has expired."""
    job = services().store.get(task_id)
    if job is None:
        raise not_found(task_id)
    return job


def not_found(task_id: str) -> NotFound:
    """The 404 for a task id with no job: it never existed, or retention removed it."""
    expired = services().store.expired_at(task_id)
    if expired is not None:
        hours = services().settings.retention_hours
        return NotFound(f"task {task_id} expired: finished tasks are kept for {hours:g} hours "
                        f"(removed {iso_time(expired)})")
    return NotFound(f"no task {task_id!r}")


@bp.get("/result/<task_id>")
def result(task_id: str):
    """The finished transcript as txt, json, srt, vtt or tsv (``?format=``), as a download."""
    job = finished_job(task_id)
    fmt = request.args.get("format", "txt").lower()
    try:
        body, mimetype = render.render(fmt, job.segments, language=job.language, duration=job.duration)
    except ValueError:
        raise BadRequest(f"unknown format {fmt!r}; use one of {', '.join(render.FORMATS)}") from None
    stem = Path(job.filename).stem or job.id
    response = current_app.response_class(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = content_disposition(f"{stem}.{fmt}")
    return response


def finished_job(task_id: str) -> Job:
    job = existing_job(task_id)
    if job.status is not JobStatus.DONE:
        raise Conflict(f"task {task_id} is {job.status.value}, not done")
    return job


def content_disposition(filename: str) -> str:
    """An attachment header that survives non-ASCII (Cyrillic) names."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


@bp.delete("/task/<task_id>")
def delete_task(task_id: str):
    """Delete a task and its audio; a running task cannot be deleted."""
    job = existing_job(task_id)
    if not services().store.delete(task_id):
        raise Conflict(f"task {task_id} is processing; delete it when it has finished")
    Path(job.path).unlink(missing_ok=True)
    log.info("task %s deleted", task_id)
    return jsonify(deleted=task_id)


@bp.get("/queue")
def queue():
    store = services().store
    queued = store.by_status(JobStatus.QUEUED, LIST_LIMIT)
    processing = store.by_status(JobStatus.PROCESSING, LIST_LIMIT)
    done = store.by_status(JobStatus.DONE, LIST_LIMIT, newest_first=True)
    failed = store.by_status(JobStatus.ERROR, LIST_LIMIT, newest_first=True)
    return jsonify(
        queue=[{"id": j.id, "filename": j.filename, "created_at": iso_time(j.created_at),
                "model_name": j.options.model_name} for j in queued],
        processing=[{"id": j.id, "filename": j.filename, "gpu_id": gpu_id(j.device), "device": j.device,
                     "progress": round(j.progress, 1), "started_at": iso_time(j.started_at),
                     "attempts": j.attempts} for j in processing],
        completed=[{"id": j.id, "filename": j.filename, "completed_at": iso_time(j.completed_at),
                    "processing_time": j.to_dict(False)["processing_time"]} for j in done],
        failed=[{"id": j.id, "filename": j.filename, "error": j.error,
                 "completed_at": iso_time(j.completed_at)} for j in failed],
        counts=store.counts(),
    )


def live(method: str):
    """Ask the live state; 503 while the worker pool is (re)starting."""
    try:
        return services().state(method)
    except ConnectionError as exc:
        raise Unavailable(str(exc)) from None


@bp.get("/gpus")
def gpus():
    return jsonify(live("snapshot")["gpus"])


@bp.get("/model_status")
def model_status():
    models = live("snapshot")["models"]
    return jsonify({device_key(device): status for device, status in sorted(models.items())})


@bp.get("/logs")
def logs():
    return jsonify(live("logs"))


@bp.get("/models")
def models():
    """Every model name a job may ask for, and which are in the local models dir."""
    settings = services().settings
    return jsonify(models=sorted(model_names()), local=sorted(local_models(settings.models_dir)),
                   default="base", preload=list(settings.preload_models))


@bp.get("/health")
def health():
    """Liveness and readiness: the workers, their state and the queue size."""
    snapshot = live("snapshot")
    devices = snapshot["devices"]
    ready = any(info.get("status") in ("idle", "busy") for info in devices.values()
                if info.get("kind") != "after")
    return jsonify(status="ok" if ready else "starting", devices=devices,
                   counts=services().store.counts(),
                   idle_webhook=snapshot["info"].get("idle_webhook")), 200 if ready else 503
