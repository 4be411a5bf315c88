"""``python -m bench.up_speed``: which speed-up keeps Whisper's words (issue: up_speed).

Transcribes the benchmark's 60 s speech clip with ``base`` at 1.0x, then sped up 1.5x and
2x by each method, and prints the word error rate against the clip's text and the time the
transcription took. Results go to ``bench/UP_SPEED.md``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .bare import ROOT
from .clips import TEXT, build

sys.path.insert(0, str(ROOT / "tests"))
from conftest import wer  # noqa: E402  (one WER for the tests and the benchmarks)

RATE = 16000


def librosa_stretch(audio: np.ndarray, speed: float, n_fft: int) -> np.ndarray:
    import librosa

    return librosa.effects.time_stretch(audio, rate=speed, n_fft=n_fft)


def ffmpeg_filter(path: Path, speed: float, filters: str) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(path), "-af", filters.format(speed=speed),
                          "-ac", "1", "-ar", str(RATE), "-f", "f32le", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.up_speed", description=__doc__)
    parser.add_argument("--model", default=str(ROOT / "models" / "base"))
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "UP_SPEED.md")
    args = parser.parse_args(argv)
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio

    from whisper_api.audio import STRETCH_N_FFT

    with tempfile.TemporaryDirectory() as folder:
        clip = build(Path(folder)).long
        audio = decode_audio(str(clip), sampling_rate=RATE)
        reference = " ".join(TEXT.split())
        model = WhisperModel(args.model, device="cpu", compute_type="int8", cpu_threads=2)
        methods = {
            f"librosa time_stretch, n_fft {STRETCH_N_FFT} (the service)":
                lambda speed: librosa_stretch(audio, speed, STRETCH_N_FFT),
            "librosa time_stretch, default n_fft 2048": lambda speed: librosa_stretch(audio, speed, 2048),
            "ffmpeg atempo": lambda speed: ffmpeg_filter(clip, speed, "atempo={speed}"),
            "sox tempo -s (WSOLA)": lambda speed: sox_tempo(clip, speed),
        }
        rows = [("1.0x (no speed-up)", 1.0, *run(model, audio, reference))]
        for speed in (1.5, 2.0):
            for name, method in methods.items():
                rows.append((name, speed, *run(model, method(speed), reference)))
    lines = ["# up_speed: word error rate by speed-up method", "",
             f"`python -m bench.up_speed`; model {Path(args.model).name}, int8, CPU, beam 5, VAD; "
             f"the benchmark's 60 s espeak-ng clip (bench/clips.py).", "",
             "| method | speed | WER | transcription time |", "|---|---|---|---|"]
    lines += [f"| {name} | {speed:g}x | {error:.3f} | {seconds:.1f} s |" for name, speed, error, seconds in rows]
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def sox_tempo(path: Path, speed: float) -> np.ndarray:
    raw = subprocess.run(f"ffmpeg -loglevel error -i {path} -ac 1 -ar {RATE} -f wav - | "
                         f"sox -t wav - -t f32 -r {RATE} -c 1 - tempo -s {speed}",
                         shell=True, check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.float32)


def run(model, audio: np.ndarray, reference: str) -> tuple[float, float]:
    started = time.perf_counter()
    segments, _ = model.transcribe(audio, language="en", beam_size=5, vad_filter=True)
    text = " ".join(segment.text for segment in segments)
    return wer(reference, text), time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
