"""The OpenAI-compatible API under ``/v1``: audio transcriptions, translations and models.

A request goes the way of ``POST /api/transcribe`` (one job through the queue); the
handler then waits for the job and answers in OpenAI's shapes, errors included.
"""
from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass, replace

from flask import Blueprint, current_app, jsonify, request
from whisper_ctranslate2.languages import LANGUAGES as LANGUAGE_NAMES

from . import render, uploads
from .api import model_names, services
from .exceptions import BadRequest, NotFound
from .jobs import Job, JobOptions, JobStatus

bp = Blueprint("openai", __name__, url_prefix="/v1")

PREFIX = "/v1/"
ALIAS = "whisper-1"  # OpenAI's model name; it stands for the configured default model
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
POLL_INTERVAL = 0.2
ERROR_CODES = {401: "invalid_api_key", 404: "not_found", 413: "file_too_large",
               429: "rate_limit_exceeded", 504: "timeout"}


def error_response(status: int, message: str):
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}`` with ``status``."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    response = jsonify(error={"message": message, "type": kind, "param": None,
                              "code": ERROR_CODES.get(status)})
    response.status_code = status
    return response


def default_model() -> str:
    """The model ``whisper-1`` stands for."""
    return services().settings.openai_model


def model_card(name: str) -> dict:
    """One entry of ``GET /v1/models``; ``created`` is the local folder's time, else 0."""
    folder = services().settings.models_dir / (default_model() if name == ALIAS else name)
    created = int(folder.stat().st_mtime) if folder.is_dir() else 0
    return {"id": name, "object": "model", "created": created, "owned_by": "whisper_api"}


@bp.get("/models")
def models():
    names = [ALIAS, *sorted(model_names())]
    return jsonify(object="list", data=[model_card(name) for name in names])


@bp.get("/models/<model>")
def model(model: str):
    if model != ALIAS and model not in model_names():
        raise NotFound(f"the model {model!r} does not exist")
    return jsonify(model_card(model))


@bp.post("/audio/transcriptions")
def transcriptions():
    return answer_audio("transcribe")


@bp.post("/audio/translations")
def translations():
    return answer_audio("translate")


@dataclass(frozen=True)
class AudioRequest:
    """The form of an OpenAI audio request: the job to run and the answer's shape."""

    options: JobOptions
    response_format: str = "json"
    granularities: tuple[str, ...] = ("segment",)

    @classmethod
    def from_form(cls, form, task: str) -> "AudioRequest":
        """Validate OpenAI's fields (``prompt`` is Whisper's initial prompt); raise BadRequest."""
        model = (form.get("model") or "").strip()
        if not model:
            raise BadRequest("you must provide a model parameter")
        options = JobOptions.from_form({
            "model_name": default_model() if model == ALIAS else model,
            "language": form.get("language"),
            "initial_prompt": form.get("prompt"),
        }, model_names())
        fmt = (form.get("response_format") or "json").strip()
        if fmt not in RESPONSE_FORMATS:
            raise BadRequest(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, got {fmt!r}")
        granularities = tuple(form.getlist("timestamp_granularities[]")) or cls.granularities
        unknown = sorted(set(granularities) - set(GRANULARITIES))
        if unknown:
            raise BadRequest(f"timestamp_granularities must be word or segment, got {', '.join(unknown)}")
        options = replace(options, task=task, temperature=parse_temperature(form.get("temperature")))
        return cls(options, fmt, granularities)


def answer_audio(task: str):
    """Queue the uploaded file as a job, wait for it, answer in the requested format."""
    asked = AudioRequest.from_form(request.form, task)
    job = uploads.create_job(services(), request.files.get("file"), asked.options)
    wait = services().settings.openai_wait
    job = wait_for(job.id, wait)
    if job.status is JobStatus.ERROR:
        return error_response(500, f"task {job.id} failed: {job.error}")
    if job.status is not JobStatus.DONE:
        return error_response(504, f"task {job.id} is not finished after {wait:g}s; it goes on: "
                                   f"poll /api/status/{job.id} and fetch /api/result/{job.id}")
    return render_answer(job, asked)


def parse_temperature(raw: str | None) -> float | None:
    """OpenAI's temperature: 0 (its default) is Whisper's fallback schedule, None for faster-whisper.

    The schedule retries at higher temperatures while the output looks wrong (a repetition
    loop, low confidence); any other value is used alone.
    """
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"temperature must be a number, got {raw!r}") from None
    if not 0 <= value <= 1:
        raise BadRequest(f"temperature must be between 0 and 1, got {raw!r}")
    return value or None


def wait_for(job_id: str, timeout: float) -> Job:
    """Poll the store until the job has finished or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        job = services().store.get(job_id)
        if job is None:
            raise NotFound(f"task {job_id} was deleted before it finished")
        if job.status.finished or time.monotonic() >= deadline:
            return job
        time.sleep(POLL_INTERVAL)


def render_answer(job: Job, asked: AudioRequest):
    """The finished job in ``asked.response_format``."""
    fmt = asked.response_format
    if fmt in ("srt", "vtt"):
        body, mimetype = render.render(fmt, job.segments)
        return current_app.response_class(body, mimetype=mimetype)
    text = render.plain_text(job.segments)
    if fmt == "text":
        return current_app.response_class(text + "\n", mimetype="text/plain")
    if fmt == "json":
        return jsonify(text=text)
    return jsonify(verbose_json(job, text, asked.granularities))


def verbose_json(job: Job, text: str, granularities: tuple[str, ...]) -> dict:
    """OpenAI's ``verbose_json``: segments by default, words when asked for."""
    task = job.options.task
    # A translation's language is that of its text, as OpenAI reports it.
    language = "english" if task == "translate" else LANGUAGE_NAMES.get(job.language, job.language)
    body = {"task": task, "language": language, "duration": job.duration, "text": text}
    if "segment" in granularities:
        body["segments"] = [openai_segment(index, segment, job.options.temperature)
                            for index, segment in enumerate(job.segments)]
    if "word" in granularities:
        body["words"] = [{"word": word["word"].strip(), "start": word["start"], "end": word["end"]}
                         for segment in job.segments for word in segment.get("words") or ()]
    return body


def openai_segment(index: int, segment: dict, temperature: float | None) -> dict:
    """A stored segment in OpenAI's shape; what the store lacks is estimated or neutral."""
    words = segment.get("words") or []
    encoded = segment["text"].encode()
    return {
        "id": index,
        "seek": round(segment["start"] * 100),  # Whisper counts seek in 10 ms frames
        "start": segment["start"],
        "end": segment["end"],
        "text": segment["text"],
        "tokens": [],
        "temperature": temperature or 0.0,
        # Whisper averages token log-probabilities; the store keeps word probabilities.
        "avg_logprob": sum(math.log(max(w["probability"], 1e-6)) for w in words) / max(1, len(words)),
        # Whisper's own measure: how well the text compresses (repetitive text compresses well).
        "compression_ratio": len(encoded) / len(zlib.compress(encoded)),
        "no_speech_prob": 0.0,
    }
