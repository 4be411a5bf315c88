"""The API node's side of the distributed queue: worker hosts claim jobs, fetch their audio and
send progress and results here, each request signed with that job's token.

Only a queued job can be claimed; the claim gives the host a lease, and every later report
must show it. A host whose lease was voided (it stopped reporting and the job went to another)
gets 409 and its result is not stored: one job, one result.
"""
from __future__ import annotations

import hmac
import logging

from flask import Blueprint, current_app, jsonify, request, send_file

from .distributed import job_token
from .exceptions import ApiError, BadRequest, Conflict, NotFound
from .jobs import AFTER, POLISHING
from .services import Services

log = logging.getLogger(__name__)

bp = Blueprint("internal", __name__, url_prefix="/internal/jobs")


def services() -> Services:
    return current_app.extensions["whisper_api"]


def secret() -> bytes:
    return current_app.extensions["whisper_api.secret"]


@bp.before_request
def check_token():
    job_id = (request.view_args or {}).get("job_id", "")
    presented = request.headers.get("X-Job-Token", "")
    if not hmac.compare_digest(presented.encode(), job_token(secret(), job_id).encode()):
        raise ApiError("a valid job token is required", 403)


def body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("a JSON object is required")
    return data


def lease_of(data: dict) -> str:
    lease = data.get("lease")
    if not isinstance(lease, str) or not lease:
        raise BadRequest("'lease' is required")
    return lease


def lost(job_id: str) -> Conflict:
    job = services().store.get(job_id)
    state = job.status.value if job else "gone"
    return Conflict(f"job {job_id} is no longer held by this worker (it is {state})")


@bp.post("/<job_id>/claim")
def claim(job_id: str):
    holder = str(body().get("holder") or "")[:200]
    if not holder:
        raise BadRequest("'holder' is required")
    claimed = services().store.claim_remote(job_id, holder)
    if claimed is None:
        job = services().store.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        raise Conflict(f"job {job_id} is {job.status.value}, not queued")
    job, lease = claimed
    log.info("job %s claimed by %s (attempt %d)", job_id, holder, job.attempts)
    return jsonify(lease=lease, heartbeat=services().settings.remote_timeout / 4, job={
        "id": job.id, "filename": job.filename, "file_size": job.file_size, "created_at": job.created_at,
        "duration": job.duration, "attempts": job.attempts, "options": job.options.to_dict(),
    })


@bp.get("/<job_id>/audio")
def audio(job_id: str):
    lease = request.headers.get("X-Lease", "")
    if not services().store.holds(job_id, lease):
        raise lost(job_id)
    return send_file(services().store.get(job_id).path, mimetype="application/octet-stream")


@bp.post("/<job_id>/progress")
def progress(job_id: str):
    data = body()
    value = data.get("progress")
    if value is not None and not isinstance(value, (int, float)):
        raise BadRequest("'progress' must be a number")
    if not services().store.heartbeat(job_id, lease_of(data), value):
        raise lost(job_id)
    return jsonify(ok=True)


@bp.post("/<job_id>/transcript")
def transcript(job_id: str):
    data = body()
    polish = bool(data.get("polish"))
    stored = services().store.record_transcript(
        job_id, segments=list(data.get("segments") or []), text=str(data.get("text") or ""),
        language=data.get("language"), duration=data.get("duration"), then=POLISHING if polish else None,
        lease=lease_of(data))
    if not stored:
        raise lost(job_id)
    job = services().store.get(job_id)
    log.info("job %s transcribed on %s", job_id, job.device)
    if polish:
        try:
            services().dispatcher.submit(job_id, lane=AFTER)
        except ConnectionError as exc:  # the supervisor's sweep hands it over once the pool is back
            log.warning("job %s waits for its after-step: %s", job_id, exc)
    return jsonify(ok=True)


@bp.post("/<job_id>/fail")
def fail(job_id: str):
    data = body()
    error = str(data.get("error") or "transcription failed")[:4000]
    if not services().store.fail(job_id, error, lease=lease_of(data)):
        raise lost(job_id)
    log.warning("job %s ended with error on a worker host: %s", job_id, error)
    return jsonify(ok=True)


@bp.post("/<job_id>/requeue")
def requeue(job_id: str):
    """The worker host gives the job back (out of GPU memory: a fresh worker tries it again)."""
    data = body()
    store = services().store
    if not store.holds(job_id, lease_of(data)):
        raise lost(job_id)
    job = store.get(job_id)
    settings = services().settings
    if job.attempts >= settings.max_attempts:
        store.fail(job_id, f"gave up after {job.attempts} attempts: {data.get('why') or 'given back'}")
        return jsonify(ok=True, queued=False)
    if store.requeue(job_id):
        services().dispatcher.submit(job_id)
    log.warning("job %s given back by its worker host: %s", job_id, data.get("why") or "")
    return jsonify(ok=True, queued=True)


def init_app(app, settings) -> None:
    """Serve the worker hosts when the queue is distributed."""
    if not settings.distributed:
        return
    from .distributed import node_secret

    app.extensions["whisper_api.secret"] = node_secret(settings)
    app.register_blueprint(bp)
