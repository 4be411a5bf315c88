"""The OpenAI-compatible API through the official ``openai`` SDK, against the running service."""
from __future__ import annotations

import re

import openai
import pytest
import requests
from openai import OpenAI

from conftest import DATA, Service, wer
from whisper_api.app import create_app
from whisper_api.config import Settings

EN = DATA / "en.mp3"
RU = DATA / "ru.mp3"
EN_TEXT = (DATA / "en.txt").read_text()
KEY = "sk-test-key"


@pytest.fixture(scope="module")
def service(tmp_path_factory, models_dir):
    """One service for the module, with a key; its models dir adds a ``broken`` model that cannot load."""
    root = tmp_path_factory.mktemp("openai")
    models = root / "models"
    models.mkdir()
    for name in ("tiny.en", "base"):
        (models / name).symlink_to(models_dir / name)
    (models / "broken").mkdir()
    for name in ("config.json", "model.bin", "tokenizer.json"):
        (models / "broken" / name).write_text("not a model\n")
    with Service(root / "data", models, workers=2, WHISPER_API_KEYS=KEY) as service:
        yield service


@pytest.fixture(scope="module")
def client(service):
    with OpenAI(base_url=service.url + "/v1", api_key=KEY, max_retries=0, timeout=300) as client:
        yield client


def transcribe(client: OpenAI, **fields):
    """en.mp3 through ``/v1/audio/transcriptions``, by default with tiny.en in English."""
    with open(EN, "rb") as handle:
        return client.audio.transcriptions.create(file=handle, **{"model": "tiny.en", "language": "en", **fields})


def test_models_list_whisper_1_and_every_model(client, service):
    ids = [model.id for model in client.models.list()]
    assert ids[0] == "whisper-1" and {"tiny.en", "base", "large-v3", "broken"} <= set(ids)
    assert client.models.retrieve("tiny.en").owned_by == "whisper_api"
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("gpt-5")
    assert raised.value.type == "invalid_request_error" and "gpt-5" in raised.value.message
    # n8n's credential test: GET /v1/models with a Bearer key.
    answer = requests.get(service.url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["object"] == "list"
    assert all(set(model) == {"id", "object", "created", "owned_by"} for model in answer.json()["data"])


def test_json_is_the_text_alone(client):
    result = transcribe(client)
    assert wer(EN_TEXT, result.text) <= 0.25, result.text
    assert "[00:" not in result.text


def test_text_with_a_prompt(client, service):
    text = transcribe(client, response_format="text", prompt="The weather report.", temperature=0)
    assert isinstance(text, str) and wer(EN_TEXT, text) <= 0.25 and "[00:" not in text, text
    task_id = service.get("/api/queue").json()["completed"][0]["id"]
    options = service.get(f"/api/status/{task_id}").json()["options"]
    assert options["initial_prompt"] == "The weather report." and options["model_name"] == "tiny.en"
    # OpenAI's temperature 0 is Whisper's fallback schedule.
    assert options["temperature"] is None and options["task"] == "transcribe"


def test_srt_and_vtt(client):
    srt = transcribe(client, response_format="srt")
    assert srt.startswith("1\n00:00:0") and re.search(r"\d\d:\d\d:\d\d,\d{3} --> ", srt), srt
    vtt = transcribe(client, response_format="vtt")
    assert vtt.startswith("WEBVTT\n") and re.search(r"\d\d:\d\d:\d\d\.\d{3} --> ", vtt), vtt
    assert wer(EN_TEXT, re.sub(r".*-->.*|^\d+$", " ", srt, flags=re.M)) <= 0.25


def test_verbose_json_with_word_timestamps(client, service):
    result = transcribe(client, response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert result.language == "english" and 13 < result.duration < 14
    assert wer(EN_TEXT, result.text) <= 0.25
    segments = result.segments
    assert segments and [s.id for s in segments] == list(range(len(segments)))
    assert all(s.start < s.end and s.avg_logprob <= 0 and s.compression_ratio > 0 for s in segments)
    words = result.words
    assert wer(EN_TEXT, " ".join(w.word for w in words)) <= 0.25
    assert all(w.start <= w.end and w.word == w.word.strip() for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    # The job is counted by /metrics.
    metrics = service.get("/metrics").text
    assert float(re.search(r"^whisper_api_audio_seconds_total (\S+)$", metrics, re.M)[1]) > 13
    assert float(re.search(r"^whisper_api_processing_seconds_count (\S+)$", metrics, re.M)[1]) >= 1


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK's mark on translations
def test_translation_of_russian_is_english(client):
    with open(RU, "rb") as handle:
        result = client.audio.translations.create(file=handle, model="whisper-1", response_format="verbose_json")
    assert result.task == "translate" and result.language == "english", result
    # base translates this synthetic voice poorly (its fallback samples): English, not the exact words.
    assert not re.search("[а-яё]", result.text.lower()), result.text
    assert len(re.findall(r"[a-z]{2,}", result.text.lower())) >= 3, result.text


def test_bad_requests_are_openai_errors(client, service):
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.transcriptions.create(file=("notes.mp3", b"plain text, not audio\n" * 50), model="whisper-1")
    assert raised.value.type == "invalid_request_error" and "audio" in raised.value.message
    for fields, needle in [({"model": "gpt-4o-transcribe"}, "gpt-4o-transcribe"),
                           ({"response_format": "diarized_json"}, "response_format"),
                           ({"temperature": 2}, "temperature"),
                           ({"language": "xx"}, "language"),
                           ({"timestamp_granularities": ["char"]}, "timestamp_granularities")]:
        with pytest.raises(openai.BadRequestError) as raised:
            transcribe(client, **fields)
        assert needle in raised.value.message
    answer = requests.post(service.url + "/v1/audio/transcriptions", files={"file": ("en.mp3", EN.read_bytes())},
                           headers=service.headers, timeout=10)
    assert answer.status_code == 400
    assert answer.json() == {"error": {"message": "you must provide a model parameter",
                                       "type": "invalid_request_error", "param": None, "code": None}}
    answer = service.get("/v1/audio/transcriptions")
    assert answer.status_code == 405 and answer.json()["error"]["type"] == "invalid_request_error"
    answer = service.get("/api/status/nope")
    assert answer.json() == {"error": "no task 'nope'"}  # /api keeps its own shape


def test_a_failed_job_is_a_server_error(client):
    with pytest.raises(openai.InternalServerError) as raised:
        transcribe(client, model="broken")
    assert raised.value.type == "server_error" and "could not be loaded" in raised.value.message


def test_a_wrong_key_is_401(service):
    with OpenAI(base_url=service.url + "/v1", api_key="wrong", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as raised:
            client.models.list()
        with pytest.raises(openai.AuthenticationError):
            transcribe(client)
    error = raised.value
    assert error.status_code == 401 and error.type == "invalid_request_error" and error.code == "invalid_api_key"
    answer = requests.get(service.url + "/v1/models", timeout=10)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"


@pytest.fixture
def app_client(tmp_path, models_dir):
    """The app alone, with no worker pool: jobs are stored and stay queued."""
    def make(**settings):
        app = create_app(Settings(data_dir=tmp_path / "data", models_dir=models_dir, **settings))
        app.extensions["whisper_api"].live.wait = 0
        return app.test_client()
    return make


def post_audio(client, **fields):
    with open(EN, "rb") as handle:
        return client.post("/v1/audio/transcriptions", data={"file": (handle, "en.mp3"), "model": "tiny.en", **fields})


def test_wait_exceeded_is_504_with_the_task_id(app_client):
    client = app_client(openai_wait=0.3)
    answer = post_audio(client, model="whisper-1", temperature="0.3", language="auto")
    assert answer.status_code == 504
    error = answer.get_json()["error"]
    task_id = re.search(r"/api/status/(\w+)", error["message"])[1]
    assert error["type"] == "server_error" and error["code"] == "timeout"
    status = client.get(f"/api/status/{task_id}").get_json()
    assert status["status"] == "queued" and status["model_name"] == "base"
    assert status["options"]["temperature"] == 0.3 and status["options"]["language"] is None


def test_a_full_queue_is_429_with_retry_after(app_client):
    client = app_client(openai_wait=0, queue_limit=1)
    assert post_audio(client).status_code == 504  # the one job the queue may hold
    answer = post_audio(client)
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0
    assert answer.get_json()["error"]["code"] == "rate_limit_exceeded"


def test_an_oversized_upload_is_413(app_client):
    client = app_client(max_upload_mb=0)
    answer = post_audio(client)
    assert answer.status_code == 413 and answer.get_json()["error"]["code"] == "file_too_large"
