"""The engine on real speech with the real offline models."""
import re
import subprocess
import time

import pytest

from conftest import DATA, wer
from whisper_api.config import Settings
from whisper_api.engine import Engine, compute_type, cpu_threads, device_args
from whisper_api.jobs import Job, JobOptions


@pytest.fixture(scope="module")
def engine(models_dir):
    statuses = []
    engine = Engine(Settings(models_dir=models_dir, cpu_workers=1), "cpu:0",
                    on_status=lambda model, status: statuses.append((model, status)))
    engine.statuses = statuses
    return engine


def job(clip: str, **options) -> Job:
    path = DATA / clip
    return Job(id="t", filename=clip, path=str(path), file_size=path.stat().st_size,
               options=JobOptions(**options), created_at=time.time())


def test_english_with_tiny_en(engine):
    progress = []
    transcript = engine.transcribe(job("en.mp3", model_name="tiny.en"), progress.append)
    assert wer((DATA / "en.txt").read_text(), transcript.text) <= 0.25, transcript.text
    assert transcript.language == "en" and 13 < transcript.duration < 14
    assert progress and progress == sorted(progress) and 90 <= progress[-1] <= 100
    first = transcript.segments[0]
    assert first["start"] < 0.5 and first["words"][0]["word"].strip().lower() == "good"
    assert transcript.text.splitlines()[0].startswith("[00:00] Good morning")


def test_russian_with_base(engine):
    transcript = engine.transcribe(job("ru.mp3", model_name="base", language="ru"), lambda p: None)
    text = transcript.text
    assert re.search(r"[а-яА-Я]", text), text
    found = [word for word in ("Добрый", "день", "Анна", "Сегодня", "хорошая", "Спасибо") if word in text]
    assert len(found) >= 4, text


def test_models_stay_resident(engine):
    engine.load("tiny.en")
    loads = engine.loads
    engine.transcribe(job("en.mp3", model_name="tiny.en"), lambda p: None)
    assert engine.loads == loads  # no reload per job
    assert ("tiny.en", "loaded") in engine.statuses


def test_unknown_model_fails_the_job_not_the_worker(engine, tmp_path):
    from whisper_api.exceptions import JobFailed

    with pytest.raises(JobFailed, match="could not be loaded"):
        engine.load("not-a-model-anywhere")
    assert engine.statuses[-1] == ("not-a-model-anywhere", "error")


def test_device_settings():
    assert device_args("cuda:1") == ("cuda", 1) and device_args("cpu:0") == ("cpu", 0)
    assert compute_type(Settings(), "cuda:0") == "float16"
    assert compute_type(Settings(), "cpu:0") == "int8"
    assert compute_type(Settings(compute_type="int8_float16"), "cuda:0") == "int8_float16"
    assert cpu_threads(Settings(cpu_threads=3)) == 3
    assert cpu_threads(Settings(cpu_workers=64)) == 1


def test_batched_inference_and_when_it_is_used(engine, models_dir):
    batched = Engine(Settings(models_dir=models_dir, batch_size=4), "cpu:0")
    transcript = batched.transcribe(job("en.mp3", model_name="tiny.en"), lambda p: None)
    assert wer((DATA / "en.txt").read_text(), transcript.text) <= 0.25, transcript.text
    assert batched.batch_size(job("call_stereo.mp3", split_roads="2,A,B")) == 0  # dialogs need fine timing
    assert engine.batch_size(job("en.mp3")) == 0  # auto: off on the CPU
    assert Engine(Settings(), "cuda:0").batch_size(job("en.mp3")) == 16  # auto: on for CUDA


def test_a_silent_channel_gives_no_lines(engine, tmp_path):
    stereo = tmp_path / "one_sided.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(DATA / "en.mp3"), "-f", "lavfi", "-t", "14",
                    "-i", "anullsrc=r=16000:cl=mono", "-filter_complex", "[0:a][1:a]amerge=inputs=2",
                    "-ac", "2", str(stereo)], check=True)
    dialog_job = Job(id="t", filename="one_sided.wav", path=str(stereo), file_size=stereo.stat().st_size,
                     options=JobOptions(model_name="tiny.en", split_roads="2,Caller,Agent"), created_at=time.time())
    transcript = engine.transcribe(dialog_job, lambda p: None)
    assert {segment["speaker"] for segment in transcript.segments} == {"Caller"}
    assert wer((DATA / "en.txt").read_text(), transcript.text) <= 0.25, transcript.text
