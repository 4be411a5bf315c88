import threading
import time

from whisper_api.jobs import Job, JobOptions, JobStatus
from whisper_api.store import JobStore


def make_job(store: JobStore, job_id: str = "j1") -> Job:
    job = Job(id=job_id, filename="a.mp3", path="/tmp/a.mp3", file_size=3,
              options=JobOptions(model_name="tiny.en", split_roads="2,A,B"), created_at=time.time())
    store.add(job)
    return job


def test_lifecycle(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    make_job(store)
    claimed = store.claim("j1", "cpu:0")
    assert claimed.status is JobStatus.PROCESSING and claimed.attempts == 1 and claimed.device == "cpu:0"
    assert claimed.options.roads.roles == ("A", "B")
    assert store.claim("j1", "cpu:1") is None  # only one device gets it
    store.progress("j1", 40)
    assert store.get("j1").progress == 40
    segments = [{"start": 0.0, "end": 1.0, "text": "Привет", "words": []}]
    assert store.record_transcript("j1", segments=segments, text="[00:00] Привет", language="ru",
                                   duration=1.0)
    done = store.get("j1")
    assert done.status is JobStatus.DONE and done.segments == segments and done.progress == 100
    assert done.result == done.raw_result == "[00:00] Привет" and done.stage is None
    assert not store.fail("j1", "late")  # a finished job keeps its result
    assert not store.record_transcript("j1", segments=[], text="again", language=None, duration=None)
    assert not store.complete("j1", result="again")
    assert store.get("j1").result == "[00:00] Привет"


def test_after_step(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    make_job(store)
    store.claim("j1", "cpu:0")
    assert store.record_transcript("j1", segments=[], text="raw", language="en", duration=1.0,
                                   then="polishing")
    waiting = store.get("j1")
    assert waiting.status is JobStatus.PROCESSING and waiting.stage == "polishing"
    assert waiting.result is None and waiting.raw_result == "raw" and waiting.completed_at is None
    assert store.complete("j1", result="polished", upgrade_error=None)
    done = store.get("j1")
    assert (done.status, done.stage, done.result, done.raw_result) == (JobStatus.DONE, None, "polished", "raw")


def test_requeue_and_refund(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    make_job(store)
    store.claim("j1", "cpu:0")
    assert store.requeue("j1")
    assert store.get("j1").status is JobStatus.QUEUED and store.get("j1").attempts == 1
    store.claim("j1", "cpu:0")
    assert store.requeue("j1", refund=True)
    assert store.get("j1").attempts == 1
    assert not store.requeue("j1")  # only processing jobs go back


def test_a_job_is_claimed_once_under_contention(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    for index in range(20):
        make_job(store, f"j{index}")
    winners: dict[str, list[str]] = {}

    def claim_all(device: str):
        own = JobStore(path)
        for index in range(20):
            if own.claim(f"j{index}", device):
                winners.setdefault(f"j{index}", []).append(device)

    threads = [threading.Thread(target=claim_all, args=(f"cpu:{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(winners) == sorted(f"j{index}" for index in range(20))
    assert all(len(devices) == 1 for devices in winners.values())


def test_a_worker_hosts_lease_ends_when_its_job_is_given_to_another(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    make_job(store)
    job, lease = store.claim_remote("j1", "host-a/cuda:0")
    assert job.status is JobStatus.PROCESSING and job.device == "host-a/cuda:0" and job.attempts == 1
    assert store.claim_remote("j1", "host-b/cuda:0") is None  # a second delivery runs nothing
    assert store.holds("j1", lease) and not store.holds("j1", "forged")
    assert store.heartbeat("j1", lease, 30.0) and store.get("j1").progress == 30
    assert store.stale_remote(time.time() - 60) == []
    assert [stale.id for stale in store.stale_remote(time.time() + 1)] == ["j1"]

    assert store.requeue("j1")  # host-a went silent: the API node queues the job again
    assert not store.holds("j1", lease) and not store.heartbeat("j1", lease)
    job, second = store.claim_remote("j1", "host-b/cuda:0")
    assert job.attempts == 2 and second != lease
    # host-a comes back with its result: refused; host-b's is the one stored
    assert not store.record_transcript("j1", segments=[], text="late", language="en", duration=1.0, lease=lease)
    assert not store.fail("j1", "late", lease=lease)
    assert store.record_transcript("j1", segments=[], text="right", language="en", duration=1.0, lease=second)
    assert store.get("j1").result == "right" and store.stale_remote(time.time() + 1) == []
