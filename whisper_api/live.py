"""Live, in-memory state shared through a ``multiprocessing`` manager.

The supervisor hosts one :class:`JobQueue` and one :class:`LiveState` in a manager
server on loopback; HTTP and device workers reach them through proxies, by the address
and the per-start authkey the supervisor writes to ``run/manager.json`` (mode 0600).
Durable facts live in the job store; this holds what is only true while the service runs.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from multiprocessing import AuthenticationError
from multiprocessing.managers import BaseManager
from pathlib import Path

from .config import Settings
from .jobs import AFTER, DEVICE, LANES

log = logging.getLogger(__name__)

LOG_SIZE = 200
HISTOGRAM_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))
MANAGER_FILE = "manager.json"
CONNECTION_ERRORS = (ConnectionError, EOFError, OSError, AuthenticationError)


class JobQueue:
    """FIFO lanes of job ids plus the job each holder has taken, so no job goes unseen.

    Lane ``device`` feeds the device workers, lane ``after`` the after-steps (LLM polish).
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._lanes: dict[str, deque[str]] = {lane: deque() for lane in LANES}
        self._running: dict[str, str] = {}

    def put(self, job_id: str, lane: str = DEVICE) -> bool:
        """Queue ``job_id`` unless it is already queued or held."""
        with self._cond:
            if job_id in self._running.values() or any(job_id in items for items in self._lanes.values()):
                return False
            self._lanes[lane].append(job_id)
            self._cond.notify_all()
            return True

    def take(self, holder: str, timeout: float, lane: str = DEVICE) -> str | None:
        """Wait up to ``timeout`` s for a job; it stays recorded as ``holder``'s until release."""
        items = self._lanes[lane]
        with self._cond:
            if not self._cond.wait_for(lambda: items, timeout):
                return None
            job_id = items.popleft()
            self._running[holder] = job_id
            return job_id

    def release(self, holder: str) -> str | None:
        """Forget the job ``holder`` held; returns it."""
        with self._cond:
            return self._running.pop(holder, None)

    def hand_over(self, giver: str, taker: str) -> str | None:
        """The job ``giver`` holds is ``taker``'s from now on."""
        with self._cond:
            job_id = self._running.pop(giver, None)
            if job_id is not None:
                self._running[taker] = job_id
            return job_id

    def snapshot(self) -> dict:
        with self._cond:
            return {"queued": list(self._lanes[DEVICE]), "after": list(self._lanes[AFTER]),
                    "running": dict(self._running)}


class LiveState:
    """Device workers, model status, GPU stats and the log ring, behind one lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self._devices: dict[str, dict] = {}
        self._models: dict[str, dict[str, str]] = {}
        self._gpus: list[dict] = []
        self._logs: deque[dict] = deque(maxlen=LOG_SIZE)
        self._counters: dict[str, float] = {}
        self._histograms: dict[str, dict] = {}
        self._info: dict[str, object] = {}

    def set_device(self, device: str, **fields) -> None:
        with self._lock:
            self._devices.setdefault(device, {"device": device}).update(fields)

    def set_model(self, device: str, model: str, status: str) -> None:
        with self._lock:
            self._models.setdefault(device, {})[model] = status

    def forget_models(self, device: str) -> None:
        """A dead worker's models are gone with it."""
        with self._lock:
            self._models.pop(device, None)

    def set_gpus(self, gpus: list[dict]) -> None:
        with self._lock:
            self._gpus = list(gpus)

    def count(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + amount

    def observe(self, name: str, value: float) -> None:
        """Add ``value`` to histogram ``name`` (cumulative buckets, Prometheus style)."""
        with self._lock:
            histogram = self._histograms.setdefault(
                name, {"buckets": {bound: 0 for bound in HISTOGRAM_BUCKETS}, "sum": 0.0, "count": 0})
            for bound in HISTOGRAM_BUCKETS:
                if value <= bound:
                    histogram["buckets"][bound] += 1
            histogram["sum"] += value
            histogram["count"] += 1

    def set_info(self, key: str, value) -> None:
        """Publish a small piece of service state (e.g. the idle webhook's timer)."""
        with self._lock:
            self._info[key] = value

    def log(self, entry: dict) -> None:
        with self._lock:
            self._logs.append(entry)

    def logs(self) -> list[dict]:
        with self._lock:
            return list(self._logs)

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "devices": {name: dict(info) for name, info in self._devices.items()},
                "models": {name: dict(models) for name, models in self._models.items()},
                "gpus": list(self._gpus),
                "counters": dict(self._counters),
                "histograms": {name: {"buckets": dict(h["buckets"]), "sum": h["sum"], "count": h["count"]}
                               for name, h in self._histograms.items()},
                "info": dict(self._info),
            }


class _ClientManager(BaseManager):
    pass


_ClientManager.register("queue")
_ClientManager.register("state")


def serve(settings: Settings, queue: JobQueue, state: LiveState) -> threading.Thread:
    """Serve ``queue`` and ``state`` on a loopback port from a thread of this process."""

    class _ServerManager(BaseManager):
        pass

    _ServerManager.register("queue", callable=lambda: queue)
    _ServerManager.register("state", callable=lambda: state)
    authkey = secrets.token_bytes(32)
    server = _ServerManager(address=("127.0.0.1", 0), authkey=authkey).get_server()
    thread = threading.Thread(target=server.serve_forever, name="manager", daemon=True)
    thread.start()
    _write_connection(settings.run_dir / MANAGER_FILE, server.address, authkey)
    log.info("live state served on %s:%d", *server.address)
    return thread


def _write_connection(path: Path, address: tuple[str, int], authkey: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"host": address[0], "port": address[1], "authkey": authkey.hex()}, out)
    os.replace(tmp, path)


def withdraw(settings: Settings) -> None:
    """Remove the connection file so no client dials a stopped service."""
    (settings.run_dir / MANAGER_FILE).unlink(missing_ok=True)


class LiveClient:
    """Lazily connected proxies to the supervisor's queue and state, reconnecting after restarts."""

    def __init__(self, settings: Settings, wait: float = 10.0):
        self.settings = settings
        self.wait = wait
        self._lock = threading.Lock()
        self._proxies: dict | None = None

    def _connect(self) -> dict:
        path = self.settings.run_dir / MANAGER_FILE
        deadline = time.monotonic() + self.wait
        while True:
            try:
                info = json.loads(path.read_text())
                manager = _ClientManager(address=(info["host"], info["port"]),
                                         authkey=bytes.fromhex(info["authkey"]))
                manager.connect()
                return {"queue": manager.queue(), "state": manager.state()}
            except (*CONNECTION_ERRORS, ValueError, KeyError) as exc:
                if time.monotonic() >= deadline:
                    raise ConnectionError(f"the worker pool is not reachable: {exc}") from None
                time.sleep(0.1)

    def call(self, target: str, method: str, *args, **kwargs):
        """Call ``method`` on the ``queue`` or ``state`` proxy, reconnecting once if it broke."""
        for attempt in (1, 2):
            with self._lock:
                if self._proxies is None:
                    self._proxies = self._connect()
                proxy = self._proxies[target]
            try:
                return getattr(proxy, method)(*args, **kwargs)
            except CONNECTION_ERRORS:
                with self._lock:
                    self._proxies = None
                if attempt == 2:
                    raise
