"""``/metrics``, ``/healthz`` and ``/readyz`` over a live state served in this process (no workers)."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from whisper_api import live
from whisper_api.app import create_app
from whisper_api.config import Settings
from whisper_api.jobs import AFTER, Job, JobOptions


def samples(text: str) -> dict[tuple, float]:
    """``{(name, (label, value), ...): value}`` of a Prometheus text answer."""
    return {(sample.name, *sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.fixture
def settings(tmp_path, models_dir) -> Settings:
    return Settings(data_dir=tmp_path / "data", models_dir=models_dir, preload_models=("tiny.en", "base"))


@pytest.fixture
def pool(settings):
    """The supervisor's queue and live state, served on loopback as the supervisor does."""
    queue, state = live.JobQueue(), live.LiveState()
    live.serve(settings, queue, state)
    return queue, state


def test_without_the_pool_only_the_store_is_measured(settings):
    app = create_app(settings)
    app.extensions["whisper_api"].live.wait = 0
    app.extensions["whisper_api"].store.add(Job(id="j1", filename="a.mp3", path="a.mp3", file_size=1,
                                                options=JobOptions()))
    client = app.test_client()
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.content_type.startswith("text/plain")
    assert samples(answer.text) == {
        **{("whisper_api_jobs", ("state", state)): 0.0 for state in ("processing", "done", "error")},
        ("whisper_api_jobs", ("state", "queued")): 1.0,
        ("whisper_api_pool_up",): 0.0,
    }
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "not reachable" in ready.get_json()["error"]


def test_metrics_from_the_live_state(settings, pool):
    queue, state = pool
    state.set_device("cpu:0", status="busy", job="j1")
    state.set_device("cpu:1", status="idle")
    state.set_device(AFTER, status="idle", kind="after")
    state.count("audio_seconds", 12.5)
    state.count("model_loads", 2)
    state.count("worker_restarts")
    for seconds in (3.0, 40.0):
        state.observe("processing_seconds", seconds)
    queue.put("j2")
    queue.put("j3", lane=AFTER)

    found = samples(create_app(settings).test_client().get("/metrics").text)
    assert found[("whisper_api_pool_up",)] == 1
    assert found[("whisper_api_queue_depth", ("lane", "device"))] == 1
    assert found[("whisper_api_queue_depth", ("lane", "after"))] == 1
    assert found[("whisper_api_audio_seconds_total",)] == 12.5
    assert found[("whisper_api_model_loads_total",)] == 2
    assert found[("whisper_api_worker_restarts_total",)] == 1
    buckets = {labels[0][1]: value for (name, *labels), value in found.items()
               if name == "whisper_api_processing_seconds_bucket"}
    assert (buckets["2.5"], buckets["5.0"], buckets["30.0"], buckets["60.0"], buckets["+Inf"]) == (0, 1, 1, 2, 2)
    assert found[("whisper_api_processing_seconds_sum",)] == 43
    assert found[("whisper_api_processing_seconds_count",)] == 2
    busy = {labels[0][1]: value for (name, *labels), value in found.items() if name == "whisper_api_device_busy"}
    assert busy == {"cpu:0": 1, "cpu:1": 0}  # the after-steps process is not a device


def test_a_fresh_pool_has_every_metric_at_zero(settings, pool):
    found = samples(create_app(settings).test_client().get("/metrics").text)
    assert found[("whisper_api_audio_seconds_total",)] == 0
    assert found[("whisper_api_processing_seconds_count",)] == 0
    assert found[("whisper_api_processing_seconds_bucket", ("le", "+Inf"))] == 0


def test_ready_when_every_preload_model_is_loaded_on_a_working_device(settings, pool):
    _, state = pool
    client = create_app(settings).test_client()

    def ready() -> tuple[int, dict]:
        answer = client.get("/readyz")
        return answer.status_code, answer.get_json()

    state.set_device(AFTER, status="idle", kind="after")
    assert ready() == (503, {"status": "not ready", "error": "no device worker is up yet",
                             "missing": ["tiny.en", "base"]})
    state.set_device("cpu:0", status="idle")
    state.set_model("cpu:0", "tiny.en", "loaded")
    state.set_model("cpu:0", "base", "loading")
    assert ready() == (503, {"status": "not ready", "error": "not loaded yet: base", "missing": ["base"]})
    state.set_device("cpu:1", status="restarting")
    state.set_model("cpu:1", "base", "loaded")  # stale: its worker died
    assert ready()[1]["missing"] == ["base"]
    state.set_model("cpu:0", "base", "loaded")
    assert ready() == (200, {"status": "ready", "devices": ["cpu:0"]})
