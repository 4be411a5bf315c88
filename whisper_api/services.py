"""What a web process connects to, created lazily after gunicorn forks it."""
from __future__ import annotations

import functools

from .config import Settings
from .dispatch import Dispatcher, ManagerDispatcher
from .live import LiveClient
from .store import JobStore


class Services:
    """The job store, the dispatcher and the live state, as one web process sees them."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @functools.cached_property
    def store(self) -> JobStore:
        return JobStore(self.settings.db_path)

    @functools.cached_property
    def live(self) -> LiveClient:
        return LiveClient(self.settings, wait=3.0)

    @functools.cached_property
    def dispatcher(self) -> Dispatcher:
        local = ManagerDispatcher(self.live)
        if self.settings.distributed:
            from .distributed import CeleryDispatcher

            return CeleryDispatcher(self.settings, local)
        return local

    def state(self, method: str, *args):
        """Call the live state; raises ConnectionError while the pool is down.

        With a distributed queue, ``snapshot`` and ``logs`` include every worker host's.
        """
        value = self.live.call("state", method, *args)
        if self.settings.distributed and method in ("snapshot", "logs"):
            from . import cluster

            return cluster.merge(self.settings, value) if method == "snapshot" else \
                cluster.merge_logs(self.settings, value)
        return value

    @functools.cached_property
    def _log_client(self) -> LiveClient:
        return LiveClient(self.settings, wait=0)  # a log record must never wait for the pool

    def log_sink(self, entry: dict) -> None:
        self._log_client.call("state", "log", entry)
