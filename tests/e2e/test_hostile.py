"""Broken and hostile uploads against the running service: each gets a 4xx or a job error with a
clear message, nothing is written outside the data dir, and the worker lives on."""
import struct
import subprocess

import pytest
import requests

from conftest import DATA, Service, wer

EN = DATA / "en.mp3"
EN_TEXT = (DATA / "en.txt").read_text()


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def service(tmp_path_factory, models_dir):
    with Service(tmp_path_factory.mktemp("hostile") / "data", models_dir, workers=2) as running:
        running.first_pid = running.worker_pids()["cpu:0"]
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The hostile files, made once."""
    root = tmp_path_factory.mktemp("files")
    made = {}
    made["pdf"] = root / "report.mp3"
    made["pdf"].write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" * 40)
    made["truncated"] = root / "cut.mp3"
    made["truncated"].write_bytes(EN.read_bytes()[: EN.stat().st_size // 2])
    made["m4a"] = root / "voice.m4a"  # the moov atom at the end: ffmpeg's default without faststart
    ffmpeg("-i", EN, "-c:a", "aac", "-b:a", "48k", made["m4a"])
    made["video"] = root / "talk.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=64x64:r=5", "-i", EN, "-shortest", "-c:v", "libx264",
           "-c:a", "aac", made["video"])
    made["silent_video"] = root / "screen.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64:r=5", "-t", "2", "-c:v", "libx264", made["silent_video"])
    made["huge_wav"] = root / "huge.wav"  # a header claiming ~37 hours, one second of data
    pcm = b"\x00\x01" * 16000
    made["huge_wav"].write_bytes(b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVEfmt "
                                 + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
                                 + b"data" + struct.pack("<I", 0xFFFFFFD0) + pcm)
    ten = root / "ten.opus"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000", "-t", "10", "-c:a", "libopus",
           "-b:a", "6k", ten)
    made["hours_opus"] = root / "hours.opus"  # 5 hours in about 12 MB
    ffmpeg("-stream_loop", "1799", "-i", ten, "-c", "copy", made["hours_opus"])
    return made


def upload(service, path, name=None, **data):
    with open(path, "rb") as handle:
        return requests.post(service.url + "/api/transcribe", files={"file": (name or path.name, handle)},
                             data={"model_name": "tiny.en", **data}, timeout=60)


@pytest.mark.parametrize("kind, code, message", [
    ("pdf", 400, "not a readable audio file"),
    ("silent_video", 400, "no audio track"),
    ("hours_opus", 413, "300 minutes long"),
])
def test_refused_on_upload(service, files, kind, code, message):
    response = upload(service, files[kind])
    assert response.status_code == code, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize("kind", ["m4a", "video"])
def test_containers_that_must_transcribe(service, files, kind):
    final = service.wait_done(upload(service, files[kind]).json()["task_id"])
    assert final["status"] == "done", final
    assert wer(EN_TEXT, final["result"]) <= 0.25, final["result"]


def test_wav_header_claiming_37_hours(service, files):
    """FFmpeg trusts the file size over the header: one second of silence is all there is."""
    response = upload(service, files["huge_wav"])
    assert response.status_code == 200 and service.get(
        f"/api/status/{response.json()['task_id']}").json()["duration"] < 2
    final = service.wait_done(response.json()["task_id"])
    assert final["status"] == "done" and final["duration"] < 2


def test_truncated_mp3_gives_what_it_holds(service, files):
    final = service.wait_done(upload(service, files["truncated"]).json()["task_id"])
    assert final["status"] == "done", final
    assert "good morning" in final["result"].lower()
    assert "lunch" not in final["result"].lower()  # the second half is gone


@pytest.mark.parametrize("name", [
    "../../etc/passwd", "../../../tmp/evil.mp3", "bad\x00name.mp3", "...", "/", "\u202e3pm.exe",
    "очень длинное имя записи разговора с клиентом " * 8 + ".mp3",
])
def test_file_names_are_only_metadata(service, name):
    response = upload(service, EN, name=name)
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]
    status = service.get(f"/api/status/{task_id}").json()
    assert "/" not in status["filename"] and "\x00" not in status["filename"]
    assert len(status["filename"]) <= 255
    stored = [path.name for path in (service.data_dir / "uploads").iterdir() if path.name.startswith(task_id)]
    assert len(stored) == 1 and stored[0].split(".")[0] == task_id


def test_worker_survived_everything(service):
    """Runs last in this module: the same worker process, and it still transcribes."""
    final = service.wait_done(upload(service, EN).json()["task_id"], timeout=300)
    assert final["status"] == "done"
    assert service.worker_pids()["cpu:0"] == service.first_pid
    assert not any(path.suffix == ".part" for path in (service.data_dir / "uploads").iterdir())
