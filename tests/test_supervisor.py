"""The supervisor's queue bookkeeping, without device workers (no engine involved)."""
import time

import pytest

from whisper_api.config import Settings
from whisper_api.jobs import AFTER, POLISHING, JobStatus
from whisper_api.live import JobQueue
from whisper_api.supervisor import Supervisor, resolve_devices
from test_store import make_job


@pytest.fixture
def supervisor(tmp_path):
    return Supervisor(Settings(data_dir=tmp_path, devices="cpu", cpu_workers=2, max_attempts=2))


def test_devices(tmp_path):
    assert resolve_devices(Settings(devices="cpu", cpu_workers=3)) == ["cpu:0", "cpu:1", "cpu:2"]
    assert resolve_devices(Settings(devices="cuda:0, cuda:1")) == ["cuda:0", "cuda:1"]
    assert resolve_devices(Settings(devices="auto", cpu_workers=1)) == ["cpu:0"]  # no GPU here
    with pytest.raises(ValueError, match="tpu:0"):
        resolve_devices(Settings(devices="tpu:0"))


def test_queue_records_who_holds_what():
    queue = JobQueue()
    assert queue.put("a") and queue.put("b") and not queue.put("a")
    assert queue.take("cpu:0", timeout=0.1) == "a"
    assert not queue.put("a")  # running jobs are not queued twice
    assert queue.put("c", lane=AFTER)
    assert queue.snapshot() == {"queued": ["b"], "after": ["c"], "running": {"cpu:0": "a"}}
    assert queue.take("after:0", 0.1, lane=AFTER) == "c"
    assert queue.release("cpu:0") == "a"
    assert queue.take("cpu:1", 0.1) == "b" and queue.take("cpu:0", 0.05) is None


def test_crashed_jobs_are_retried_then_failed(supervisor):
    store = supervisor.store
    make_job(store)
    store.claim("j1", "cpu:0")
    supervisor.recover("j1", "its worker died")
    assert store.get("j1").status is JobStatus.QUEUED
    assert supervisor.queue.take("cpu:0", 0.1) == "j1"
    supervisor.queue.release("cpu:0")
    store.claim("j1", "cpu:0")
    supervisor.recover("j1", "its worker died")
    job = store.get("j1")
    assert job.status is JobStatus.ERROR
    assert job.error == "gave up after 2 attempts: its worker died"
    assert supervisor.queue.snapshot()["queued"] == []


def test_start_takes_up_unfinished_jobs_in_order(supervisor):
    store = supervisor.store
    for name in ("a", "b", "c"):
        make_job(store, name)
    store.claim("b", "cpu:0")  # the previous run died while running b
    supervisor.recover_all()
    assert store.get("b").status is JobStatus.QUEUED
    assert sorted(supervisor.queue.snapshot()["queued"]) == ["a", "b", "c"]


def test_sweep_finds_jobs_the_queue_lost(supervisor, monkeypatch):
    store = supervisor.store
    make_job(store, "lost")
    make_job(store, "held")
    supervisor.queue.put("held")
    supervisor.queue.take("cpu:1", 0.1)
    store.claim("held", "cpu:1")
    monkeypatch.setattr(time, "time", lambda real=time.time: real() + 60)
    supervisor.sweep()
    assert supervisor.queue.snapshot() == {"queued": ["lost"], "after": [], "running": {"cpu:1": "held"}}
    assert store.get("held").status is JobStatus.PROCESSING


def test_a_transcribed_job_resumes_at_its_after_step(supervisor):
    store = supervisor.store
    make_job(store)
    store.claim("j1", "cpu:0")
    store.record_transcript("j1", segments=[], text="raw", language="en", duration=1.0, then=POLISHING)
    supervisor.recover_all()  # the service stopped while the LLM was polishing
    assert supervisor.queue.snapshot()["after"] == ["j1"]
    job = store.get("j1")
    assert job.status is JobStatus.PROCESSING and job.raw_result == "raw" and job.attempts == 1
