"""The supervisor: one process that owns the live state and the device workers.

gunicorn's master starts it (``start()``, from a server hook) and stops it (``stop()``);
the master reaps every child with ``waitpid(-1)``, so the device workers are children of
this process, never of the master. It restarts a dead worker and puts the job the worker
held back in the queue, at most ``max_attempts`` times.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

from . import after, cluster, gpus, logs, retention
from .config import Settings
from .exceptions import Unavailable
from .jobs import AFTER, JobStatus
from .live import JobQueue, LiveState, serve, withdraw
from .store import JobStore
from . import worker

log = logging.getLogger("whisper_api.supervisor")  # also when run as __main__

SPAWN = multiprocessing.get_context("spawn")
TICK = 0.5
GPU_INTERVAL = 2.0
SWEEP_INTERVAL = 5.0
RETENTION_INTERVAL = 600.0
RESTART_BACKOFF = (0.5, 1, 2, 5, 10, 30)
AFTER_START_DELAY = 10.0  # the after-steps start once the devices are idle, or after this


def resolve_devices(settings: Settings) -> list[str]:
    """``auto``: every CUDA GPU (asked of nvidia-smi, never of CUDA), else CPU workers."""
    spec = settings.devices.strip().lower()
    if spec == "auto":
        found = gpus.sample()
        if found:
            return [f"cuda:{gpu['id']}" for gpu in found]
        spec = "cpu"
    if spec == "cpu":
        return [f"cpu:{index}" for index in range(max(1, settings.cpu_workers))]
    devices = [item.strip() for item in spec.split(",") if item.strip()]
    for device in devices:
        kind, _, index = device.partition(":")
        if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
            raise ValueError(f"WHISPER_API_DEVICES: {device!r} is not 'cpu', 'cuda:N' or 'auto'")
    return [device if ":" in device else f"{device}:0" for device in devices]


@dataclass
class Slot:
    """One supervised process: a device worker, or the after-steps process."""

    name: str
    target: Callable
    holders: list[str]  # the names under which the process takes jobs from the queue
    process: multiprocessing.Process | None = None
    restarts: int = 0
    next_start: float = 0.0
    started: float = 0.0

    @property
    def is_device(self) -> bool:
        return self.target is worker.run


def on_worker_host(job) -> bool:
    """A processing job a worker host holds (its device is named ``host/device``), not yet at
    an after-step, which runs on the API node."""
    return job.stage is None and "/" in (job.device or "")


SERVICE, WORKER_HOST = "service", "worker"  # the roles: an API node (or the one machine), a worker host


class Supervisor:
    """``role`` ``service``: the job store, the after-steps and, unless the queue is distributed,
    the device workers. ``worker``: a worker host's device workers alone, fed by Celery."""

    def __init__(self, settings: Settings, parent_pid: int | None = None, role: str = SERVICE):
        self.settings = settings
        self.parent_pid = parent_pid
        self.role = role
        self.store = JobStore(settings.db_path) if role == SERVICE else None
        self.queue = JobQueue()
        self.state = LiveState()
        self.slots = []
        if role == WORKER_HOST or not settings.distributed:
            self.slots = [Slot(device, worker.run, worker.holders(settings, device))
                          for device in resolve_devices(settings)]
        if role == SERVICE:
            self.slots.append(Slot(AFTER, after.run, after.holders(settings)))
        self.remote = None  # the distributed queue, on an API node
        if role == SERVICE and settings.distributed:
            from .distributed import CeleryDispatcher

            self.remote = CeleryDispatcher(settings)
        self.unsent: set[str] = set()  # jobs Redis could not take yet (it was down)
        self.stopping = False

    def put(self, job_id: str) -> None:
        """Queue a job for the devices: here, or on the worker hosts through Redis."""
        if self.remote is None:
            self.queue.put(job_id)
            return
        try:
            self.remote.submit(job_id)
            self.unsent.discard(job_id)
        except Unavailable as exc:
            if job_id not in self.unsent:
                log.warning("job %s waits for Redis: %s", job_id, exc.message)
            self.unsent.add(job_id)

    def run(self) -> None:
        serve(self.settings, self.queue, self.state)
        if self.store is not None:
            self.recover_all()
        started = time.monotonic()
        for slot in self.slots:
            if slot.is_device:
                self.start_worker(slot)
            else:  # the after-steps wait until the devices are up and idle (or AFTER_START_DELAY):
                # a cold start's CPU goes to loading the models and to the first jobs
                slot.next_start = started + AFTER_START_DELAY
        due = {"gpu": 0.0, "sweep": time.monotonic() + SWEEP_INTERVAL, "retention": 0.0, "publish": 0.0}
        try:
            while not self.stopping and self._parent_alive():
                now = time.monotonic()
                running = self.queue.snapshot()["running"]
                for slot in self.slots:
                    if self.store is not None:
                        self.enforce_timeout(slot, running.get(slot.name))
                    self.check(slot, now)
                if now >= due["gpu"]:
                    self.state.set_gpus(gpus.sample())
                    due["gpu"] = now + GPU_INTERVAL
                if self.role == WORKER_HOST and now >= due["publish"]:
                    self.publish()
                    due["publish"] = now + cluster.PUBLISH_INTERVAL
                if self.store is not None and now >= due["sweep"]:
                    self.sweep()
                    due["sweep"] = now + SWEEP_INTERVAL
                if self.store is not None and now >= due["retention"]:
                    retention.clean(self.settings, self.store)
                    due["retention"] = now + RETENTION_INTERVAL
                time.sleep(TICK)
        finally:
            self.shutdown()

    def publish(self) -> None:
        """A worker host's devices, models, GPUs and log, for the API nodes' views."""
        try:
            cluster.publish(self.settings, self.state.snapshot(), self.state.logs())
        except Exception as exc:  # Redis down: the views miss this host until it is back
            log.debug("could not publish to Redis: %s", exc)

    def _parent_alive(self) -> bool:
        return self.parent_pid is None or os.getppid() == self.parent_pid

    def start_worker(self, slot: Slot) -> None:
        process = SPAWN.Process(target=slot.target, args=(self.settings, slot.name),
                                name=f"worker-{slot.name}", daemon=False)
        process.start()
        slot.process = process
        slot.started = time.monotonic()
        if slot.is_device:
            self.state.set_device(slot.name, pid=process.pid, status="starting", job=None,
                                  restarts=slot.restarts)
        log.info("%s: worker started (pid %d)", slot.name, process.pid)

    def devices_idle(self) -> bool:
        """Every device worker is up and waiting for a job."""
        devices = self.state.snapshot()["devices"]
        return all(devices.get(slot.name, {}).get("status") == "idle" for slot in self.slots if slot.is_device)

    def check(self, slot: Slot, now: float) -> None:
        """Restart ``slot``'s worker if it died, after recovering the job it held."""
        if slot.process is not None:
            if slot.process.is_alive():
                if now - slot.started > 60:
                    slot.restarts = 0  # it has been healthy for a while
                return
            code = slot.process.exitcode
            slot.process.join()
            slot.process = None
            log.warning("%s: worker died (exit code %s)", slot.name, code)
            if slot.is_device:
                self.state.set_device(slot.name, status="restarting", job=None, pid=None)
                self.state.forget_models(slot.name)
            self.state.count("worker_restarts")
            for holder in slot.holders:
                job_id = self.queue.release(holder)
                if job_id:
                    self.recover(job_id, f"its worker on {slot.name} died (exit code {code})")
            slot.next_start = now + RESTART_BACKOFF[min(slot.restarts, len(RESTART_BACKOFF) - 1)]
            slot.restarts += 1
        if slot.process is None and not slot.is_device and not slot.restarts and self.devices_idle():
            slot.next_start = min(slot.next_start, now)  # first start: the devices are up and idle
        if now >= slot.next_start:
            self.start_worker(slot)

    def time_limit(self, job) -> float:
        """Seconds ``job`` may run: base + factor × its audio duration."""
        return self.settings.job_timeout_base + self.settings.job_timeout_factor * (job.duration or 0)

    def enforce_timeout(self, slot: Slot, job_id: str | None) -> None:
        """End a job that ran past its time limit, and replace the worker stuck in it."""
        if not job_id or not slot.is_device or slot.process is None:
            return
        job = self.store.get(job_id)
        if job is None or job.status is not JobStatus.PROCESSING or job.stage or not job.started_at:
            return
        limit = self.time_limit(job)
        if time.time() - job.started_at <= limit:
            return
        self.store.fail(job_id, f"timeout: the job ran longer than {limit:.0f}s "
                                f"(limit for {job.duration or 0:.0f}s of audio)")
        log.error("%s: job %s timed out after %.0fs; replacing the worker", slot.name, job_id, limit)
        slot.process.kill()

    def recover(self, job_id: str, why: str) -> None:
        """Queue an interrupted job again, or end it once it has used its attempts."""
        job = self.store.get(job_id)
        if job is None or job.status.finished:
            return
        if job.stage is not None:
            self.queue.put(job_id, lane=AFTER)  # transcribed already: only the after-step is redone
            return
        if job.status is JobStatus.PROCESSING:
            if job.attempts >= self.settings.max_attempts:
                self.store.fail(job_id, f"gave up after {job.attempts} attempts: {why}")
                log.error("job %s failed: %s, %d attempts", job_id, why, job.attempts)
                return
            self.store.requeue(job_id)
            log.warning("job %s queued again (attempt %d of %d done): %s", job_id, job.attempts,
                        self.settings.max_attempts, why)
        self.put(job_id)

    def recover_all(self) -> None:
        """At start: every job a previous run left unfinished goes back in the queue.

        A job a worker host holds runs on there: it is given to another worker only if that host
        stops reporting. Queued jobs are sent to Redis again; a second delivery of one finds it
        claimed and is dropped.
        """
        held_elsewhere = 0
        for job in self.store.by_status(JobStatus.PROCESSING):
            if self.remote is not None and on_worker_host(job):
                held_elsewhere += 1
                continue
            self.recover(job.id, "the service stopped while it ran")
        if held_elsewhere:
            log.info("%d jobs run on worker hosts", held_elsewhere)
        queued = self.store.by_status(JobStatus.QUEUED)
        for job in queued:
            self.put(job.id)
        if queued:
            log.info("%d queued jobs taken up again", len(queued))

    def sweep(self) -> None:
        """Find jobs the queue lost sight of (an enqueue that failed, a lost hand-over)."""
        if self.remote is not None:
            self.sweep_remote()
        cutoff = time.time() - SWEEP_INTERVAL
        stale = [job for status in (JobStatus.QUEUED, JobStatus.PROCESSING)
                 for job in self.store.by_status(status) if job.created_at < cutoff
                 and (self.remote is None or job.stage is not None)]  # Redis holds the device lane
        if not stale:
            return
        snapshot = self.queue.snapshot()
        known = set(snapshot["queued"]) | set(snapshot["after"]) | set(snapshot["running"].values())
        for job in stale:
            if job.id in known:
                continue
            current = self.store.get(job.id)  # re-read: it may have finished meanwhile
            if current is not None and not current.status.finished:
                self.recover(job.id, "it was not held by any worker")

    def sweep_remote(self) -> None:
        """On an API node: jobs whose worker host went silent, or that ran past their time
        limit, and jobs Redis could not take while it was down."""
        now = time.time()
        for job in self.store.stale_remote(now - self.settings.remote_timeout):
            self.recover(job.id, f"its worker host ({job.device}) stopped reporting")
        for job in self.store.by_status(JobStatus.PROCESSING):
            limit = self.time_limit(job)
            if on_worker_host(job) and job.started_at and now - job.started_at > limit:
                self.store.fail(job.id, f"timeout: the job ran longer than {limit:.0f}s on {job.device}")
                log.error("job %s timed out on %s after %.0fs", job.id, job.device, limit)
        for job_id in list(self.unsent):
            job = self.store.get(job_id)
            if job is None or job.status is not JobStatus.QUEUED:
                self.unsent.discard(job_id)
            else:
                self.put(job_id)

    def shutdown(self) -> None:
        """Let running jobs finish within the grace period, then stop every worker."""
        withdraw(self.settings)
        alive = [slot for slot in self.slots if slot.process is not None and slot.process.is_alive()]
        for slot in alive:
            slot.process.terminate()
        deadline = time.monotonic() + self.settings.shutdown_grace
        for slot in alive:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                log.warning("%s: worker did not stop in %.0fs; killing it", slot.name,
                            self.settings.shutdown_grace)
                slot.process.kill()
                slot.process.join()
                for holder in slot.holders:
                    job_id = self.queue.release(holder)
                    if job_id and self.store is not None and self.store.requeue(job_id, refund=True):
                        log.info("job %s will run again at the next start", job_id)
        if self.role == WORKER_HOST:
            cluster.withdraw(self.settings)
        log.info("supervisor stopped")


def main(argv: list[str] | None = None) -> int:
    """``python -m whisper_api.supervisor``: run the worker pool with ``WHISPER_API_*`` settings."""
    parser = argparse.ArgumentParser(prog="python -m whisper_api.supervisor", description=main.__doc__)
    parser.add_argument("--parent", type=int, default=None,
                        help="stop when this process (gunicorn's master) is gone")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master forwards the stop as SIGTERM
    settings = Settings.from_env()
    supervisor = Supervisor(settings, args.parent)
    logs.setup(settings.log_level, supervisor.state.log)

    def stop(signum, frame):
        supervisor.stopping = True

    signal.signal(signal.SIGTERM, stop)
    log.info("supervisor started (pid %d) for %s", os.getpid(),
             ", ".join(slot.name for slot in supervisor.slots if slot.is_device))
    supervisor.run()
    return 0


class Handle:
    """The master's side: start the supervisor, restart it if it dies, stop it.

    The supervisor is a plain child process (not ``multiprocessing``), so the HTTP workers
    the master forks inherit nothing that would try to join it, and a supervisor reaped by
    gunicorn's ``waitpid(-1)`` simply reads as exited.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.process: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def _spawn(self) -> None:
        # Not ``-m whisper_api.supervisor``: each spawned worker would import that main module
        # again before its own (0.2 s of a cold start's CPU).
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from whisper_api.supervisor import main; sys.exit(main())",
             "--parent", str(os.getpid())])

    def start(self) -> None:
        with self._lock:
            self._spawn()
        threading.Thread(target=self._watch, name="supervisor-watch", daemon=True).start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            with self._lock:
                if self._stopping.is_set() or self.alive():
                    continue
                log.error("the supervisor (pid %s) died; starting a new one", self.process.pid)
                self._spawn()

    def stop(self) -> None:
        """SIGTERM the supervisor and wait until it has stopped its workers."""
        self._stopping.set()
        with self._lock:
            if not self.alive():
                return
            self.process.terminate()
            try:
                self.process.wait(self.settings.shutdown_grace + 10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


if __name__ == "__main__":
    sys.exit(main())
