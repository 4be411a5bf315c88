"""How jobs travel from the HTTP workers to the device workers.

Handlers and device workers only see :class:`Dispatcher`; the manager-hosted queue is
the one implementation today, and a distributed queue can take its place later.
"""
from __future__ import annotations

from typing import Protocol

from .live import LiveClient


class Dispatcher(Protocol):
    def submit(self, job_id: str) -> None:
        """Offer a committed, queued job to the devices."""

    def take(self, device: str, timeout: float) -> str | None:
        """Next job id for ``device``, or None after ``timeout`` seconds."""

    def release(self, device: str) -> str | None:
        """``device`` is done with the job it took."""

    def snapshot(self) -> dict:
        """``{"queued": [job ids in order], "running": {device: job id}}``."""


class ManagerDispatcher:
    """Jobs on the supervisor's manager-hosted :class:`~whisper_api.live.JobQueue`."""

    def __init__(self, client: LiveClient):
        self.client = client

    def submit(self, job_id: str) -> None:
        self.client.call("queue", "put", job_id)

    def take(self, device: str, timeout: float) -> str | None:
        return self.client.call("queue", "take", device, timeout)

    def release(self, device: str) -> str | None:
        return self.client.call("queue", "release", device)

    def snapshot(self) -> dict:
        return self.client.call("queue", "snapshot")
