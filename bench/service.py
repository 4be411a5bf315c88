"""whisper_api under real gunicorn on a loopback port, timed from its launch, driven over HTTP."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import requests
from urllib3 import encode_multipart_formdata

from . import procs
from .bare import ROOT, EngineOptions


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def epoch(iso: str) -> float:
    """``2025-01-01T00:00:00.123Z`` -> seconds since the epoch."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Upload:
    """A multipart body encoded ahead, so a timed POST measures the server, not the encoding."""

    body: bytes
    content_type: str

    @classmethod
    def of(cls, path: Path, **fields: str) -> "Upload":
        body, content_type = encode_multipart_formdata({"file": (path.name, path.read_bytes()), **fields})
        return cls(body, content_type)


@dataclass
class Trip:
    """One job through the service; client-side spans plus the job's own server timestamps."""

    total: float  # POST sent -> status "done" seen
    upload: float  # POST sent -> task id answered
    queue: float  # job created -> a device worker claimed it (server clock)
    processing: float  # claimed -> transcript stored (server clock)
    lag: float  # transcript stored -> the client saw "done"
    segments: int


LONG_POLL = 30  # seconds a waiting status request may last (the service allows 60)
NUMBA_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "whisper_api-bench" / "numba"


def warm_numba() -> None:
    """Compile the service's librosa code into the benchmark's numba cache, as an earlier start would have."""
    code = "from whisper_api import audio\nif hasattr(audio, 'warm_up'):\n    audio.warm_up()"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "NUMBA_CACHE_DIR": str(NUMBA_CACHE)})


class Service:
    """One gunicorn master with its supervisor and workers, in a data dir of its own."""

    def __init__(self, workdir: Path, models_dir: Path, preload: str, options: EngineOptions,
                 extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = workdir / f"data-{self.port}"
        self.log_path = workdir / f"gunicorn-{self.port}.log"
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("WHISPER_API_")}
        self.settings = {
            "WHISPER_API_DATA_DIR": str(self.data_dir),
            "WHISPER_API_MODELS_DIR": str(models_dir),
            "WHISPER_API_PRELOAD_MODELS": preload,
            "WHISPER_API_DEVICES": "cuda:0" if options.device == "cuda" else "cpu",
            "WHISPER_API_CPU_WORKERS": "1",
            "WHISPER_API_CPU_THREADS": str(options.threads),
            "WHISPER_API_COMPUTE_TYPE": options.compute_type,
            "WHISPER_API_BEAM_SIZE": str(options.beam_size),
            "WHISPER_API_BIND": f"127.0.0.1:{self.port}",
            "WHISPER_API_SHUTDOWN_GRACE": "5",
            **(extra_env or {}),
        }
        # librosa's numba cache outlives restarts in production (it sits in the data dir):
        # one cache for every service, filled by ``warm_numba`` before the first.
        self.env = {**inherited, "NUMBA_CACHE_DIR": str(NUMBA_CACHE), **self.settings}
        # gunicorn >= 24 puts a control socket in $XDG_RUNTIME_DIR, else one shared path under
        # $HOME: keep each instance's own, so services started beside this one leave it alone.
        self.env["XDG_RUNTIME_DIR"] = str(self.data_dir)
        self.process: subprocess.Popen | None = None
        self.launched = 0.0
        self.resets = 0  # status polls whose kept-alive connection the server reset (then retried)

    def launch(self) -> None:
        """Start gunicorn; ``launched`` is the moment just before, on the perf_counter clock."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.launched = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def _alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({self.process.returncode}; a 'Handling signal' line means "
                               f"something else stopped it):\n{self.log_tail()}")

    def wait_answer(self, timeout: float = 120, ready: bool = False, poll: float = 0.02) -> float:
        """Seconds from launch until ``/api/health`` answers at all (or, with ``ready``, answers 200)."""
        deadline = time.monotonic() + timeout
        with requests.Session() as session:
            while time.monotonic() < deadline:
                self._alive()
                try:
                    response = session.get(self.url + "/api/health", timeout=5)
                    if not ready or response.status_code == 200:
                        return time.perf_counter() - self.launched
                except requests.RequestException:
                    pass
                time.sleep(poll)
        raise TimeoutError(f"service not {'ready' if ready else 'answering'} in {timeout}s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def post(self, session: requests.Session, upload: Upload, retry_for: float = 0.0) -> str:
        """POST an encoded upload; the task id. Retries 5xx and refused connections for ``retry_for`` s."""
        deadline = time.monotonic() + retry_for
        while True:
            try:
                response = session.post(self.url + "/api/transcribe", data=upload.body, timeout=120,
                                        headers={"Content-Type": upload.content_type})
                if response.status_code < 500 or time.monotonic() >= deadline:
                    response.raise_for_status()
                    return response.json()["task_id"]
            except requests.ConnectionError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.05)

    def wait_done(self, session: requests.Session, task_id: str, poll: float,
                  timeout: float = 1800) -> tuple[dict, float, float]:
        """Wait until the job ends; its status and when "done" was seen (perf_counter, epoch).

        ``poll`` > 0: ask every ``poll`` seconds; 0: long poll (``?wait=``), one request that the
        service answers when the job ends.
        """
        deadline = time.monotonic() + timeout
        params = {} if poll else {"wait": str(LONG_POLL)}
        while time.monotonic() < deadline:
            try:
                response = session.get(f"{self.url}/api/status/{task_id}", params=params, timeout=LONG_POLL + 30)
            except requests.ConnectionError:
                # gunicorn closes a kept-alive connection after `keepalive` (2 s) idle; a request
                # sent on it at that moment is reset. Count it, and ask again as a client would.
                self._alive()
                self.resets += 1
                continue
            seen, seen_epoch = time.perf_counter(), time.time()
            status = response.json()
            if status["status"] == "error":
                raise RuntimeError(f"job {task_id} failed: {status['error']}")
            if status["status"] == "done":
                return status, seen, seen_epoch
            time.sleep(poll)
        raise TimeoutError(f"job {task_id} not done in {timeout}s:\n{self.log_tail()}")

    def trip(self, session: requests.Session, upload: Upload, poll: float) -> Trip:
        """Upload, then poll every ``poll`` s until done: one end-to-end transcription."""
        sent = time.perf_counter()
        task_id = self.post(session, upload)
        answered = time.perf_counter()
        status, seen, seen_epoch = self.wait_done(session, task_id, poll)
        return Trip(total=seen - sent, upload=answered - sent, queue=status["queue_time"],
                    processing=status["processing_time"], lag=seen_epoch - epoch(status["completed_at"]),
                    segments=len(status["segments"] or ()))

    def health(self) -> dict:
        return requests.get(self.url + "/api/health", timeout=10).json()

    def device_pids(self) -> list[int]:
        """The device workers' pids, as ``/api/health`` lists them (the after-steps process left out)."""
        return [info["pid"] for info in self.health()["devices"].values()
                if info.get("pid") and info.get("kind") != "after"]

    def wait_idle(self, timeout: float = 300, window: float = 1.0, busy: float = 0.05) -> float:
        """Wait until the device workers use under ``busy`` of a CPU (background warm-up finished)."""
        started = time.monotonic()
        pids = self.device_pids()
        while time.monotonic() - started < timeout:
            before = [procs.cpu_seconds(pid) or 0.0 for pid in pids]
            time.sleep(window)
            after = [procs.cpu_seconds(pid) or 0.0 for pid in pids]
            if all(b - a < busy * window for a, b in zip(before, after)):
                return time.monotonic() - started
        raise TimeoutError(f"device workers {pids} still busy after {timeout}s")

    def renice_workers(self, niceness: int) -> None:
        for pid in self.device_pids():
            procs.renice(pid, niceness)

    def processes(self) -> dict[str, list[int]]:
        """The pids by role: ``master``, ``supervisor``, ``http`` workers, ``device`` workers, ``other``."""
        devices = self.device_pids()
        supervisors = {procs.parent(pid) for pid in devices} - {None}
        master = self.process.pid
        http = [pid for pid in procs.children(master)
                if pid not in supervisors and "gunicorn" in procs.cmdline(pid)]
        known = {master, *supervisors, *http, *devices}
        return {"master": [master], "supervisor": sorted(supervisors), "http": http, "device": devices,
                "other": [pid for pid in procs.session(master) if pid not in known]}

    def model_loads(self) -> tuple[float | None, str]:
        """Models loaded so far: the ``/metrics`` counter, else "loaded" lines in ``/api/logs``."""
        response = requests.get(self.url + "/metrics", timeout=10)
        if response.status_code == 200:
            found = re.search(r"^whisper_api_model_loads_total\s+(\S+)", response.text, re.M)
            if found:
                return float(found.group(1)), "GET /metrics whisper_api_model_loads_total"
        response = requests.get(self.url + "/api/logs", timeout=10)
        if response.status_code == 200:
            entries = response.json()
            entries = entries.get("logs", entries) if isinstance(entries, dict) else entries
            count = sum(1 for entry in entries if re.search(r"model \S+ loaded", entry.get("msg", "")))
            return float(count), "'model … loaded' lines in GET /api/logs"
        return None, "neither /metrics nor /api/logs answered"

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM the master; SIGKILL whatever of its session is left after ``timeout``."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        for pid in procs.session(self.process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)
        self.log.close()
