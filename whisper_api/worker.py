"""The device worker: one spawned process per device, owning that device's models.

Initialize (connect, load the preload models), loop (take a job, run it, record the
outcome), shut down (finish the running job, then exit). A failed job is recorded as
``error`` and the loop goes on; only a crash of the process itself stops it, and the
supervisor then puts the job back in the queue.
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from concurrent.futures import Future

from .config import Settings
from .dispatch import ManagerDispatcher
from .exceptions import JobFailed
from .jobs import AFTER, POLISHING
from .live import LiveClient
from .store import JobStore
from . import audio, logs

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 1.0  # seconds between progress writes to the store
OOM_ATTEMPTS = 2  # a job that runs out of GPU memory is tried once more in a fresh worker
OOM_EXIT = 75
AHEAD = "+next"  # the holder name of a job taken and decoded ahead
# On the CPU the engine's threads take every core; at this niceness the HTTP workers still
# answer at once, and the engine loses only what they use.
CPU_NICE = 10
IDLE_NICE = 19  # the lowest priority: background work that waits behind any job


class DeviceWorker:
    def __init__(self, settings: Settings, device: str, client: LiveClient):
        from .engine import Engine  # heavy: only device workers import the engine

        self.settings = settings
        self.device = device
        self.client = client
        self.dispatcher = ManagerDispatcher(self.client)
        # on a worker host each job brings its own store: its API node, over HTTP (remote.py)
        self.store = None if settings.distributed else JobStore(settings.db_path)
        self.engine = Engine(settings, device, on_status=self._model_status)
        self.parent = os.getppid()
        self.stopping = False

    def _model_status(self, model: str, status: str) -> None:
        self.client.call("state", "set_model", self.device, model, status)
        if status == "loaded":
            self.client.call("state", "count", "model_loads")

    def _state(self, **fields) -> None:
        self.client.call("state", "set_device", self.device, **fields)

    def initialize(self) -> None:
        self._state(pid=os.getpid(), status="loading", job=None)
        for name in self.settings.preload_models:
            try:
                self.engine.load(name)
            except JobFailed:
                pass  # logged and shown in model status; a job naming it gets the error
        self._state(status="idle", since=time.time())

    def loop(self) -> None:
        prefetcher = Prefetcher(self) if prefetching(self.settings, self.device) else None
        warmed = False
        while not self.stopping and os.getppid() == self.parent:
            if prefetcher:
                job_id, decoded = prefetcher.next(timeout=1.0)
            else:
                job_id, decoded = self.dispatcher.take(self.device, timeout=1.0), None
            if job_id is None:
                if not warmed:
                    # librosa (up_speed) compiles with numba on first use: do it in the first idle
                    # moment, where it takes no CPU from a job (and a cold start's first job).
                    warmed = True
                    threading.Thread(target=warm_up_idly, name="warm-up", daemon=True).start()
                continue
            try:
                after_step = self.run_job(job_id, decoded)
            finally:
                self.dispatcher.release(self.device)
            if after_step:
                self.dispatcher.submit(job_id, lane=AFTER)

    def run_job(self, job_id: str, decoded: Future | None = None) -> bool:
        """Run one job (``decoded``: its audio, if decoded ahead); True when it goes on to the
        after-step (LLM polishing)."""
        job = self.store.claim(job_id, self.device)
        if job is None:
            return False  # finished or taken by another device meanwhile
        self._state(status="busy", job=job_id, since=time.time())
        log.info("%s: job %s started (attempt %d, model %s)", self.device, job_id, job.attempts,
                 job.options.model_name)
        last = [0.0]

        def on_progress(percent: float) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL:
                last[0] = now
                self.store.progress(job_id, round(percent, 1))

        started = time.monotonic()
        try:
            transcript = self.engine.transcribe(job, on_progress, decoded.result() if decoded else None)
        except JobFailed as exc:
            self._fail(job_id, str(exc))
            return False
        except Exception as exc:
            if self.device.startswith("cuda") and "out of memory" in str(exc).lower():
                self._out_of_memory(job, exc)
            log.exception("%s: job %s failed", self.device, job_id)
            self._fail(job_id, f"transcription failed: {exc}")
            return False
        finally:
            self._state(status="idle", job=None, since=time.time())
        polish = job.options.upgrade_transcribation
        self.store.record_transcript(job_id, segments=transcript.segments, text=transcript.text,
                                     language=transcript.language, duration=transcript.duration,
                                     then=POLISHING if polish else None)
        elapsed = time.monotonic() - started
        self.client.call("state", "count", "jobs_done")
        self.client.call("state", "count", "audio_seconds", transcript.duration)
        self.client.call("state", "observe", "processing_seconds", elapsed)
        batch = self.engine.batch_size(job)
        log.info("%s: job %s transcribed in %.1fs (%.1fs of audio, %s)", self.device, job_id,
                 elapsed, transcript.duration, f"batch {batch}" if batch else "sequential")
        return polish

    def _out_of_memory(self, job, exc: Exception) -> None:
        """GPU memory ran out: retry the job once in a fresh worker, whose memory starts clean."""
        if job.attempts >= OOM_ATTEMPTS:
            self._fail(job.id, f"out of GPU memory on {self.device} in {job.attempts} attempts: {exc}")
        else:
            log.warning("%s: out of memory on job %s; retrying it in a fresh worker", self.device, job.id)
            self.store.requeue(job.id)
            self.dispatcher.release(self.device)  # a held job cannot be queued
            self.dispatcher.submit(job.id)
        raise SystemExit(OOM_EXIT)

    def _fail(self, job_id: str, message: str) -> None:
        self.store.fail(job_id, message)
        self.client.call("state", "count", "jobs_failed")
        log.warning("%s: job %s ended with error: %s", self.device, job_id, message)


def prefetching(settings: Settings, device: str) -> bool:
    """Whether ``device``'s worker decodes the next job while one runs (``auto``: on CUDA)."""
    if settings.prefetch == "auto":
        return device.startswith("cuda")
    return settings.prefetch == "on"


def holders(settings: Settings, device: str) -> list[str]:
    """The names under which ``device``'s worker holds jobs taken from the queue."""
    return [device, device + AHEAD] if prefetching(settings, device) else [device]


class Prefetcher:
    """Takes the next job and decodes its audio while the device runs the current one.

    It holds that job under its own name until the device takes it over, so the supervisor
    sees it if the worker dies; the job stays ``queued`` in the store until the device claims it.
    """

    def __init__(self, worker: DeviceWorker):
        self.worker = worker
        self.holder = worker.device + AHEAD
        self.ready: queue.Queue = queue.Queue(maxsize=1)
        self.taken = threading.Event()
        threading.Thread(target=self._run, name="prefetch", daemon=True).start()

    def _run(self) -> None:
        worker = self.worker
        while not worker.stopping:
            job_id = worker.dispatcher.take(self.holder, timeout=1.0)
            if job_id is None:
                continue
            job = worker.store.get(job_id)
            decoded: Future = Future()
            try:
                decoded.set_result(worker.engine.decode(job) if job else [])
                log.info("%s: job %s decoded ahead", worker.device, job_id)
            except Exception as exc:  # the device claims the job and records the error
                decoded.set_exception(exc)
            self.ready.put((job_id, decoded))
            self.taken.wait()
            self.taken.clear()

    def next(self, timeout: float) -> tuple[str | None, Future | None]:
        """The next job id and its decoded audio, or ``(None, None)`` after ``timeout``."""
        try:
            job_id, decoded = self.ready.get(timeout=timeout)
        except queue.Empty:
            return None, None
        self.worker.dispatcher.hand_over(self.holder, self.worker.device)
        self.taken.set()
        return job_id, decoded


def warm_up_idly() -> None:
    """``audio.warm_up`` at the lowest CPU priority (Linux keeps one per thread), so that a job
    arriving meanwhile loses less of the cores to it (it still shares the GIL)."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), IDLE_NICE)
    audio.warm_up()


def niceness(settings: Settings, device: str) -> int:
    """How much nicer than the service ``device``'s worker runs: ``worker_nice``, by default
    10 on the CPU and 0 on CUDA."""
    if settings.worker_nice >= 0:
        return settings.worker_nice
    return 0 if device.startswith("cuda") else CPU_NICE


def lower_priority(settings: Settings, device: str) -> None:
    """Add this worker's niceness to the one it inherited, before the process starts a thread:
    Linux keeps a nice value per thread, and new threads take their creator's."""
    increment = niceness(settings, device)
    if increment:
        os.nice(increment)


def run(settings: Settings, device: str) -> None:
    """Process entry point (spawned by the supervisor)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops us
    # numba reads this once, on import: a cache in the data dir survives restarts.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(settings.data_dir / "cache" / "numba"))
    client = LiveClient(settings)
    logs.setup(settings.log_level, lambda entry: client.call("state", "log", entry))
    lower_priority(settings, device)  # no thread runs yet: every later one inherits it
    worker = DeviceWorker(settings, device, client)

    def stop(signum, frame):
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    worker.initialize()
    log.info("%s: worker ready (pid %d)", device, os.getpid())
    if settings.distributed:
        from . import remote

        remote.consume(worker, settings)
    else:
        worker.loop()
    log.info("%s: worker stopped", device)
