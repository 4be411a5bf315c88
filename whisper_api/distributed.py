"""Jobs across hosts: Celery on Redis carries job ids from the API nodes to the worker hosts.

Set ``WHISPER_API_QUEUE_URL=redis://host:6379/0`` on the API node(s) and on every worker host.
A message holds only a job id, the URL of the API node that owns the job, and a token for that
job; the worker host fetches the audio from that node and sends progress and the result back
there over HTTP (:mod:`whisper_api.remote`). The API node stays the only writer of its SQLite.

Delivery: the message is acknowledged only when the job has ended (``acks_late``); a worker
process that dies unacknowledges it (``reject_on_worker_lost``), and Redis delivers a message
again once its visibility timeout passes. The API node does not wait that long: a job whose
worker host stops reporting for ``remote_timeout`` seconds is queued again at once, and the
lease it gave the old host is void, so a late result from it is refused. An id delivered twice
runs once: only a queued job can be claimed.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from functools import cached_property
from pathlib import Path

from .config import Settings
from .exceptions import Unavailable
from .jobs import DEVICE

log = logging.getLogger(__name__)

TASK = "whisper_api.transcribe"
QUEUE = "whisper_api"
SECRET_FILE = "node.secret"


def celery_app(settings: Settings):
    """The Celery app for ``settings.queue_url`` (imported here: the embedded queue needs no Celery)."""
    from celery import Celery

    app = Celery("whisper_api", broker=settings.queue_url, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_acks_late=True,  # acknowledged when the job has ended, not when it starts
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker takes the next message only when it is free
        task_ignore_result=True,  # results travel to the API node over HTTP, not through Redis
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "socket_connect_timeout": 3,
            "socket_timeout": 10,
            "retry_on_timeout": False,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker host waits for Redis as long as it takes
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def node_secret(settings: Settings) -> bytes:
    """The key that signs this API node's job tokens: the setting, else one kept in the data dir."""
    if settings.node_secret:
        return settings.node_secret.encode()
    path = Path(settings.data_dir) / SECRET_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    try:
        fd = path.open("xb")  # two processes starting at once: the first one's secret wins
    except FileExistsError:
        return path.read_bytes()
    with fd:
        path.chmod(0o600)
        fd.write(secret)
    return secret


def job_token(secret: bytes, job_id: str) -> str:
    """What a worker host shows this API node to act on ``job_id``; good for that job only."""
    return hmac.new(secret, job_id.encode(), hashlib.sha256).hexdigest()


def node_url(settings: Settings) -> str:
    if settings.node_url:
        return settings.node_url.rstrip("/")
    address, _, port = settings.bind.rpartition(":")
    if address in ("127.0.0.1", "localhost", "[::1]"):
        return f"http://{address}:{port}"  # a node on loopback serves workers on this machine only
    return f"http://{settings.host}:{port}"


class CeleryDispatcher:
    """Device-lane jobs go to Redis through Celery; the after-steps stay on this API node."""

    def __init__(self, settings: Settings, local=None):
        self.settings = settings
        self.local = local  # the ManagerDispatcher of this node's after-steps process
        self.url = node_url(settings)

    @cached_property
    def app(self):
        return celery_app(self.settings)

    @cached_property
    def secret(self) -> bytes:
        return node_secret(self.settings)

    def submit(self, job_id: str, lane: str = DEVICE) -> None:
        """Send the job to the worker hosts; raise Unavailable when Redis cannot take it."""
        if lane != DEVICE:
            self.local.submit(job_id, lane)
            return
        from kombu.exceptions import OperationalError

        try:
            self.app.send_task(TASK, args=[job_id, self.url, job_token(self.secret, job_id)], queue=QUEUE,
                               retry=False)
        except (OperationalError, OSError) as exc:
            raise Unavailable(f"the job queue (Redis) cannot be reached: {_without_password(str(exc))}") from None

    def take(self, holder: str, timeout: float, lane: str = DEVICE) -> str | None:
        return self.local.take(holder, timeout, lane)

    def release(self, holder: str) -> str | None:
        return self.local.release(holder)

    def hand_over(self, giver: str, taker: str) -> str | None:
        return self.local.hand_over(giver, taker)

    def snapshot(self) -> dict:
        return self.local.snapshot()


def _without_password(text: str) -> str:
    """An error text with any ``redis://user:password@`` credentials masked."""
    return re.sub(r"(redis(?:s)?://[^:@/\s]*:)[^@/\s]*@", r"\1***@", text)
