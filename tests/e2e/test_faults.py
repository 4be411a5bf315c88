"""Faults injected into the running service: timeouts, an unwritable data dir, stops."""
import signal
import sqlite3
import subprocess
import time

from conftest import DATA

EN = DATA / "en.mp3"


def long_clip(tmp_path, repeats=5):
    """en.mp3 said ``repeats`` times in a row (about 13 s each)."""
    out = tmp_path / "long.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", str(repeats - 1), "-i", str(EN),
                    "-c", "copy", str(out)], check=True)
    return out


def test_a_job_past_its_time_limit_ends_in_error_and_the_worker_is_replaced(make_service, tmp_path):
    service = make_service(workers=1, WHISPER_API_JOB_TIMEOUT_BASE="5", WHISPER_API_JOB_TIMEOUT_FACTOR="0")
    old_pid = service.worker_pids()["cpu:0"]
    task_id = service.submit(long_clip(tmp_path), model_name="base", language="en").json()["task_id"]
    final = service.wait_done(task_id, timeout=120)
    assert final["status"] == "error" and final["error"].startswith("timeout"), final
    assert final["attempts"] == 1  # a timeout is not retried
    short = service.wait_done(service.submit(EN, model_name="tiny.en").json()["task_id"])
    assert short["status"] == "done"
    assert service.worker_pids()["cpu:0"] != old_pid


def test_unwritable_data_dir_is_503_with_nothing_half_created(make_service):
    service = make_service(workers=1)
    uploads = service.data_dir / "uploads"
    uploads.mkdir(exist_ok=True)
    uploads.rmdir()
    uploads.write_text("not a folder")  # even root cannot write files under a regular file
    response = service.submit(EN, model_name="tiny.en")
    assert response.status_code == 503 and "could not store the upload" in response.json()["error"]
    assert service.get("/api/queue").json()["counts"]["queued"] == 0


def test_audio_longer_than_the_cap_is_refused(make_service):
    service = make_service(workers=1, WHISPER_API_MAX_AUDIO_MINUTES="0.1")
    response = service.submit(EN)
    assert response.status_code == 413 and "limit is 0.1 minutes" in response.json()["error"]


def test_sigterm_lets_the_running_job_finish_and_keeps_the_queue(make_service, tmp_path):
    data_dir = tmp_path / "data"
    first = make_service(data_dir, workers=1, WHISPER_API_SHUTDOWN_GRACE="60")
    # Longer than the stop takes to reach the worker (gunicorn first stops its HTTP workers,
    # about 2.5 s): a job that ended sooner would let the worker start a queued one.
    running = first.submit(long_clip(tmp_path, 2), model_name="base", language="en").json()["task_id"]
    queued = [first.submit(EN, model_name="tiny.en").json()["task_id"] for _ in range(2)]
    deadline = time.monotonic() + 60
    while first.get(f"/api/status/{running}").json()["status"] != "processing":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert first.stop(signal.SIGTERM) == 0

    with sqlite3.connect(data_dir / "jobs.sqlite3") as db:
        states = dict(db.execute("SELECT id, status FROM jobs"))
    assert states[running] == "done"  # finished within the grace period
    assert [states[task_id] for task_id in queued] == ["queued", "queued"]

    second = make_service(data_dir, workers=1)
    assert [second.wait_done(task_id)["status"] for task_id in queued] == ["done", "done"]
