"""The after-steps process: work that must not hold a device.

LLM polishing (``upgrade_transcribation``), callback delivery and the idle webhook. The
supervisor owns this process like a device worker and restarts it; a job it held goes
back to the ``after`` lane, and callbacks resume from the job store.
"""
from __future__ import annotations

import logging
import os
import signal
import threading

from . import callbacks, llm, logs
from .config import Settings
from .dispatch import ManagerDispatcher
from .jobs import AFTER, POLISHING
from .live import LiveClient
from .store import JobStore

log = logging.getLogger(__name__)


def holders(settings: Settings) -> list[str]:
    """The names under which this process's threads take jobs."""
    return [f"{AFTER}:{index}" for index in range(max(1, settings.llm_workers))]


class AfterWorker:
    def __init__(self, settings: Settings, client: LiveClient):
        self.settings = settings
        self.store = JobStore(settings.db_path)
        self.dispatcher = ManagerDispatcher(client)
        self.parent = os.getppid()
        self.stopping = threading.Event()

    def loop(self, holder: str) -> None:
        while not self.stopping.is_set() and os.getppid() == self.parent:
            job_id = self.dispatcher.take(holder, timeout=1.0, lane=AFTER)
            if job_id is None:
                continue
            try:
                self.polish(job_id)
            except Exception:
                log.exception("job %s: the after-step failed", job_id)
            finally:
                self.dispatcher.release(holder)

    def polish(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.stage != POLISHING:
            return
        text, error = llm.polish(job.raw_result or "", job.language, self.settings)
        self.store.complete(job_id, result=text, upgrade_error=error)
        if error:
            log.warning("job %s: polishing skipped: %s", job_id, error)
        else:
            log.info("job %s: transcript polished", job_id)


def run(settings: Settings, name: str) -> None:
    """Process entry point (spawned by the supervisor)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    client = LiveClient(settings)
    logs.setup(settings.log_level, lambda entry: client.call("state", "log", entry))
    worker = AfterWorker(settings, client)
    signal.signal(signal.SIGTERM, lambda signum, frame: worker.stopping.set())
    client.call("state", "set_device", name, pid=os.getpid(), status="idle", kind="after")
    threads = [threading.Thread(target=worker.loop, args=(holder,), name=holder)
               for holder in holders(settings)]
    threads.append(threading.Thread(target=callbacks.Callbacks(settings, worker.store).run,
                                    args=(worker.stopping,), name="callbacks"))
    if settings.idle_webhook_url:
        def publish(info: dict) -> None:
            client.call("state", "set_info", "idle_webhook", info)

        threads.append(threading.Thread(target=callbacks.IdleWebhook(settings, worker.store, publish).run,
                                        args=(worker.stopping,), name="idle-webhook"))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
