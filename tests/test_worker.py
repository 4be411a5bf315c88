"""The device worker's CPU priorities: the worker below the web side, its warm-up below its jobs."""
import os
import threading
from pathlib import Path

from whisper_api import worker
from whisper_api.config import Settings


def test_cpu_workers_are_nicer_than_the_service_by_default():
    assert worker.niceness(Settings(), "cpu:0") == 10 and worker.niceness(Settings(), "cuda:0") == 0
    assert worker.niceness(Settings(worker_nice=0), "cpu:0") == 0
    assert worker.niceness(Settings(worker_nice=5), "cuda:1") == 5


def test_the_warm_up_runs_at_the_lowest_priority(monkeypatch):
    seen = []

    def warm_up():
        stat = Path(f"/proc/self/task/{threading.get_native_id()}/stat").read_text()
        seen.append(int(stat.rsplit(")", 1)[1].split()[16]))  # field 19: the nice value

    monkeypatch.setattr(worker.audio, "warm_up", warm_up)
    thread = threading.Thread(target=worker.warm_up_idly)
    thread.start()
    thread.join()
    assert seen == [19]
    assert os.getpriority(os.PRIO_PROCESS, 0) < 19  # the rest of the process keeps its own
