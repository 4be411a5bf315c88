"""A worker host's device worker on the distributed queue.

Celery (solo pool: one job at a time, in this process, beside the resident models) hands the
worker a job id, the URL of the API node that owns the job and that job's token. The worker
claims the job there, downloads its audio into its own data dir, runs it with the same code as
the embedded pool, and sends progress, the transcript or the error back. While it runs, a
heartbeat tells the API node the host is alive; without it the job goes to another worker.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import requests

from .config import Settings
from .distributed import QUEUE, TASK, celery_app
from .jobs import Job, JobOptions, JobStatus
from .worker import warm_up_idly

log = logging.getLogger(__name__)

RETRY_FOR = 60.0  # seconds a report keeps trying while the API node restarts
TIMEOUT = (5, 60)  # connect, read


class NodeUnreachable(Exception):
    """The job's API node did not answer: the message goes back to the queue."""


class NodeJobs:
    """One claimed job's store, as :class:`~whisper_api.worker.DeviceWorker` uses a JobStore,
    over HTTP to the job's API node."""

    def __init__(self, node: str, job_id: str, token: str, holder: str, cache_dir: Path):
        self.node = node.rstrip("/")
        self.job_id = job_id
        self.holder = holder
        self.cache_dir = cache_dir
        self.session = requests.Session()
        self.session.headers["X-Job-Token"] = token
        self.lease: str | None = None
        self.path: Path | None = None
        self.held = True  # False once the API node says the job went elsewhere
        self._stop = threading.Event()

    def _url(self, action: str) -> str:
        return f"{self.node}/internal/jobs/{self.job_id}/{action}"

    def _post(self, action: str, retry_for: float = RETRY_FOR, **data) -> requests.Response:
        deadline = time.monotonic() + retry_for
        delay = 0.5
        while True:
            try:
                response = self.session.post(self._url(action), json={"lease": self.lease, **data}, timeout=TIMEOUT)
                if response.status_code < 500 or time.monotonic() >= deadline:
                    return response
            except requests.RequestException as exc:
                if time.monotonic() >= deadline:
                    raise NodeUnreachable(f"{self.node} did not answer ({type(exc).__name__})") from None
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _ok(self, response: requests.Response, action: str) -> bool:
        if response.status_code == 409:
            self.held = False
            log.warning("job %s: %s refused: %s", self.job_id, action, _error(response))
            return False
        if response.status_code != 200:
            raise NodeUnreachable(f"{action} answered {response.status_code}: {_error(response)}")
        return True

    def claim(self, job_id: str, device: str) -> Job | None:
        response = self._post("claim", holder=self.holder)
        if response.status_code in (404, 409):
            log.info("job %s: not claimed (%s)", job_id, _error(response))
            return None  # done, running elsewhere, or deleted: this delivery is a duplicate
        if response.status_code != 200:
            raise NodeUnreachable(f"claim answered {response.status_code}: {_error(response)}")
        answer = response.json()
        self.lease = answer["lease"]
        wire = answer["job"]
        self.path = self.cache_dir / job_id
        self._download()
        threading.Thread(target=self._heartbeat, args=(float(answer.get("heartbeat") or 15),),
                         name="heartbeat", daemon=True).start()
        return Job(id=wire["id"], filename=wire["filename"], path=str(self.path), file_size=wire["file_size"],
                   options=JobOptions(**wire["options"]), status=JobStatus.PROCESSING,
                   created_at=wire["created_at"], attempts=wire["attempts"], duration=wire["duration"],
                   device=self.holder)

    def _download(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        part = self.path.with_name(self.path.name + ".part")
        with self.session.get(self._url("audio"), headers={"X-Lease": self.lease}, stream=True,
                              timeout=TIMEOUT) as response:
            if response.status_code != 200:
                raise NodeUnreachable(f"audio answered {response.status_code}: {_error(response)}")
            with open(part, "wb") as handle:
                for chunk in response.iter_content(1 << 20):
                    handle.write(chunk)
        os.replace(part, self.path)

    def _heartbeat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                if not self._ok(self._post("progress", retry_for=0), "heartbeat"):
                    return
            except NodeUnreachable as exc:
                log.warning("job %s: heartbeat failed: %s", self.job_id, exc)

    def get(self, job_id: str) -> Job | None:
        return None  # nothing is decoded ahead on a worker host: Celery hands over one job at a time

    def progress(self, job_id: str, progress: float) -> None:
        try:
            self._ok(self._post("progress", retry_for=0, progress=progress), "progress")
        except NodeUnreachable as exc:
            log.debug("job %s: progress not sent: %s", job_id, exc)

    def record_transcript(self, job_id: str, *, segments: list, text: str, language: str | None,
                          duration: float | None, then: str | None = None) -> bool:
        return self._ok(self._post("transcript", segments=segments, text=text, language=language,
                                   duration=duration, polish=then is not None), "transcript")

    def fail(self, job_id: str, error: str) -> bool:
        return self._ok(self._post("fail", error=error), "fail")

    def requeue(self, job_id: str, refund: bool = False) -> bool:
        return self._ok(self._post("requeue", why="out of GPU memory"), "requeue")

    def close(self) -> None:
        self._stop.set()
        self.session.close()
        if self.path is not None:
            for path in (self.path, self.path.with_name(self.path.name + ".part")):
                path.unlink(missing_ok=True)


def _error(response: requests.Response) -> str:
    try:
        return str(response.json().get("error"))
    except ValueError:
        return response.text[:200]


class NoDispatch:
    """A worker host's device worker queues nothing itself: its API node does."""

    def submit(self, job_id: str, lane: str = "") -> None:
        pass

    def release(self, holder: str) -> None:
        pass


def consume(worker, settings: Settings) -> None:
    """Run ``worker``'s jobs as Celery hands them over, until SIGTERM (the running job finishes)."""
    from celery.exceptions import Reject

    app = celery_app(settings)
    holder = f"{settings.host}/{worker.device}"
    cache_dir = Path(settings.data_dir) / "remote" / worker.device.replace(":", "-")
    worker.dispatcher = NoDispatch()

    @app.task(name=TASK, acks_late=True, reject_on_worker_lost=True)
    def transcribe(job_id: str, node: str, token: str) -> None:
        jobs = NodeJobs(node, job_id, token, holder, cache_dir)
        worker.store = jobs
        try:
            worker.run_job(job_id)
        except NodeUnreachable as exc:
            if jobs.lease is None:  # never claimed: another worker may reach the node later
                log.warning("job %s: %s; back to the queue", job_id, exc)
                time.sleep(2)
                raise Reject(str(exc), requeue=True) from None
            # claimed: the API node gives the job to another worker once its lease goes stale
            log.error("job %s: %s", job_id, exc)
        finally:
            jobs.close()

    parent = os.getppid()

    def watch_parent() -> None:  # the supervisor is gone: stop as if it had sent SIGTERM
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    # librosa (up_speed) compiles with numba on first use: before the first job asks for it
    threading.Thread(target=warm_up_idly, name="warm-up", daemon=True).start()
    celery_worker = app.Worker(
        hostname=f"{worker.device}@{settings.host}", pool="solo", concurrency=1, queues=[QUEUE],
        without_gossip=True, without_mingle=True, without_heartbeat=True, optimization="fair",
        prefetch_multiplier=1, loglevel=settings.log_level, quiet=True,
    )
    celery_worker.start()
