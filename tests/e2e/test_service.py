"""The whole service for real: gunicorn, supervisor, a spawned CPU worker, the tiny.en model."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import DATA, wer

EN = DATA / "en.mp3"
EN_TEXT = (DATA / "en.txt").read_text()


@pytest.fixture
def service(make_service):
    return make_service(workers=3)


def test_transcribes_through_three_http_workers(service):
    response = service.submit(EN, model_name="tiny.en", language="en")
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]

    seen = []
    stop = threading.Event()

    def poll():
        with requests.Session() as session:
            while not stop.is_set():
                answer = session.get(f"{service.url}/api/status/{task_id}", timeout=10)
                assert answer.status_code == 200
                seen.append(answer.json())

    with ThreadPoolExecutor(4) as pool:
        pollers = [pool.submit(poll) for _ in range(4)]
        final = service.wait_done(task_id)
        stop.set()
        for poller in pollers:
            poller.result()

    assert final["status"] == "done", final
    assert wer(EN_TEXT, final["result"]) <= 0.25, final["result"]
    assert final["result"].startswith("[00:00] ")
    assert final["model_name"] == "tiny.en" and final["language"] == "en"
    assert final["device"] == "cpu:0" and final["gpu_id"] is None and final["attempts"] == 1
    assert 13 < final["duration"] < 14 and final["file_size"] == EN.stat().st_size
    assert final["filename"] == "en.mp3" and final["progress"] == 100
    assert final["queue_time"] >= 0 and final["processing_time"] > 0
    segments = final["segments"]
    assert segments and all(s["words"] for s in segments)
    assert [s["start"] for s in segments] == sorted(s["start"] for s in segments)

    # Every answer, from whichever HTTP worker, is a consistent step of one history.
    order = {"queued": 0, "processing": 1, "done": 2}
    assert len(seen) > 10
    by_time = sorted(seen, key=lambda s: (order[s["status"]], s["progress"]))
    for answer in seen:
        assert answer["task_id"] == task_id and answer["status"] in order
        if answer["status"] == "done":
            assert answer["result"] == final["result"]
        else:
            assert answer["result"] is None
    assert by_time[-1]["status"] == "done"

    queue = service.get("/api/queue").json()
    assert [item["id"] for item in queue["completed"]] == [task_id]
    assert queue["queue"] == [] and queue["processing"] == [] and queue["failed"] == []
    assert service.get("/api/gpus").json() == []
    assert service.get("/api/model_status").json()["cpu:0"]["tiny.en"] == "loaded"
    messages = [entry["msg"] for entry in service.get("/api/logs").json()]
    assert any(task_id in msg and "transcribed" in msg for msg in messages), messages


def niceness(pid: int, thread: int | None = None) -> int:
    """Field 19 of ``/proc/<pid>/stat`` (or of one of its threads): the nice value."""
    stat = Path(f"/proc/{pid}" + (f"/task/{thread}" if thread else "") + "/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


def test_the_cpu_worker_yields_the_cpu_to_the_http_workers(make_service):
    service = make_service(workers=1)
    base = niceness(service.process.pid)
    deadline = time.monotonic() + 20  # the after-steps start once the device worker is idle
    while "after" not in (pids := service.worker_pids()) and time.monotonic() < deadline:
        time.sleep(0.2)
    worker = pids["cpu:0"]
    values = [niceness(worker, int(task.name)) for task in Path(f"/proc/{worker}/task").iterdir()]
    lower = min(19, base + 10)
    assert niceness(worker) == lower
    assert values.count(lower) > 2  # the engine's threads too, created after the niceness was set
    assert set(values) <= {lower, 19}  # 19: the librosa warm-up's threads, while it runs
    assert niceness(pids["after"]) == base  # only device workers


def test_bad_requests_get_json_errors(service, tmp_path):
    def post(files=None, **data):
        return requests.post(service.url + "/api/transcribe", files=files, data=data, timeout=10)

    cases = [
        (post(model_name="tiny.en"), 400, "no file"),
        (post(files={"file": ("empty.mp3", b"")}), 400, "empty"),
        (post(files={"file": ("notes.mp3", b"this is plain text, not audio\n" * 50)}), 400, "audio"),
        (post(files={"file": ("a.mp3", EN.read_bytes())}, model_name="huge-v9"), 400, "tiny.en"),
        (post(files={"file": ("a.mp3", EN.read_bytes())}, up_speed="fast"), 400, "up_speed"),
        (post(files={"file": ("a.mp3", EN.read_bytes())}, up_speed="9"), 400, "up_speed"),
        (post(files={"file": ("a.mp3", EN.read_bytes())}, split_roads="2,Client"), 400, "split_roads"),
        (post(files={"file": ("a.mp3", EN.read_bytes())}, split_roads="2,A,B"), 400, "channel"),
        (post(files={"file": ("a.mp3", EN.read_bytes())}, language="xx"), 400, "language"),
        (service.get("/api/status/nope"), 404, "nope"),
    ]
    for response, code, needle in cases:
        assert response.status_code == code, response.text
        assert needle in response.json()["error"]
    # Nothing of the rejected uploads is left on disk, no job was recorded.
    assert list((service.data_dir / "uploads").iterdir()) == []
    assert service.get("/api/queue").json()["counts"] == {"queued": 0, "processing": 0, "done": 0, "error": 0}


def test_oversized_upload_is_413(make_service):
    service = make_service(workers=1, WHISPER_API_MAX_UPLOAD_MB="1")
    response = requests.post(service.url + "/api/transcribe",
                             files={"file": ("big.mp3", b"\0" * (2 * 1024 * 1024))}, timeout=30)
    assert response.status_code == 413
    assert "1 MB" in response.json()["error"]
    assert list((service.data_dir / "uploads").glob("*")) == []


def _processing(service, task_id, attempt=1, timeout=60):
    """Wait until the job runs its ``attempt``-th time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = service.get(f"/api/status/{task_id}").json()
        if status["status"] == "processing" and status["attempts"] == attempt:
            return status
        time.sleep(0.05)
    raise TimeoutError(status)


def test_killed_worker_is_replaced_and_the_job_still_finishes(service):
    long_clip = DATA / "en.mp3"
    task_id = service.submit(long_clip, model_name="base", language="en").json()["task_id"]
    _processing(service, task_id)
    old_pid = service.worker_pids()["cpu:0"]
    os.kill(old_pid, signal.SIGKILL)

    final = service.wait_done(task_id, timeout=180)
    assert final["status"] == "done", final
    assert final["attempts"] == 2
    assert wer(EN_TEXT, final["result"]) <= 0.25
    assert service.worker_pids()["cpu:0"] != old_pid
    messages = " ".join(entry["msg"] for entry in service.get("/api/logs").json())
    assert "worker died" in messages and "queued again" in messages


def test_poison_job_ends_in_error_after_bounded_attempts(make_service):
    service = make_service(workers=1, WHISPER_API_MAX_ATTEMPTS="2")
    task_id = service.submit(EN, model_name="base", language="en").json()["task_id"]
    for attempt in (1, 2):
        _processing(service, task_id, attempt, timeout=120)
        os.kill(service.worker_pids()["cpu:0"], signal.SIGKILL)
    final = service.wait_done(task_id, timeout=60)
    assert final["status"] == "error"
    assert "gave up after 2 attempts" in final["error"]
    # The replaced worker serves the next job.
    next_id = service.submit(EN, model_name="tiny.en", language="en").json()["task_id"]
    assert service.wait_done(next_id)["status"] == "done"


def test_restart_with_queued_jobs_finishes_them_all(make_service, tmp_path):
    data_dir = tmp_path / "data"
    first = make_service(data_dir, workers=2)
    ids = [first.submit(EN, model_name="tiny.en", language="en").json()["task_id"] for _ in range(4)]
    first.kill_all()  # a power cut: nothing gets to clean up

    second = make_service(data_dir, workers=2)
    finals = [second.wait_done(task_id, timeout=180) for task_id in ids]
    assert [f["status"] for f in finals] == ["done"] * 4
    assert all(wer(EN_TEXT, f["result"]) <= 0.25 for f in finals)
    assert all(f["attempts"] <= 2 for f in finals)


def test_sigterm_and_sigint_leave_no_process_behind(make_service):
    for sig in (signal.SIGTERM, signal.SIGINT):
        service = make_service(workers=3)
        pids = service.group_pids()
        assert len(pids) >= 7  # master, 3 HTTP workers, supervisor, device worker, after-steps
        manager = service.data_dir / "run" / "manager.json"
        assert oct(manager.stat().st_mode & 0o777) == "0o600"
        authkey = json.loads(manager.read_text())["authkey"]
        for pid in pids:  # the manager's key is in no command line or environment
            for name in ("cmdline", "environ"):
                assert authkey.encode() not in Path(f"/proc/{pid}/{name}").read_bytes()
        assert authkey not in service.log_text() and authkey not in service.get("/api/logs").text
        assert service.stop(sig, timeout=60) == 0
        time.sleep(0.5)
        assert service.group_pids() == []


def test_prefetch_decodes_ahead_and_loses_nothing_in_a_crash(make_service):
    service = make_service(workers=1, WHISPER_API_PREFETCH="on")
    ids = [service.submit(EN, model_name="base", language="en").json()["task_id"] for _ in range(3)]
    _processing(service, ids[0])
    time.sleep(1.0)  # the second job is taken and decoded ahead meanwhile
    assert service.get(f"/api/status/{ids[1]}").json()["status"] == "queued"
    os.kill(service.worker_pids()["cpu:0"], signal.SIGKILL)
    finals = [service.wait_done(task_id, timeout=180) for task_id in ids]
    assert [f["status"] for f in finals] == ["done"] * 3
    assert [f["attempts"] for f in finals] == [2, 1, 1]
    assert all(wer(EN_TEXT, f["result"]) <= 0.25 for f in finals)
    messages = " ".join(entry["msg"] for entry in service.get("/api/logs").json())
    assert f"job {ids[1]} decoded ahead" in messages and f"job {ids[2]} decoded ahead" in messages


def test_status_can_wait_for_the_job_to_end(service):
    task_id = service.submit(EN, model_name="tiny.en", language="en").json()["task_id"]
    started = time.monotonic()
    early = service.get(f"/api/status/{task_id}", params={"wait": "0.3"}).json()
    assert early["status"] in ("queued", "processing") and 0.25 < time.monotonic() - started < 5
    final = requests.get(f"{service.url}/api/status/{task_id}", params={"wait": "60"}, timeout=70).json()
    assert final["status"] == "done", final  # one request, answered when the job ended
    assert wer(EN_TEXT, final["result"]) < 0.25
    started = time.monotonic()
    assert service.get(f"/api/status/{task_id}", params={"wait": "30"}).json() == final  # ended: at once
    assert time.monotonic() - started < 2
    for bad in ("soon", "-1", "61", "nan", "inf"):
        answer = service.get(f"/api/status/{task_id}", params={"wait": bad})
        assert answer.status_code == 400 and "wait" in answer.json()["error"], bad
    assert service.get("/api/status/nope", params={"wait": "5"}).status_code == 404
