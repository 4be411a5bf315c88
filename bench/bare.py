"""Bare faster-whisper in a plain Python process: the baseline the service is measured against.

``python -m bench.bare MODEL [options]`` loads the model, prints one JSON line when ready,
then transcribes each request read from stdin (one JSON object a line, ``{"path": ...}``)
and answers with the seconds it took. With ``--once PATH`` it transcribes that file and
exits: the cold-start baseline (interpreter start, imports, model load, first run).

Transcription uses the options the service's engine uses: beam size, VAD, word timestamps,
and the language the benchmark sends with every upload.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .procs import rss_kb

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class EngineOptions:
    """What both sides get: the same device, precision, threads, beam and language."""

    device: str = "cpu"  # "cpu" or "cuda"
    compute_type: str = "int8"
    threads: int = 2  # CPU threads; ignored on CUDA
    beam_size: int = 5
    language: str = "en"

    def argv(self) -> list[str]:
        return ["--device", self.device, "--compute-type", self.compute_type,
                "--threads", str(self.threads), "--beam-size", str(self.beam_size),
                "--language", self.language]


def transcribe(model, path: str, args: argparse.Namespace, batch_size: int = 0) -> dict:
    """Run ``path`` through ``model`` to the last segment; seconds, CPU seconds, segment count, RSS."""
    started, cpu = time.perf_counter(), time.process_time()
    options = dict(language=args.language or None, beam_size=args.beam_size, vad_filter=True,
                   word_timestamps=True)
    if batch_size:
        from faster_whisper import BatchedInferencePipeline

        segments, info = BatchedInferencePipeline(model).transcribe(path, batch_size=batch_size, **options)
    else:
        segments, info = model.transcribe(path, **options)
    count = sum(1 for _ in segments)  # the generator does the work as it is consumed
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "segments": count,
            "language": info.language, "rss_kb": rss_kb(os.getpid())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="CTranslate2 model folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--language", default="en")
    parser.add_argument("--once", metavar="PATH", help="transcribe one file and exit")
    args = parser.parse_args(argv)

    if args.device == "cuda":
        try:  # as the service's engine does: torch's wheels carry the CUDA libraries CTranslate2 loads
            import torch  # noqa: F401
        except ImportError:
            pass
    from faster_whisper import WhisperModel

    loading = time.perf_counter()
    model = WhisperModel(args.model, device=args.device, compute_type=args.compute_type,
                         cpu_threads=args.threads if args.device == "cpu" else 0)
    loaded = time.perf_counter() - loading
    if args.once:
        print(json.dumps({"load_seconds": loaded, **transcribe(model, args.once, args)}), flush=True)
        return
    print(json.dumps({"ready": True, "load_seconds": loaded, "rss_kb": rss_kb(os.getpid())}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        answer = transcribe(model, request["path"], args, request.get("batch_size", 0))
        print(json.dumps(answer), flush=True)


def _command(model: Path, options: EngineOptions, threads: int | None) -> list[str]:
    if threads is not None:
        options = EngineOptions(**{**options.__dict__, "threads": threads})
    return [sys.executable, "-m", "bench.bare", str(model), *options.argv()]


class Bare:
    """A long-lived bare process with ``model`` loaded; ``transcribe`` times one file in it."""

    def __init__(self, model: Path, options: EngineOptions, log_path: Path, threads: int | None = None):
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(_command(model, options, threads), cwd=ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.ready = self._answer()

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"bare faster-whisper exited ({self.process.wait()}); see {self.log.name}")
        return json.loads(line)

    def transcribe(self, path: Path, batch_size: int = 0) -> dict:
        self.process.stdin.write(json.dumps({"path": str(path), "batch_size": batch_size}) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(60)
        self.log.close()


def first_run(model: Path, path: Path, options: EngineOptions, log_path: Path) -> dict:
    """A fresh process's first transcription; ``total`` counts from the launch to its answer."""
    started = time.perf_counter()
    with open(log_path, "ab") as log:
        done = subprocess.run([*_command(model, options, None), "--once", str(path)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=log, text=True, check=True)
    return {"total": time.perf_counter() - started, **json.loads(done.stdout)}


if __name__ == "__main__":
    main()
