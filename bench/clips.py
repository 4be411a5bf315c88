"""The audio the benchmark sends, built into a temporary folder and never committed.

Looping ``tests/data/en.mp3`` to 60 s does not give a fair clip: Whisper sees the same
sentences twice in one 30 s window, the transcript compresses too well (ratio > 2.4), and
faster-whisper falls back to sampling at higher temperatures, so every run does a different
amount of work (measured: 29 s and 35 s for the same file, 4 and 15 segments). The long
clips are therefore spoken from a text without repetitions, by espeak-ng, as
``tests/data/make_clips.sh`` makes the test clips; the 5 s clip is cut from ``en.mp3``.
"""
from __future__ import annotations

import argparse
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .bare import ROOT

TEXT = (
    "Good morning, everyone, and thank you for joining the call. Before we start, a few notes "
    "about the schedule for next week. The new office on Baker Street opens on Monday, and the "
    "first team to move will be finance. Please pack your desks on Friday afternoon and label "
    "every box with your name and floor number. On Tuesday we will test the network, so expect "
    "short outages between ten and noon. The kitchen on the third floor stays closed until "
    "Thursday while the plumbers replace the old pipes. If you need parking, send a message to "
    "Maria before Wednesday; there are only forty spaces in the garage. Last month we shipped "
    "more orders than in any month before, and the customer survey came back with better scores "
    "for delivery times. The main complaint was the website search, which still returns old "
    "products. Daniel's group will fix that in two steps: first the index, then the filters on "
    "the results page. Finally, the quarterly report is due on the fifteenth. Any questions?"
)
UPLOAD_BYTES = 10 * 1024 * 1024
# The long clip for batched inference: TEXT spoken by one voice and speed after another, so no
# 30 s window holds the same sentences twice (see the module's docstring).
VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-029", "en-gb-scotland", "en-us", "en-gb", "en-gb-x-rp",
          "en-029", "en-gb-scotland", "en-us", "en-gb")
SPEEDS = (150, 135, 165, 145, 155, 170, 140, 160, 150, 135, 165, 145)
LONG_NAME = "speech600.mp3"


@dataclass(frozen=True)
class Clips:
    long: Path  # 60 s of speech
    medium: Path  # its first 20 s: the clip sent several at once
    short: Path  # 5 s cut from tests/data/en.mp3
    upload: Path  # 10 MiB of 48 kHz stereo PCM silence: upload cost without transcription cost


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                          str(path)], check=True, capture_output=True, text=True).stdout
    return float(out)


def describe(speech: Path | None) -> str:
    """The clips' origin, for the report."""
    source = f"`{speech.name}`" if speech else "an English text without repetitions spoken by espeak-ng"
    return (f"60 s and 20 s cut from {source}; 5 s cut from tests/data/en.mp3 (all mono 16 kHz MP3); "
            "uploads: 10 MiB of 48 kHz stereo PCM silence (a WAV the worker decodes and finds no speech in)")


def build(folder: Path, speech: Path | None = None) -> Clips:
    """Make the clips in ``folder``; ``speech`` (any file of 60 s or more) replaces the espeak-ng text."""
    folder.mkdir(parents=True, exist_ok=True)
    if speech is None:
        speech = folder / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(speech), TEXT], check=True)
    if duration(speech) < 60:
        raise ValueError(f"{speech} is shorter than 60 s")
    clips = Clips(folder / "speech60.mp3", folder / "speech20.mp3", folder / "en5.mp3", folder / "silence10mb.wav")
    mono = ("-ac", "1", "-ar", "16000", "-b:a", "64k")
    _ffmpeg("-i", str(speech), "-t", "60", *mono, str(clips.long))
    _ffmpeg("-i", str(speech), "-t", "20", *mono, str(clips.medium))
    _ffmpeg("-i", str(ROOT / "tests" / "data" / "en.mp3"), "-t", "5", *mono, str(clips.short))
    seconds = (UPLOAD_BYTES - 44) / (48000 * 2 * 2)  # 44-byte WAV header, 16-bit stereo samples
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-t", f"{seconds:.6f}", "-c:a", "pcm_s16le",
            str(clips.upload))
    return clips


def build_long(folder: Path, seconds: float = 600.0) -> Path:
    """``seconds`` of speech (16 kHz mono MP3) for the batched-inference case."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for index, (voice, speed) in enumerate(zip(VOICES, SPEEDS)):
        part = folder / f"long-{index}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(part), TEXT], check=True)
        parts.append(part)
    listing = folder / "long.txt"
    listing.write_text("".join(f"file '{part.name}'\n" for part in parts))
    target = folder / LONG_NAME
    _ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-t", str(seconds), "-ac", "1", "-ar", "16000",
            "-b:a", "48k", str(target))
    for part in parts:
        part.unlink()
    listing.unlink()
    if duration(target) < seconds - 1:
        raise ValueError(f"{target} is {duration(target):.0f} s, shorter than {seconds:.0f} s")
    return target


def prebuilt(folder: Path) -> Clips:
    """Clips made earlier by ``python -m bench.clips FOLDER`` (on a machine without ffmpeg or espeak-ng)."""
    clips = Clips(folder / "speech60.mp3", folder / "speech20.mp3", folder / "en5.mp3", folder / "silence10mb.wav")
    missing = [path.name for path in (clips.long, clips.medium, clips.short) if not path.exists()]
    if missing:
        raise SystemExit(f"{folder} lacks {', '.join(missing)}: make it with python -m bench.clips {folder}")
    return clips


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.clips",
                                     description="Make the benchmark's clips in a folder, to carry elsewhere.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--long", type=float, default=600.0, metavar="SECONDS",
                        help="length of the long clip for batched inference (0: none)")
    parser.add_argument("--no-upload", action="store_true", help="skip the 10 MiB upload file")
    args = parser.parse_args(argv)
    clips = build(args.folder)
    (args.folder / "speech.wav").unlink(missing_ok=True)
    if args.no_upload:
        clips.upload.unlink()
    if args.long:
        build_long(args.folder, args.long)
    for path in sorted(args.folder.iterdir()):
        print(f"{path}  {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
