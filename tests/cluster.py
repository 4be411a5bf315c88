"""Helpers for the distributed-queue tests: a real redis-server and worker hosts on this machine."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from conftest import ROOT, Service, free_port


class RedisServer:
    """redis-server on a loopback port, with an append-only file as production should have."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return self
            except redis.RedisError:
                time.sleep(0.1)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


class WorkerHost:
    """``python -m whisper_api worker``: one simulated GPU host (here with one CPU worker)."""

    def __init__(self, name: str, folder: Path, models_dir: Path, queue_url: str, **env: str):
        self.name = name
        self.log_path = folder / f"{name}.log"
        self.env = {
            **os.environ,
            "WHISPER_API_QUEUE_URL": queue_url,
            "WHISPER_API_HOST_NAME": name,
            "WHISPER_API_DATA_DIR": str(folder / name),
            "WHISPER_API_MODELS_DIR": str(models_dir),
            "WHISPER_API_PRELOAD_MODELS": "tiny.en",
            "WHISPER_API_DEVICES": "cpu",
            "WHISPER_API_CPU_WORKERS": "1",
            "WHISPER_API_CPU_THREADS": "1",
            "WHISPER_API_SHUTDOWN_GRACE": "5",
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "WorkerHost":
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "whisper_api", "worker"], cwd=ROOT, env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self) -> None:
        """Every process of the host at once, as a power cut would."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        with_suppressed(os.killpg, self.process.pid, signal.SIGKILL)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def with_suppressed(call, *args) -> None:
    try:
        call(*args)
    except (ProcessLookupError, PermissionError):
        pass


def devices(node: Service) -> set[str]:
    """Devices of the cluster that are up, as the API node's /api/health shows them."""
    try:
        found = node.get("/api/health").json()["devices"]
    except (requests.RequestException, ValueError):
        return set()
    return {name for name, info in found.items() if info.get("status") in ("idle", "busy")}


def wait_for(condition, timeout: float, message=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError(message())
