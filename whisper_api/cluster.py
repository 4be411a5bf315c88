"""What each worker host shows of itself: its devices, models, GPUs and log, kept in Redis.

A worker host's supervisor writes one key every few seconds with a short expiry, so a host
that is gone drops out of the views by itself. The API nodes merge these into
``/api/health``, ``/api/gpus``, ``/api/model_status``, ``/api/logs`` and the dashboard, each
device named ``host/device`` and each GPU and log line labelled with its host.
"""
from __future__ import annotations

import json
import logging
import time
from functools import lru_cache

from .config import Settings

log = logging.getLogger(__name__)

PREFIX = "whisper_api:host:"
PUBLISH_INTERVAL = 2.0  # seconds between a worker host's writes
EXPIRY = 15  # seconds a host's entry outlives its last write
LOG_LINES = 200
WARN_INTERVAL = 60.0
_warned = [float("-inf")]  # when this process last said Redis was unreachable


@lru_cache(maxsize=4)
def _client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2, health_check_interval=30)


def client(settings: Settings):
    return _client(settings.queue_url)


def publish(settings: Settings, snapshot: dict, logs: list[dict]) -> None:
    """Write this worker host's entry (its live state and the tail of its log)."""
    entry = {"host": settings.host, "at": time.time(), "devices": snapshot["devices"],
             "models": snapshot["models"], "gpus": snapshot["gpus"], "counters": snapshot["counters"],
             "logs": logs[-LOG_LINES:]}
    client(settings).set(PREFIX + settings.host, json.dumps(entry, ensure_ascii=False), ex=EXPIRY)


def withdraw(settings: Settings) -> None:
    """A worker host that stops says so at once instead of waiting for its entry to expire."""
    try:
        client(settings).delete(PREFIX + settings.host)
    except Exception as exc:  # Redis down: the entry expires by itself
        log.debug("could not withdraw %s from Redis: %s", settings.host, exc)


def hosts(settings: Settings) -> list[dict]:
    """Every live worker host's entry, by host name; ``[]`` (and a warning) while Redis is down."""
    try:
        redis = client(settings)
        keys = sorted(redis.scan_iter(match=PREFIX + "*", count=100))
        values = redis.mget(keys) if keys else []
    except Exception as exc:
        now = time.monotonic()
        if now - _warned[0] > WARN_INTERVAL:  # views are polled every few seconds: say it once a minute
            _warned[0] = now
            log.warning("worker hosts unknown: Redis cannot be reached (%s)", type(exc).__name__)
        return []
    return [json.loads(value) for value in values if value]


def merge(settings: Settings, snapshot: dict) -> dict:
    """This node's live state with every worker host's devices, models and GPUs added, and its
    counters summed (a host that leaves takes its counts with it)."""
    if not settings.distributed:
        return snapshot
    merged = {**snapshot, "devices": dict(snapshot["devices"]), "models": dict(snapshot["models"]),
              "gpus": [{**gpu, "host": settings.host} for gpu in snapshot["gpus"]],
              "counters": dict(snapshot["counters"])}
    for entry in hosts(settings):
        host = entry["host"]
        for name, value in entry.get("counters", {}).items():  # jobs done, model loads, … on that host
            merged["counters"][name] = merged["counters"].get(name, 0) + value
        for name, info in entry["devices"].items():
            merged["devices"][f"{host}/{name}"] = {**info, "host": host}
        for name, models in entry["models"].items():
            merged["models"][f"{host}/{name}"] = models
        merged["gpus"] += [{**gpu, "host": host} for gpu in entry["gpus"]]
    return merged


def merge_logs(settings: Settings, logs: list[dict]) -> list[dict]:
    """This node's log ring and every worker host's, each line labelled with its host; the last 200."""
    if not settings.distributed:
        return logs
    lines = [{**line, "host": settings.host} for line in logs]
    for entry in hosts(settings):
        lines += [{**line, "host": entry["host"]} for line in entry["logs"]]
    lines.sort(key=lambda line: line.get("time", ""))  # stable: each host's own order is kept
    return lines[-LOG_LINES:]
