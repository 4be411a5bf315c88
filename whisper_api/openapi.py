"""The OpenAPI 3.1 document of every endpoint (``/api/openapi.json``) and its page (``/api/docs``)."""
from __future__ import annotations

import json

from flask import Blueprint, current_app, make_response, render_template

from .auth import OPEN_PATHS
from .jobs import KNOWN_MODELS
from .openai_api import ALIAS, GRANULARITIES, PREFIX, RESPONSE_FORMATS
from .render import FORMATS

bp = Blueprint("openapi", __name__, url_prefix="/api")

# The page loads only its own script and style, like the dashboard.
CONTENT_SECURITY_POLICY = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(type_: str, **more) -> dict:
    return {"type": [type_, "null"], **more}


def obj(properties: dict, required: tuple[str, ...] | None = None, **more) -> dict:
    """An object schema; every property is required unless ``required`` names fewer."""
    return {"type": "object", "properties": properties,
            "required": list(properties if required is None else required), **more}


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def strings() -> dict:
    return array({"type": "string"})


def json_body(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def text_body(description: str, mimetype: str) -> dict:
    return {"description": description, "content": {mimetype: {"schema": {"type": "string"}}}}


def errors(*codes: int, shape: str = "Error") -> dict:
    """The error answers an operation can give, all in one JSON ``shape``."""
    return {str(code): json_body(ERRORS[code], ref(shape)) for code in codes}


ERRORS = {
    400: "The request is invalid: a field, or a file that is missing, empty or not audio.",
    401: "WHISPER_API_KEYS is set and no valid key was sent.",
    404: "No such task, model or route.",
    409: "The task is not in a state that allows this.",
    413: "The upload is larger than the size limit, or the audio longer than the duration limit.",
    429: "The queue is full; retry after the seconds in Retry-After.",
    500: "The transcription failed, or an internal error.",
    503: "The worker pool is not reachable (starting or restarting), or the upload could not be stored.",
    504: "The job did not finish within the wait; it goes on, see /api/status/{task_id}.",
}

TIME = nullable("string", format="date-time")
WORD = obj({"start": {"type": "number"}, "end": {"type": "number"}, "word": {"type": "string"},
            "probability": {"type": "number"}})
SEGMENT = obj({"start": {"type": "number"}, "end": {"type": "number"}, "text": {"type": "string"},
               "words": array(ref("Word")),
               "speaker": {"type": "string", "description": "The split_roads role (dialogs only)."}},
              required=("start", "end", "text", "words"))
JOB_OPTIONS = obj({
    "model_name": {"type": "string"},
    "language": nullable("string"),
    "initial_prompt": nullable("string"),
    "upgrade_transcribation": {"type": "boolean"},
    "up_speed": {"type": "number"},
    "split_roads": nullable("string"),
    "callback_url": nullable("string"),
    "task": {"type": "string", "enum": ["transcribe", "translate"]},
    "temperature": nullable("number"),
})
JOB = obj({
    "task_id": {"type": "string"},
    "status": {"type": "string", "enum": ["queued", "processing", "done", "error"]},
    "result": nullable("string", description="The transcript (polished when asked for) once done."),
    "error": nullable("string"),
    "progress": {"type": "number", "minimum": 0, "maximum": 100},
    "stage": nullable("string", description="The after-step a transcribed job waits for: polishing."),
    "raw_result": nullable("string", description="The transcript before polishing."),
    "upgrade_error": nullable("string", description="Why polishing was skipped."),
    "filename": {"type": "string"},
    "file_size": {"type": "integer"},
    "duration": nullable("number"),
    "model_name": {"type": "string"},
    "language": nullable("string"),
    "created_at": TIME,
    "started_at": TIME,
    "completed_at": TIME,
    "queue_time": nullable("number"),
    "processing_time": nullable("number"),
    "device": nullable("string"),
    "gpu_id": nullable("integer"),
    "attempts": {"type": "integer"},
    "options": ref("JobOptions"),
    "callback": {"anyOf": [ref("Callback"), {"type": "null"}], "description": "Delivery to callback_url."},
    "segments": array(ref("Segment")),
})
CALLBACK = obj({"state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                "attempts": {"type": "integer"}, "error": nullable("string"),
                "next_attempt_at": TIME, "last_attempt_at": TIME})
COUNTS = obj({state: {"type": "integer"} for state in ("queued", "processing", "done", "error")})
QUEUE = obj({
    "queue": array(obj({"id": {"type": "string"}, "filename": {"type": "string"}, "created_at": TIME,
                        "model_name": {"type": "string"}})),
    "processing": array(obj({"id": {"type": "string"}, "filename": {"type": "string"},
                             "gpu_id": nullable("integer"), "device": nullable("string"),
                             "progress": {"type": "number"}, "started_at": TIME,
                             "attempts": {"type": "integer"}})),
    "completed": array(obj({"id": {"type": "string"}, "filename": {"type": "string"}, "completed_at": TIME,
                            "processing_time": nullable("number")})),
    "failed": array(obj({"id": {"type": "string"}, "filename": {"type": "string"}, "error": nullable("string"),
                         "completed_at": TIME})),
    "counts": ref("Counts"),
})
DEVICE = obj({
    "device": {"type": "string"},
    "status": {"type": "string", "enum": ["starting", "loading", "idle", "busy", "restarting"]},
    "pid": nullable("integer"),
    "job": nullable("string"),
    "restarts": {"type": "integer"},
    "since": {"type": "number", "description": "Unix time of the last status change."},
    "kind": {"type": "string", "enum": ["after"], "description": "Set on the after-steps process."},
}, required=("device", "status"))
IDLE_WEBHOOK = obj({"url_set": {"type": "boolean"}, "interval_seconds": {"type": "number"}, "idle_since": TIME,
                   "fires_at": TIME, "fired": {"type": "boolean"}})
HEALTH = obj({"status": {"type": "string", "enum": ["ok", "starting"]},
              "devices": {"type": "object", "additionalProperties": ref("Device")},
              "counts": ref("Counts"),
              "idle_webhook": {"anyOf": [IDLE_WEBHOOK, {"type": "null"}],
                               "description": "The idle webhook's timer; null when none is set."}})
GPU = obj({"id": {"type": "integer"}, "name": {"type": "string"}, "memory_total_mb": {"type": "integer"},
           "memory_used_mb": {"type": "integer"}, "utilization_gpu": {"type": "integer"},
           "temperature": {"type": "number"}})
MODEL_STATUS = {"type": "object", "description": "Device (GPU index or worker name) -> model -> status.",
                "additionalProperties": {"type": "object", "additionalProperties": {
                    "type": "string", "enum": ["loading", "loaded", "error"]}}}
LOG_ENTRY = obj({"time": {"type": "string", "format": "date-time"},
                 "level": {"type": "string"}, "msg": {"type": "string"}})
MODELS = obj({"models": strings(), "local": strings(), "default": {"type": "string"}, "preload": strings()})
RENDERED_JSON = obj({"text": {"type": "string"}, "language": nullable("string"), "duration": nullable("number"),
                     "segments": array(ref("Segment"))})
ERROR = obj({"error": {"type": "string"}})
OPENAI_ERROR = obj({"error": obj({"message": {"type": "string"},
                                  "type": {"type": "string", "enum": ["invalid_request_error", "server_error"]},
                                  "param": nullable("string"), "code": nullable("string")})})
MODEL_CARD = obj({"id": {"type": "string"}, "object": {"const": "model"}, "created": {"type": "integer"},
                  "owned_by": {"type": "string"}})
MODEL_LIST = obj({"object": {"const": "list"}, "data": array(ref("Model"))})
OPENAI_SEGMENT = obj({"id": {"type": "integer"}, "seek": {"type": "integer"}, "start": {"type": "number"},
                      "end": {"type": "number"}, "text": {"type": "string"},
                      "tokens": array({"type": "integer"}), "temperature": {"type": "number"},
                      "avg_logprob": {"type": "number"}, "compression_ratio": {"type": "number"},
                      "no_speech_prob": {"type": "number"}})
TRANSCRIPTION = obj({"text": {"type": "string"}})
VERBOSE_TRANSCRIPTION = obj({
    "task": {"type": "string", "enum": ["transcribe", "translate"]},
    "language": nullable("string", description="The language's English name, e.g. english."),
    "duration": nullable("number"),
    "text": {"type": "string"},
    "segments": array(ref("OpenAISegment")),
    "words": array(obj({"word": {"type": "string"}, "start": {"type": "number"}, "end": {"type": "number"}})),
}, required=("task", "language", "duration", "text"))
READY = obj({"status": {"const": "ready"}, "devices": strings()})
NOT_READY = obj({"status": {"const": "not ready"}, "error": {"type": "string"}, "missing": strings()})

SCHEMAS = {
    "Error": ERROR, "Word": WORD, "Segment": SEGMENT, "JobOptions": JOB_OPTIONS, "Job": JOB, "Callback": CALLBACK,
    "Counts": COUNTS, "Queue": QUEUE, "Device": DEVICE, "Health": HEALTH, "Gpu": GPU,
    "LogEntry": LOG_ENTRY, "Models": MODELS, "RenderedJson": RENDERED_JSON,
    "OpenAIError": OPENAI_ERROR, "Model": MODEL_CARD, "ModelList": MODEL_LIST,
    "OpenAISegment": OPENAI_SEGMENT, "Transcription": TRANSCRIPTION,
    "VerboseTranscription": VERBOSE_TRANSCRIPTION, "Ready": READY, "NotReady": NOT_READY,
}

TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
UPLOAD = {"type": "string", "format": "binary", "description": "The audio or video file."}
MODEL_NAME = {"type": "string", "examples": list(KNOWN_MODELS),
              "description": "A Whisper model name, or a folder in the models dir."}
LANGUAGE = {"type": "string", "description": "A Whisper language code (en, ru, ...); empty or auto detects it."}

TRANSCRIBE_FORM = obj({
    "file": UPLOAD,
    "model_name": {**MODEL_NAME, "default": "base"},
    "language": LANGUAGE,
    "initial_prompt": {"type": "string", "description": "Text that steers spelling and style."},
    "upgrade_transcribation": {"type": "boolean", "default": False,
                               "description": "Polish the transcript with an LLM afterwards."},
    "up_speed": {"type": "number", "minimum": 0.5, "maximum": 3.0, "default": 1.0,
                 "description": "Speed the audio up before transcribing; times are given in the original."},
    "split_roads": {"type": "string", "pattern": r"^\d+(,[^,]+)+$",
                    "description": "N,Role1,...,RoleN: one role per audio channel; the result is a dialog."},
    "callback_url": {"type": "string", "format": "uri",
                     "description": "Called with the final status (POST, JSON) when the job has finished."},
}, required=("file",))
OPENAI_FORM = obj({
    "file": UPLOAD,
    "model": {**MODEL_NAME, "examples": [ALIAS, *KNOWN_MODELS],
              "description": f"{ALIAS} (the service's default model) or a model name."},
    "language": LANGUAGE,
    "prompt": {"type": "string", "description": "Whisper's initial prompt."},
    "response_format": {"type": "string", "enum": list(RESPONSE_FORMATS), "default": "json"},
    "temperature": {"type": "number", "minimum": 0, "maximum": 1,
                    "description": "0 (default): Whisper's fallback schedule (0, 0.2, ... 1 while the "
                                   "output looks wrong); above 0: that temperature alone."},
    "timestamp_granularities[]": array({"type": "string", "enum": list(GRANULARITIES)}),
}, required=("file", "model"))


def openai_audio(summary: str) -> dict:
    return {
        "tags": ["OpenAI-compatible"],
        "summary": summary,
        "description": "Queues a job like /api/transcribe and answers when it has finished.",
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": OPENAI_FORM}}},
        "responses": {
            "200": {"description": "The transcript in response_format.", "content": {
                "application/json": {"schema": {"anyOf": [ref("Transcription"), ref("VerboseTranscription")]}},
                "text/plain": {"schema": {"type": "string"}},
                **{FORMATS[fmt][1]: {"schema": {"type": "string"}} for fmt in ("srt", "vtt")},
            }},
            **errors(400, 404, 413, 500, 503, 504, shape="OpenAIError"),
            "429": {**json_body(ERRORS[429], ref("OpenAIError")),
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
        },
    }


PATHS = {
    "/api/transcribe": {"post": {
        "tags": ["Jobs"], "summary": "Queue an audio file for transcription",
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": TRANSCRIBE_FORM}}},
        "responses": {"200": json_body("The job is stored and queued.", obj({"task_id": {"type": "string"}})),
                      **errors(400, 413, 503)},
    }},
    "/api/status/{task_id}": {"get": {
        "tags": ["Jobs"], "summary": "A job's state, progress and (once done) its transcript",
        "parameters": [TASK_ID, {
            "name": "wait", "in": "query", "required": False,
            "description": "Long poll: answer as soon as the job is done or failed, or after this many "
                           "seconds (at most 60), whichever comes first.",
            "schema": {"type": "number", "minimum": 0, "maximum": 60, "default": 0}}],
        "responses": {"200": json_body("The job.", ref("Job")), **errors(400, 404)},
    }},
    "/api/result/{task_id}": {"get": {
        "tags": ["Jobs"], "summary": "A finished transcript as a download",
        "parameters": [TASK_ID, {"name": "format", "in": "query", "required": False,
                                 "schema": {"type": "string", "enum": list(FORMATS), "default": "txt"}}],
        "responses": {
            "200": {"description": "The transcript as an attachment.", "content": {
                mimetype: {"schema": ref("RenderedJson") if fmt == "json" else {"type": "string"}}
                for fmt, (_, mimetype) in FORMATS.items()
            }},
            **errors(400, 404, 409),
        },
    }},
    "/api/task/{task_id}": {"delete": {
        "tags": ["Jobs"], "summary": "Delete a job and its audio (not while it is processing)",
        "parameters": [TASK_ID],
        "responses": {"200": json_body("Deleted.", obj({"deleted": {"type": "string"}})), **errors(404, 409)},
    }},
    "/api/queue": {"get": {
        "tags": ["Jobs"], "summary": "Queued, processing, completed and failed jobs (100 of each at most)",
        "responses": {"200": json_body("The queue.", ref("Queue"))},
    }},
    "/api/gpus": {"get": {
        "tags": ["Monitoring"], "summary": "GPU memory, load and temperature ([] without NVIDIA GPUs)",
        "responses": {"200": json_body("One entry per GPU.", array(ref("Gpu"))), **errors(503)},
    }},
    "/api/model_status": {"get": {
        "tags": ["Monitoring"], "summary": "Which model is loaded on which device",
        "responses": {"200": json_body("Status by device and model.", MODEL_STATUS), **errors(503)},
    }},
    "/api/models": {"get": {
        "tags": ["Monitoring"], "summary": "The model names a job may ask for",
        "responses": {"200": json_body("Models.", ref("Models"))},
    }},
    "/api/logs": {"get": {
        "tags": ["Monitoring"], "summary": "The last 200 log lines of the service",
        "responses": {"200": json_body("Oldest first.", array(ref("LogEntry"))), **errors(503)},
    }},
    "/api/health": {"get": {
        "tags": ["Monitoring"], "summary": "The workers, their state and the job counts",
        "responses": {
            "200": json_body("A worker takes jobs.", ref("Health")),
            "503": json_body("No worker takes jobs yet, or the pool is not reachable.",
                             {"anyOf": [ref("Health"), ref("Error")]}),
        },
    }},
    "/api/openapi.json": {"get": {
        "tags": ["Monitoring"], "summary": "This document",
        "responses": {"200": json_body("OpenAPI 3.1.", {"type": "object"})},
    }},
    "/v1/audio/transcriptions": {"post": openai_audio("Transcribe audio (OpenAI's API)")},
    "/v1/audio/translations": {"post": openai_audio("Translate audio into English (OpenAI's API)")},
    "/v1/models": {"get": {
        "tags": ["OpenAI-compatible"], "summary": "whisper-1 and every model name",
        "responses": {"200": json_body("The models.", ref("ModelList"))},
    }},
    "/v1/models/{model}": {"get": {
        "tags": ["OpenAI-compatible"], "summary": "One model",
        "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": json_body("The model.", ref("Model")), **errors(404, shape="OpenAIError")},
    }},
    "/metrics": {"get": {
        "tags": ["Monitoring"], "summary": "Prometheus metrics",
        "description": "Jobs by state and pool_up always; queue depth, audio seconds, processing time, "
                       "model loads, worker restarts and busy devices while the pool answers.",
        "responses": {"200": text_body("Prometheus text format.", "text/plain")},
    }},
    "/healthz": {"get": {
        "tags": ["Monitoring"], "summary": "Liveness: the web process answers",
        "responses": {"200": json_body("Alive.", obj({"status": {"const": "ok"}}))},
    }},
    "/readyz": {"get": {
        "tags": ["Monitoring"], "summary": "Readiness: every preload model is loaded on a working device",
        "responses": {"200": json_body("Ready.", ref("Ready")), "503": json_body("Not ready.", ref("NotReady"))},
    }},
}


def secured(paths: dict) -> dict:
    """``paths`` with auth: 401 on every operation but the open ones, which need no key."""
    out = {}
    for path, item in paths.items():
        if path.startswith(OPEN_PATHS):
            out[path] = {method: {**op, "security": []} for method, op in item.items()}
        else:
            shape = "OpenAIError" if path.startswith(PREFIX) else "Error"
            out[path] = {method: {**op, "responses": {**op["responses"], **errors(401, shape=shape)}}
                         for method, op in item.items()}
    return out


def document() -> dict:
    """The OpenAPI document of the service."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "whisper_api", "version": "1.0.0",
                 "description": "Self-hosted speech-to-text: a durable job queue over faster-whisper, "
                                "and an OpenAI-compatible API under /v1."},
        "tags": [{"name": "Jobs"}, {"name": "OpenAI-compatible"}, {"name": "Monitoring"}],
        "paths": secured(PATHS),
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "A key of WHISPER_API_KEYS."},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }},
        # Keys are optional: without WHISPER_API_KEYS the service is open.
        "security": [{"bearer": []}, {"apiKey": []}, {}],
    }


@bp.get("/openapi.json")
def spec():
    # Not jsonify: it sorts keys, and the document's order (paths, fields) is the reading order.
    return current_app.response_class(json.dumps(document(), ensure_ascii=False), mimetype="application/json")


@bp.get("/docs")
def docs():
    """A readable page of the document, rendered in the browser by ``apidocs.js``."""
    response = make_response(render_template("apidocs.html"))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
