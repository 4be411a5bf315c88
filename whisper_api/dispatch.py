"""How jobs travel from the HTTP workers to the device workers.

Handlers and device workers only see :class:`Dispatcher`; the manager-hosted queue is
the one implementation today, and a distributed queue can take its place later.
"""
from __future__ import annotations

from typing import Protocol

from .jobs import DEVICE
from .live import LiveClient


class Dispatcher(Protocol):
    def submit(self, job_id: str, lane: str = DEVICE) -> None:
        """Offer a committed job to the devices (or, with ``lane=AFTER``, the after-steps)."""

    def take(self, holder: str, timeout: float, lane: str = DEVICE) -> str | None:
        """Next job id of ``lane`` for ``holder``, or None after ``timeout`` seconds."""

    def release(self, holder: str) -> str | None:
        """``holder`` is done with the job it took."""

    def hand_over(self, giver: str, taker: str) -> str | None:
        """The job ``giver`` took is ``taker``'s from now on."""

    def snapshot(self) -> dict:
        """``{"queued": [ids], "after": [ids], "running": {holder: id}}``."""


class ManagerDispatcher:
    """Jobs on the supervisor's manager-hosted :class:`~whisper_api.live.JobQueue`."""

    def __init__(self, client: LiveClient):
        self.client = client

    def submit(self, job_id: str, lane: str = DEVICE) -> None:
        self.client.call("queue", "put", job_id, lane)

    def take(self, holder: str, timeout: float, lane: str = DEVICE) -> str | None:
        return self.client.call("queue", "take", holder, timeout, lane)

    def release(self, holder: str) -> str | None:
        return self.client.call("queue", "release", holder)

    def hand_over(self, giver: str, taker: str) -> str | None:
        return self.client.call("queue", "hand_over", giver, taker)

    def snapshot(self) -> dict:
        return self.client.call("queue", "snapshot")
