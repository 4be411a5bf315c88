"""The web side alone: what it imports, and its JSON errors while no worker pool runs."""
import io
import subprocess
import sys
import wave

import pytest

from conftest import DATA, ROOT
from whisper_api.api import content_disposition
from whisper_api.uploads import clean_filename
from whisper_api.app import create_app
from whisper_api.config import Settings

HEAVY = ("faster_whisper", "ctranslate2", "torch", "librosa", "g4f", "numba")


def test_web_processes_never_import_the_engine():
    code = ("import sys, wsgi; heavy = [m for m in %r if m in sys.modules]; "
            "assert not heavy, heavy" % (HEAVY,))
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.fixture
def client(tmp_path, models_dir):
    app = create_app(Settings(data_dir=tmp_path / "data", models_dir=models_dir))
    app.extensions["whisper_api"].live.wait = 0  # no pool runs in these tests
    return app.test_client()


def test_monitors_answer_503_json_without_the_pool(client):
    for path in ("/api/gpus", "/api/model_status", "/api/logs", "/api/health"):
        response = client.get(path)
        assert response.status_code == 503 and "not reachable" in response.get_json()["error"]


def test_a_job_is_recorded_even_while_the_pool_is_down(client):
    with open(DATA / "en.mp3", "rb") as handle:
        response = client.post("/api/transcribe", data={"file": (handle, "en.mp3"), "model_name": "tiny.en"})
    assert response.status_code == 200
    status = client.get(f"/api/status/{response.get_json()['task_id']}").get_json()
    assert status["status"] == "queued" and status["filename"] == "en.mp3"


def test_unknown_routes_and_methods_are_json(client):
    response = client.get("/api/nothing")
    assert response.status_code == 404 and "not found" in response.get_json()["error"]
    response = client.get("/api/transcribe")
    assert response.status_code == 405 and "error" in response.get_json()


def test_models_lists_local_folders(client):
    models = client.get("/api/models").get_json()
    assert {"tiny.en", "base"} <= set(models["local"]) and "large-v3" in models["models"]
    assert models["default"] == "base"


@pytest.mark.parametrize("raw, expected", [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\call.mp3", "call.mp3"),
    ("bad\x00name.mp3", "badname.mp3"),
    ("..", ".."),
    ("", "upload"),
    ("звонок клиента.mp3", "звонок клиента.mp3"),
])
def test_client_file_names_are_metadata_only(raw, expected):
    assert clean_filename(raw) == expected


def test_download_names_survive_cyrillic():
    header = content_disposition("звонок.srt")
    assert header.startswith('attachment; filename="______.srt"')
    assert "filename*=UTF-8''%D0%B7%D0%B2%D0%BE%D0%BD%D0%BE%D0%BA.srt" in header


def test_a_full_queue_answers_429_with_retry_after(tmp_path, models_dir):
    app = create_app(Settings(data_dir=tmp_path / "data", models_dir=models_dir, queue_limit=1))
    app.extensions["whisper_api"].live.wait = 0
    client = app.test_client()

    def post():
        with open(DATA / "en.mp3", "rb") as handle:
            return client.post("/api/transcribe", data={"file": (handle, "en.mp3"), "model_name": "tiny.en"})

    assert post().status_code == 200
    full = post()
    assert full.status_code == 429 and full.headers["Retry-After"] == "30"
    assert "queue is full" in full.get_json()["error"]
    assert list((tmp_path / "data" / "uploads").iterdir()).__len__() == 1  # the refused file is not kept


def uploads_in(tmp_path) -> list[str]:
    return sorted(path.name for path in (tmp_path / "data" / "uploads").iterdir())


def test_an_upload_is_written_once_under_its_task_id(client, tmp_path):
    """Spooled into the uploads dir and renamed: one file, the client's bytes, no part left."""
    seconds = 40  # 2.5 MB of 16 kHz PCM: several of the parser's reads
    pcm = io.BytesIO()
    with wave.open(pcm, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(bytes(range(256)) * (seconds * 16000 * 4 // 256))
    body = pcm.getvalue()
    response = client.post("/api/transcribe", data={"file": (io.BytesIO(body), "call.wav"),
                                                    "model_name": "tiny.en"})
    assert response.status_code == 200, response.get_json()
    task_id = response.get_json()["task_id"]
    assert uploads_in(tmp_path) == [f"{task_id}.wav"]
    assert (tmp_path / "data" / "uploads" / f"{task_id}.wav").read_bytes() == body
    assert client.get(f"/api/status/{task_id}").get_json()["duration"] == seconds


@pytest.mark.parametrize("fields, error", [
    ({"model_name": "huge-v9"}, "unknown model_name"),  # refused after the file was spooled
    ({"model_name": "tiny.en", "split_roads": "2,A,B"}, "channel"),  # refused after the probe
])
def test_a_refused_upload_leaves_no_file(client, tmp_path, fields, error):
    with open(DATA / "en.mp3", "rb") as handle:
        response = client.post("/api/transcribe", data={"file": (handle, "en.mp3"), **fields})
    assert response.status_code == 400 and error in response.get_json()["error"]
    assert uploads_in(tmp_path) == []


def test_status_passes_the_stored_segments_on(client):
    """The status answer splices the stored segments in: the same JSON as ``Job.to_dict``."""
    with open(DATA / "en.mp3", "rb") as handle:
        task_id = client.post("/api/transcribe", data={"file": (handle, "en.mp3"),
                                                       "model_name": "tiny.en"}).get_json()["task_id"]
    store = client.application.extensions["whisper_api"].store
    assert client.get(f"/api/status/{task_id}").get_json() == store.get(task_id).to_dict()
    store.claim(task_id, "cpu:0")
    segments = [{"start": 0.0, "end": 1.5, "text": "Привет, \"мир\"", "words": [
        {"start": 0.0, "end": 0.7, "word": " Привет,", "probability": 0.9}]}]
    store.record_transcript(task_id, segments=segments, text="[00:00] Привет", language="ru", duration=1.5)
    response = client.get(f"/api/status/{task_id}")
    assert response.mimetype == "application/json"
    assert response.get_json() == store.get(task_id).to_dict()
    assert response.get_json()["segments"] == segments
