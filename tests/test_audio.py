"""Probing, per-channel decoding, crosstalk gating and speed-up, on real clips with the real model."""
import json
import os
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import WhisperModel

from whisper_api import audio
from whisper_api.exceptions import JobFailed
from whisper_api.models import place

DATA = Path(__file__).parent / "data"
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
EN_DURATION = 13.32


@pytest.fixture(scope="module")
def tiny_en():
    path = place("tiny.en", MODELS_DIR)
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=2)


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref = "".join(c if c.isalnum() or c.isspace() else " " for c in reference.lower()).split()
    hyp = "".join(c if c.isalnum() or c.isspace() else " " for c in hypothesis.lower()).split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


def rms(track: np.ndarray, start: float, end: float) -> float:
    part = track[int(start * audio.SAMPLE_RATE):int(end * audio.SAMPLE_RATE)]
    return float(np.sqrt(np.mean(part**2)))


def test_probe_reads_the_headers():
    info = audio.probe(DATA / "en.mp3")
    assert info.duration == pytest.approx(EN_DURATION, abs=0.1)
    assert (info.channels, info.sample_rate) == (1, 16000)
    assert info.codec.startswith("mp3")
    assert audio.probe(DATA / "call_stereo.mp3").channels == 2


def test_probe_rejects_a_file_that_is_not_media(tmp_path):
    fake = tmp_path / "notes.mp3"
    fake.write_text("meeting notes, not a recording\n" * 20)
    with pytest.raises(JobFailed, match="not a readable audio file"):
        audio.probe(fake)


def test_probe_rejects_a_video_without_sound(tmp_path):
    video = tmp_path / "silent.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=5", "-t", "1", video],
        check=True,
    )
    with pytest.raises(JobFailed, match="no audio track"):
        audio.probe(video)


def test_decode_mixes_to_mono_or_splits_channels():
    (mono,) = audio.decode(DATA / "en.mp3")
    assert mono.dtype == np.float32
    assert len(mono) / audio.SAMPLE_RATE == pytest.approx(EN_DURATION, abs=0.1)
    left, right = audio.decode(DATA / "call_stereo.mp3", channels=2)
    duration = audio.probe(DATA / "call_stereo.mp3").duration
    assert len(left) == len(right) == pytest.approx(duration * audio.SAMPLE_RATE, abs=200)
    with pytest.raises(JobFailed, match="needs 2 channels, but the file has 1"):
        audio.decode(DATA / "en.mp3", channels=2)


def test_gate_silences_the_leaked_voice_only():
    rng = np.random.default_rng(0)
    voice = rng.normal(0, 0.1, audio.SAMPLE_RATE).astype(np.float32)
    own, leak = audio.gate_crosstalk([voice, voice * 0.056])  # the same voice at -25 dB
    assert np.array_equal(own, voice)
    assert not leak.any()


def test_decoded_call_channels_carry_one_party_each():
    left, right = audio.decode(DATA / "call_stereo.mp3", channels=2)
    for line in json.loads((DATA / "call.json").read_text()):
        speaker, other = (left, right) if line["role"] == "Клиент" else (right, left)
        middle = (line["start"] + 0.5, line["end"] - 0.5)
        assert rms(speaker, *middle) > 0.02, line
        assert rms(other, *middle) < rms(speaker, *middle) / 100, line  # the leak was -25 dB


def test_speed_up_keeps_the_words_and_restores_original_times(tiny_en):
    (fast,) = audio.decode(DATA / "en.mp3", speed=1.5)
    assert len(fast) / audio.SAMPLE_RATE == pytest.approx(EN_DURATION / 1.5, abs=0.1)
    segments, _ = tiny_en.transcribe(fast, language="en", vad_filter=True, word_timestamps=True)
    segments = audio.restore_times([asdict(s) for s in segments], 1.5)
    text = " ".join(s["text"] for s in segments)
    assert word_error_rate((DATA / "en.txt").read_text(), text) <= 0.3, text
    assert segments[-1]["end"] == pytest.approx(EN_DURATION, abs=1.0)
    assert segments[-1]["words"][-1]["end"] == segments[-1]["end"]


def test_restore_times_scales_segments_and_words():
    word = {"start": 1.0, "end": 1.5, "word": " Hi", "probability": 0.9}
    segment = {"start": 1.0, "end": 2.0, "text": " Hi", "words": [word]}
    assert audio.restore_times([segment], 2.0) == [
        {"start": 2.0, "end": 4.0, "text": " Hi", "words": [{**word, "start": 2.0, "end": 3.0}]}
    ]
    assert segment == {"start": 1.0, "end": 2.0, "text": " Hi", "words": [word]}
    assert word["end"] == 1.5


def test_warm_up_compiles_into_a_writable_cache():
    audio.warm_up()
    assert any(Path(os.environ["NUMBA_CACHE_DIR"]).iterdir())


def test_decoding_stops_at_the_duration_cap():
    with pytest.raises(JobFailed, match="longer than the 0.1 minute limit"):
        audio.decode(DATA / "en.mp3", max_seconds=6)
    assert len(audio.decode(DATA / "en.mp3", max_seconds=60)[0]) / audio.SAMPLE_RATE > 13
