"""Telling other systems when something happened: job callbacks and the idle webhook.

A job with ``callback_url`` gets the JSON of ``GET /api/status/<id>`` POSTed there once it
ends (done or error). Connection errors, 5xx, 429 and 409 are retried with backoff: n8n
answers 409 when the callback arrives before its workflow reaches the Wait node. Other 4xx
stop the delivery. The result stays pollable whatever happens to the delivery.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

from .config import Settings
from .jobs import Job, iso_time
from .store import JobStore

log = logging.getLogger(__name__)

BACKOFF = (1, 2, 4, 8, 15, 30, 60, 120, 300)
RETRY_CODES = {409, 425, 429}
POLL = 0.5


def post_json(url: str, payload: dict, timeout: float) -> tuple[int | None, str | None]:
    """POST ``payload``; the HTTP status (None when none came back) and an error text."""
    request = urllib.request.Request(
        url, data=json.dumps(payload, ensure_ascii=False).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "whisper_api"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))


def deliver(job: Job, settings: Settings) -> tuple[bool, str | None, bool]:
    """One delivery attempt: (delivered, error, worth retrying)."""
    code, error = post_json(job.options.callback_url, job.to_dict(), settings.callback_timeout)
    if code is not None and 200 <= code < 300:
        return True, None, False
    return False, error, code is None or code >= 500 or code in RETRY_CODES


class Callbacks:
    """Delivers due callbacks from the job store until ``stop`` is set."""

    def __init__(self, settings: Settings, store: JobStore):
        self.settings = settings
        self.store = store

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(POLL):
            for job in self.store.due_callbacks(time.time()):
                self.attempt(job)

    def attempt(self, job: Job) -> None:
        delivered, error, retry = deliver(job, self.settings)
        attempts = job.callback.attempts + 1
        retry_at = None
        if not delivered and retry and attempts < self.settings.callback_attempts:
            retry_at = time.time() + BACKOFF[min(attempts - 1, len(BACKOFF) - 1)]
        self.store.callback_attempted(job.id, delivered=delivered, error=error, retry_at=retry_at)
        if delivered:
            log.info("job %s: callback delivered (attempt %d)", job.id, attempts)
        elif retry_at:
            log.info("job %s: callback attempt %d failed (%s); retrying", job.id, attempts, error)
        else:
            log.warning("job %s: callback failed after %d attempts: %s", job.id, attempts, error)


class IdleWebhook:
    """Calls ``idle_webhook_url`` once each time no job has been queued or running for the interval."""

    def __init__(self, settings: Settings, store: JobStore, publish):
        self.settings = settings
        self.store = store
        self.publish = publish  # shows the timer in the live state
        self.idle_since: float | None = None
        self.fired = False

    @property
    def interval(self) -> float:
        return self.settings.idle_webhook_minutes * 60

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(POLL):
            self.tick(time.time())

    def tick(self, now: float) -> None:
        counts = self.store.counts()
        if counts["queued"] or counts["processing"]:
            self.idle_since, self.fired = None, False
        elif self.idle_since is None:
            self.idle_since = now
        if self.idle_since is not None and not self.fired and now - self.idle_since >= self.interval:
            self.fired = True
            code, error = post_json(self.settings.idle_webhook_url, {
                "event": "idle", "idle_since": iso_time(self.idle_since),
                "idle_seconds": round(now - self.idle_since, 1),
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            }, self.settings.callback_timeout)
            if error:
                log.warning("idle webhook failed: %s", error)
            else:
                log.info("idle webhook called (HTTP %s)", code)
        self.publish({
            "url_set": True,
            "interval_seconds": self.interval,
            "idle_since": iso_time(self.idle_since),
            "fires_at": iso_time(self.idle_since + self.interval) if self.idle_since and not self.fired else None,
            "fired": self.fired,
        })
