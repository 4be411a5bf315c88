import os
import time

from whisper_api import retention
from whisper_api.app import create_app
from whisper_api.config import Settings
from whisper_api.jobs import Job, JobOptions
from whisper_api.store import JobStore

HOUR = 3600


def finished_job(store: JobStore, upload_dir, job_id: str, hours_ago: float) -> Job:
    path = upload_dir / f"{job_id}.mp3"
    path.write_bytes(b"audio")
    job = Job(id=job_id, filename="a.mp3", path=str(path), file_size=5, options=JobOptions(),
              created_at=time.time() - hours_ago * HOUR)
    store.add(job)
    store.claim(job_id, "cpu:0")
    store.record_transcript(job_id, segments=[], text="", language="en", duration=1.0)
    with store._connect() as db:  # back-date the completion
        db.execute("UPDATE jobs SET completed_at = ? WHERE id = ?", (time.time() - hours_ago * HOUR, job_id))
    return job


def test_old_jobs_files_and_orphans_go_recent_ones_stay(tmp_path, models_dir):
    settings = Settings(data_dir=tmp_path, models_dir=models_dir, retention_hours=48)
    settings.upload_dir.mkdir(parents=True)
    store = JobStore(settings.db_path)
    old = finished_job(store, settings.upload_dir, "old", 50)
    new = finished_job(store, settings.upload_dir, "new", 1)
    orphan = settings.upload_dir / "ffff.mp3"
    partial = settings.upload_dir / "eeee.wav.part"
    fresh = settings.upload_dir / "dddd.wav.part"  # an upload being written right now
    for path in (orphan, partial, fresh):
        path.write_bytes(b"x")
    for path in (orphan, partial):
        os.utime(path, (time.time() - 2 * HOUR,) * 2)

    assert retention.clean(settings, store) == 1
    assert store.get("old") is None and store.get("new") is not None
    assert not os.path.exists(old.path) and os.path.exists(new.path)
    assert not orphan.exists() and not partial.exists() and fresh.exists()

    client = create_app(settings).test_client()
    gone = client.get("/api/status/old")
    assert gone.status_code == 404 and "expired" in gone.get_json()["error"]
    assert "kept for 48 hours" in gone.get_json()["error"]
    assert client.get("/api/status/never").get_json()["error"] == "no task 'never'"
    assert client.get("/api/status/new").status_code == 200


def test_zero_keeps_everything(tmp_path):
    settings = Settings(data_dir=tmp_path, retention_hours=0)
    settings.upload_dir.mkdir(parents=True)
    store = JobStore(settings.db_path)
    finished_job(store, settings.upload_dir, "old", 5000)
    assert retention.clean(settings, store) == 0 and store.get("old") is not None
