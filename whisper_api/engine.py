"""Resident Whisper models and transcription (faster-whisper on CTranslate2).

Imported only by device workers: the web processes never load this module.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from faster_whisper import BatchedInferencePipeline, WhisperModel

from . import audio, render
from .config import Settings
from .exceptions import JobFailed
from .jobs import Job
from .models import is_model_dir

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float], None]
AUTO_BATCH_SIZE = 16  # on CUDA when WHISPER_API_BATCH_SIZE is -1
StatusCallback = Callable[[str, str], None]


@dataclass
class Transcript:
    """What a finished job stores: plain segment dicts plus what Whisper detected."""

    segments: list[dict]
    text: str
    language: str | None
    duration: float


def device_args(device: str) -> tuple[str, int]:
    """``"cuda:1"`` -> ``("cuda", 1)``; ``"cpu:0"`` -> ``("cpu", 0)``."""
    kind, _, index = device.partition(":")
    return kind, int(index or 0)


def load_cuda_libraries() -> None:
    """Load the CUDA runtime (cuBLAS, cuDNN) that CTranslate2 needs from the ``gpu`` extra.

    The pip wheels of torch carry these libraries and load them globally on import;
    without torch, the system's CUDA installation must provide them.
    """
    try:
        import torch  # noqa: F401  (imported for its side effect)
    except ImportError:
        log.info("torch is not installed; CUDA libraries must come from the system")


def compute_type(settings: Settings, device: str) -> str:
    if settings.compute_type != "auto":
        return settings.compute_type
    return "float16" if device.startswith("cuda") else "int8"


def cpu_threads(settings: Settings) -> int:
    if settings.cpu_threads > 0:
        return settings.cpu_threads
    return max(1, (os.cpu_count() or 1) // max(1, settings.cpu_workers))


class Engine:
    """The models of one device, loaded once and kept resident."""

    def __init__(self, settings: Settings, device: str, on_status: StatusCallback | None = None):
        self.settings = settings
        self.device = device
        self.on_status = on_status or (lambda model, status: None)
        self.models: dict[str, WhisperModel] = {}
        self.loads = 0

    def model_source(self, name: str) -> str:
        """A folder in the models dir wins; otherwise faster-whisper fetches ``name`` from the hub."""
        local = Path(self.settings.models_dir) / name
        return str(local) if is_model_dir(local) else name

    def load(self, name: str) -> WhisperModel:
        """The resident model ``name``, loading it on first use."""
        model = self.models.get(name)
        if model is not None:
            return model
        kind, index = device_args(self.device)
        if kind == "cuda" and not self.models:
            load_cuda_libraries()
        self.on_status(name, "loading")
        started = time.monotonic()
        precision = compute_type(self.settings, self.device)
        try:
            model = WhisperModel(
                self.model_source(name),
                device=kind,
                device_index=index,
                compute_type=precision,
                cpu_threads=cpu_threads(self.settings) if kind == "cpu" else 0,
                download_root=str(Path(self.settings.models_dir) / "hub"),
            )
        except Exception as exc:
            self.on_status(name, "error")
            log.warning("%s: model %s failed to load: %s", self.device, name, exc)
            raise JobFailed(f"model {name!r} could not be loaded on {self.device}: {exc}") from exc
        self.models[name] = model
        self.loads += 1
        self.on_status(name, "loaded")
        log.info("%s: model %s loaded (%s) in %.1fs", self.device, name, precision, time.monotonic() - started)
        return model

    def decode(self, job: Job) -> list:
        """The job's audio as 16 kHz tracks: one, or one per ``split_roads`` channel."""
        roads = job.options.roads
        return audio.decode(job.path, channels=len(roads.roles) if roads else None,
                            speed=job.options.up_speed, max_seconds=self.settings.max_audio_minutes * 60)

    def batch_size(self, job: Job) -> int:
        """Batched inference is much faster on a GPU but returns coarser segments: never for dialogs."""
        if job.options.roads:
            return 0
        if self.settings.batch_size >= 0:
            return self.settings.batch_size
        return AUTO_BATCH_SIZE if self.device.startswith("cuda") else 0

    def transcribe(self, job: Job, on_progress: ProgressCallback, tracks: list | None = None) -> Transcript:
        """Run ``job`` to the end (``tracks``: its audio, if already decoded); progress 0-100."""
        options = job.options
        model = self.load(options.model_name)
        if tracks is None:
            tracks = self.decode(job)
        batch_size = self.batch_size(job)
        results = []
        language = None
        for index, samples in enumerate(tracks):
            def track_progress(fraction: float, index=index) -> None:
                on_progress(100.0 * (index + fraction) / len(tracks))

            segments, language = self._run(model, samples, options, track_progress, language, batch_size)
            results.append(audio.restore_times(segments, options.up_speed))
        if options.roads:
            segments = render.merge_dialog(list(zip(options.roads.roles, results)))
        else:
            segments = results[0]
        duration = len(tracks[0]) / audio.SAMPLE_RATE * options.up_speed
        return Transcript(segments, render.to_text(segments), language, round(duration, 3))

    def _run(self, model: WhisperModel, samples, options, on_progress: Callable[[float], None],
             language: str | None, batch_size: int) -> tuple[list[dict], str | None]:
        runner = BatchedInferencePipeline(model) if batch_size else model
        segments, info = runner.transcribe(
            samples,
            **({"batch_size": batch_size} if batch_size else {}),
            language=options.language or language,
            initial_prompt=options.initial_prompt,
            beam_size=self.settings.beam_size,
            task=options.task,
            **({"temperature": options.temperature} if options.temperature is not None else {}),
            vad_filter=True,
            word_timestamps=True,
        )
        out = []
        for segment in segments:  # the generator does the work as it is consumed
            out.append({
                "start": round(segment.start, 3),
                "end": round(segment.end, 3),
                "text": segment.text.strip(),
                "words": [
                    {"start": round(w.start, 3), "end": round(w.end, 3), "word": w.word,
                     "probability": round(w.probability, 3)}
                    for w in segment.words or ()
                ],
            })
            if info.duration:
                on_progress(min(1.0, segment.end / info.duration))
        return out, info.language
