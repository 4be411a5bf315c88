"""Jobs, their states and the options a client may set, validated from form fields."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Mapping
from urllib.parse import urlsplit

from .exceptions import BadRequest

# The names faster-whisper resolves on the model hub; any folder in the models dir counts too.
KNOWN_MODELS = (
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
    "large-v1", "large-v2", "large-v3", "large-v3-turbo",
)

# Whisper's language codes (the tokenizer's list), so a bad code fails at upload, not later.
LANGUAGES = frozenset(
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha "
    "haw he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr "
    "ms mt my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th "
    "tk tl tr tt uk ur uz vi yi yo zh yue".split()
)

MAX_TRACKS = 8
MIN_SPEED, MAX_SPEED = 0.5, 3.0
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")


# Queue lanes: transcription on a device, then the optional after-step.
DEVICE, AFTER = "device", "after"
LANES = (DEVICE, AFTER)
POLISHING = "polishing"  # the stage of a transcribed job waiting for the LLM


class JobStatus(str, Enum):
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    ERROR = "error"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.ERROR)


@dataclass(frozen=True)
class SplitRoads:
    """``N,Role1,...,RoleN``: one role per audio channel."""

    roles: tuple[str, ...]

    @classmethod
    def parse(cls, raw: str) -> "SplitRoads":
        parts = [part.strip() for part in raw.split(",")]
        try:
            count = int(parts[0])
        except ValueError:
            raise BadRequest(
                f"split_roads must look like 'N,Role1,...,RoleN'; {parts[0]!r} is not a number"
            ) from None
        if not 1 <= count <= MAX_TRACKS:
            raise BadRequest(f"split_roads: the number of tracks must be 1-{MAX_TRACKS}, got {count}")
        roles = parts[1:]
        if len(roles) != count:
            raise BadRequest(
                f"split_roads: {count} tracks need exactly {count} role names, got {len(roles)}"
            )
        if not all(roles):
            raise BadRequest("split_roads: role names must not be empty")
        return cls(tuple(roles))

    def __str__(self) -> str:
        return ",".join((str(len(self.roles)),) + self.roles)


@dataclass(frozen=True)
class JobOptions:
    """What the client asked for; stored with the job as a plain dict."""

    model_name: str = "base"
    language: str | None = None
    initial_prompt: str | None = None
    upgrade_transcribation: bool = False
    up_speed: float = 1.0
    split_roads: str | None = None
    callback_url: str | None = None
    task: str = "transcribe"  # or "translate" (to English)
    temperature: float | None = None  # None: faster-whisper's fallback schedule

    @classmethod
    def from_form(cls, form: Mapping[str, str], model_names: "set[str] | frozenset[str]") -> "JobOptions":
        """Validate the multipart fields of ``POST /api/transcribe``; raise BadRequest."""
        model_name = (form.get("model_name") or "base").strip()
        if model_name not in model_names:
            raise BadRequest(
                f"unknown model_name {model_name!r}; valid names: {', '.join(sorted(model_names))}"
            )
        language = (form.get("language") or "").strip().lower() or None
        if language in ("auto",):
            language = None
        if language is not None and language not in LANGUAGES:
            raise BadRequest(f"unknown language {language!r}; use a Whisper code such as 'en' or 'ru'")
        split_roads = (form.get("split_roads") or "").strip() or None
        if split_roads is not None:
            split_roads = str(SplitRoads.parse(split_roads))
        return cls(
            model_name=model_name,
            language=language,
            initial_prompt=(form.get("initial_prompt") or "").strip() or None,
            upgrade_transcribation=_parse_bool("upgrade_transcribation", form.get("upgrade_transcribation")),
            up_speed=_parse_speed(form.get("up_speed")),
            split_roads=split_roads,
            callback_url=_parse_callback_url(form.get("callback_url")),
        )

    @property
    def roads(self) -> SplitRoads | None:
        return SplitRoads.parse(self.split_roads) if self.split_roads else None

    def to_dict(self) -> dict:
        # Every field is a plain value: a shallow copy, not asdict's deep one (status is polled often).
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _parse_bool(name: str, raw: str | None) -> bool:
    value = (raw or "").strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise BadRequest(f"{name} must be true or false, got {raw!r}")


def _parse_callback_url(raw: str | None) -> str | None:
    url = (raw or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise BadRequest(f"callback_url must be an http:// or https:// URL, got {url[:100]!r}")
    return url


def _parse_speed(raw: str | None) -> float:
    if raw is None or not raw.strip():
        return 1.0
    try:
        speed = float(raw.replace(",", "."))
    except ValueError:
        raise BadRequest(f"up_speed must be a number, got {raw!r}") from None
    if not math.isfinite(speed) or not MIN_SPEED <= speed <= MAX_SPEED:
        raise BadRequest(f"up_speed must be between {MIN_SPEED} and {MAX_SPEED}, got {raw!r}")
    return speed


@dataclass
class Callback:
    """Delivery of the final status to ``callback_url``."""

    state: str  # pending, delivered or failed
    attempts: int = 0
    error: str | None = None
    next_at: float | None = None
    last_at: float | None = None

    def to_dict(self) -> dict:
        return {"state": self.state, "attempts": self.attempts, "error": self.error,
                "next_attempt_at": iso_time(self.next_at), "last_attempt_at": iso_time(self.last_at)}


@dataclass
class Job:
    """One transcription job as the store keeps it."""

    id: str
    filename: str
    path: str
    file_size: int
    options: JobOptions
    status: JobStatus = JobStatus.QUEUED
    created_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    device: str | None = None
    attempts: int = 0
    progress: float = 0.0
    duration: float | None = None
    language: str | None = None
    segments: list = field(default_factory=list)
    result: str | None = None
    error: str | None = None
    stage: str | None = None  # the after-step a transcribed job waits for, e.g. "polishing"
    raw_result: str | None = None
    upgrade_error: str | None = None
    callback: Callback | None = None

    def to_dict(self, with_segments: bool = True) -> dict:
        """The JSON of ``GET /api/status/<id>``."""
        started = self.started_at
        completed = self.completed_at
        data = {
            "task_id": self.id,
            "status": self.status.value,
            "result": self.result,
            "error": self.error,
            "progress": round(self.progress, 1),
            "stage": self.stage,
            "raw_result": self.raw_result,
            "upgrade_error": self.upgrade_error,
            "filename": self.filename,
            "file_size": self.file_size,
            "duration": self.duration,
            "model_name": self.options.model_name,
            "language": self.language or self.options.language,
            "created_at": iso_time(self.created_at),
            "started_at": iso_time(started),
            "completed_at": iso_time(completed),
            "queue_time": round(started - self.created_at, 3) if started else None,
            "processing_time": round(completed - started, 3) if started and completed else None,
            "device": self.device,
            "gpu_id": gpu_id(self.device),
            "attempts": self.attempts,
            "options": self.options.to_dict(),
            "callback": self.callback.to_dict() if self.callback else None,
        }
        if with_segments:
            data["segments"] = self.segments
        return data


def gpu_id(device: str | None) -> int | None:
    """The GPU index of ``cuda:N`` (or a worker host's ``host/cuda:N``); None for CPU workers."""
    device = device.rpartition("/")[2] if device else device
    if device and device.startswith("cuda"):
        return int(device.partition(":")[2] or 0)
    return None


def device_key(device: str) -> str:
    """How the seed's API names a device: the GPU index (``"0"``), else the worker name; a worker
    host's devices carry its name (``"gpu-2/0"``)."""
    host, _, local = device.rpartition("/")
    index = gpu_id(local)
    name = local if index is None else str(index)
    return f"{host}/{name}" if host else name


def iso_time(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
