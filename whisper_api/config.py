"""Settings read from ``WHISPER_API_*`` environment variables, shared by every process."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, fields
from pathlib import Path

PREFIX = "WHISPER_API_"
ENV_NAMES = {"api_keys": "WHISPER_API_KEYS"}  # where the variable is not PREFIX + NAME


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Every tunable of the service; ``from_env()`` fills it from ``WHISPER_API_*``.

    data_dir: uploads, the SQLite job store and run-time files.
    models_dir: local CTranslate2 model folders by name; a folder here wins over the hub.
    preload_models: models loaded on every device at start.
    devices: ``auto`` (every CUDA GPU, else CPU workers), ``cpu`` or ``cuda:0,cuda:1``.
    cpu_workers: CPU worker processes when running on the CPU.
    cpu_threads: threads per CPU worker; 0 means the cores divided among the workers.
    compute_type: ``auto`` means float16 on CUDA and int8 on the CPU.
    max_upload_mb: larger request bodies get 413.
    max_attempts: a job whose worker dies this many times ends ``error``.
    bind: the address gunicorn listens on.
    retention_hours: finished jobs and their files older than this are deleted.
    shutdown_grace: seconds a running job gets to finish when the service stops.
    beam_size: beam width for decoding.
    llm_base_url: an OpenAI-compatible endpoint for polishing; empty means g4f's own providers.
    llm_api_key: its key (never logged or shown).
    llm_model: the model name sent to the LLM.
    llm_timeout: seconds one polish may take before the raw transcript is kept.
    llm_prompt: a prompt template overriding the built-in ones; ``{text}`` marks the transcript.
    llm_workers: polishes run at once.
    callback_attempts: delivery attempts of a job's callback before it is marked failed.
    callback_timeout: seconds one callback or webhook request may take.
    idle_webhook_url: called once each time the service has been idle for the interval.
    idle_webhook_minutes: that interval.
    api_keys: when set, every API call needs one of these keys (never logged or shown).
    batch_size: batched inference (faster-whisper's BatchedInferencePipeline); -1 means 16 on
        CUDA and off on the CPU, 0 off. Never used for split_roads (coarser segments).
    prefetch: decode the next job while one runs: ``auto`` (on for CUDA), ``on`` or ``off``.
    openai_model: the model ``whisper-1`` stands for on the OpenAI-compatible API.
    openai_wait: seconds a ``/v1`` request waits for its job before answering 504.
    queue_limit: queued jobs at which new uploads get 429 with ``Retry-After`` (0: no limit).
    max_audio_minutes: longer recordings are refused (on upload, and again while decoding).
    job_timeout_base, job_timeout_factor: a job running longer than base + factor x its audio
        duration is stopped and ends ``error``.
    worker_nice: how much nicer (lower in CPU priority) than the rest of the service the device
        workers run, 0-19; -1 means 10 on the CPU, where the engine's threads would otherwise
        slow the HTTP answers, and 0 on CUDA.
    queue_url: ``redis://host:6379/0`` runs the jobs on worker hosts through Celery on that Redis
        (``whisper-api worker`` on each GPU host); empty: this machine's own worker pool.
    node_url: how worker hosts reach this API node (they fetch audio and send results there);
        empty: ``http://<host name>:<bind port>``.
    node_secret: signs the per-job tokens worker hosts present to this API node (never logged or
        shown); empty: a random one kept in the data dir.
    host_name: this machine's name in the cluster views; empty: the system's host name.
    remote_timeout: seconds a job on a worker host may go without a report before it is given to
        another worker.
    visibility_timeout: seconds Redis waits for a worker's acknowledgement before it delivers a
        job's message again; keep it above the longest job.
    """

    data_dir: Path = Path("./data")
    models_dir: Path = Path("./models")
    preload_models: tuple[str, ...] = ("base",)
    devices: str = "auto"
    cpu_workers: int = 1
    cpu_threads: int = 0
    compute_type: str = "auto"
    max_upload_mb: int = 500
    max_attempts: int = 3
    bind: str = "0.0.0.0:8000"
    retention_hours: float = 48.0
    shutdown_grace: float = 20.0
    beam_size: int = 5
    log_level: str = "INFO"
    llm_base_url: str = ""
    llm_api_key: str = field(default="", repr=False)
    llm_model: str = "gpt-4o-mini"
    llm_timeout: float = 120.0
    llm_prompt: str = ""
    llm_workers: int = 2
    callback_attempts: int = 10
    callback_timeout: float = 10.0
    idle_webhook_url: str = ""
    idle_webhook_minutes: float = 10.0
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    batch_size: int = -1
    prefetch: str = "auto"
    openai_model: str = "base"
    openai_wait: float = 600.0
    queue_limit: int = 0
    max_audio_minutes: float = 240.0
    job_timeout_base: float = 300.0
    job_timeout_factor: float = 3.0
    worker_nice: int = -1
    queue_url: str = field(default="", repr=False)  # may carry a Redis password
    node_url: str = ""
    node_secret: str = field(default="", repr=False)
    host_name: str = ""
    remote_timeout: float = 60.0
    visibility_timeout: float = 21600.0

    @classmethod
    def from_env(cls, environ: dict | None = None, **overrides) -> "Settings":
        """Build settings from ``WHISPER_API_*`` variables; keyword overrides win."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        for f in fields(cls):
            raw = environ.get(ENV_NAMES.get(f.name, PREFIX + f.name.upper()))
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw, cls.__dataclass_fields__[f.name].default)
        values.update(overrides)
        for name in ("data_dir", "models_dir"):
            if name in values:
                values[name] = Path(values[name])
        return cls(**values)

    @property
    def distributed(self) -> bool:
        return bool(self.queue_url)

    @property
    def host(self) -> str:
        return self.host_name or socket.gethostname()

    @property
    def upload_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "jobs.sqlite3"


def _parse(name: str, raw: str, default):
    try:
        if isinstance(default, tuple):
            return _split(raw)
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_NAMES.get(name, PREFIX + name.upper())}: {exc}") from None
    return raw.strip()
