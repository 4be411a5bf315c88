"""The CUDA path on a real GPU: one spawned worker per GPU, float16 models, batched inference.

CI has no GPU, so these tests skip where nvidia-smi lists none. On a GPU host, with the base
model in models/ (``python -m whisper_api.models base``):

    .venv/bin/python -m pytest tests/e2e/test_gpu.py
"""
import json
import re
import shutil

import pytest

from cluster import RedisServer, WorkerHost, devices, wait_for
from conftest import DATA, MODELS_DIR, Service, wer
from whisper_api import gpus

GPUS = gpus.sample()
pytestmark = pytest.mark.skipif(not GPUS, reason="no NVIDIA GPU here (nvidia-smi lists none)")

EN = DATA / "en.mp3"
EN_TEXT = (DATA / "en.txt").read_text()
CALL = DATA / "call_stereo.mp3"
TRUTH = json.loads((DATA / "call.json").read_text())


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    if not (MODELS_DIR / "base" / "model.bin").exists():
        pytest.skip("models/base is missing: python -m whisper_api.models base")
    with Service(tmp_path_factory.mktemp("gpu") / "data", MODELS_DIR, workers=2,
                 WHISPER_API_DEVICES="auto", WHISPER_API_PRELOAD_MODELS="base") as running:
        yield running


def test_one_worker_process_per_gpu_holds_a_float16_model(service):
    devices = {name: info for name, info in service.get("/api/health").json()["devices"].items()
               if info.get("kind") != "after"}
    assert sorted(devices) == sorted(f"cuda:{gpu['id']}" for gpu in GPUS)
    assert len({info["pid"] for info in devices.values()}) == len(GPUS)  # a process each

    status = service.get("/api/model_status").json()
    assert status == {str(gpu["id"]): {"base": "loaded"} for gpu in GPUS}
    messages = [entry["msg"] for entry in service.get("/api/logs").json()]
    for gpu in GPUS:
        assert any(re.search(rf"cuda:{gpu['id']}: model base loaded \(float16\)", m) for m in messages), messages

    # nvidia-smi is read every 2 s: the first reading may predate the model
    wait_for(lambda: all(gpu["memory_used_mb"] > 0 for gpu in service.get("/api/gpus").json()), 10,
             lambda: f"no GPU memory in use: {service.get('/api/gpus').json()}")
    assert len(service.get("/api/gpus").json()) == len(GPUS)


def test_speech_is_transcribed_on_the_gpu_with_batching(service):
    task_id = service.submit(EN, model_name="base", language="en").json()["task_id"]
    final = service.wait_done(task_id)
    assert final["status"] == "done", final
    assert final["device"].startswith("cuda:")
    assert wer(EN_TEXT, final["result"]) < 0.25, final["result"]
    messages = [entry["msg"] for entry in service.get("/api/logs").json()]
    assert any(task_id in m and "batch 16" in m for m in messages), messages


def test_dialog_is_transcribed_on_the_gpu_without_batching(service):
    task_id = service.submit(CALL, model_name="base", language="ru",
                             split_roads="2,Клиент,Сотрудник").json()["task_id"]
    final = service.wait_done(task_id)
    assert final["status"] == "done", final
    assert final["device"].startswith("cuda:")
    roles = [re.match(r"\[\d\d:\d\d\] \[([^\]]+)\]", line)[1] for line in final["result"].strip().splitlines()]
    turns = [role for index, role in enumerate(roles) if index == 0 or roles[index - 1] != role]
    assert turns == [line["role"] for line in TRUTH], final["result"]
    messages = [entry["msg"] for entry in service.get("/api/logs").json()]
    assert any(task_id in m and "sequential" in m for m in messages), messages


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_a_gpu_worker_host_runs_one_cuda_worker_per_gpu(tmp_path):
    """``whisper-api worker`` on a GPU host: a spawned CUDA worker per GPU, fed through Redis."""
    if not (MODELS_DIR / "base" / "model.bin").exists():
        pytest.skip("models/base is missing")
    redis_server = RedisServer(tmp_path / "redis").start()
    host = WorkerHost("gpu-host", tmp_path, MODELS_DIR, redis_server.url, WHISPER_API_DEVICES="auto",
                      WHISPER_API_PRELOAD_MODELS="base").start()
    node = Service(tmp_path / "api" / "data", MODELS_DIR, workers=2, WHISPER_API_QUEUE_URL=redis_server.url,
                   WHISPER_API_PRELOAD_MODELS="base")
    try:
        node.start()
        expected = {f"gpu-host/cuda:{gpu['id']}" for gpu in GPUS}
        wait_for(lambda: devices(node) >= expected, 120, lambda: host.log_text())
        pids = {info["pid"] for name, info in node.get("/api/health").json()["devices"].items() if name in expected}
        assert len(pids) == len(GPUS)
        task_id = node.submit(EN, model_name="base", language="en").json()["task_id"]
        final = node.wait_done(task_id)
        assert final["status"] == "done" and final["device"] in expected, final
        assert wer(EN_TEXT, final["result"]) < 0.25, final["result"]
        status = node.get("/api/model_status").json()
        assert all(status[f"gpu-host/{gpu['id']}"] == {"base": "loaded"} for gpu in GPUS), status
        shown = lambda: [gpu for gpu in node.get("/api/gpus").json() if gpu["host"] == "gpu-host"]  # noqa: E731
        wait_for(lambda: len(shown()) == len(GPUS) and all(gpu["memory_used_mb"] > 0 for gpu in shown()), 20)
    finally:
        node.__exit__(None, None, None)
        host.stop()
        redis_server.stop()
