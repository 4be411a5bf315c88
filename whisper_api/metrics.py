"""Prometheus metrics at ``/metrics`` and the probes ``/healthz`` (alive) and ``/readyz`` (ready).

The numbers live in the job store and in the supervisor's live state, not in this web
process: every scrape reads them afresh into a registry of its own.
"""
from __future__ import annotations

import logging
from typing import Iterator

from flask import Blueprint, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .api import services
from .live import HISTOGRAM_BUCKETS
from .services import Services

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

UP = ("idle", "busy")  # device worker states in which it takes jobs
# Live-state counter -> (metric name, help); Prometheus adds ``_total``.
COUNTERS = {
    "audio_seconds": ("whisper_api_audio_seconds", "Seconds of audio transcribed."),
    "model_loads": ("whisper_api_model_loads", "Models loaded by the device workers."),
    "worker_restarts": ("whisper_api_worker_restarts", "Worker processes that died and were restarted."),
}


def device_workers(snapshot: dict) -> dict[str, dict]:
    """The live state's device workers (the after-steps process left out)."""
    return {name: info for name, info in snapshot["devices"].items() if info.get("kind") != "after"}


class ServiceCollector(Collector):
    """The store's job counts always; the queue and the live state while the pool answers."""

    def __init__(self, services: Services):
        self.services = services

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("whisper_api_jobs", "Jobs in the store by state.", labels=["state"])
        for state, count in self.services.store.counts().items():
            jobs.add_metric([state], count)
        yield jobs
        try:
            snapshot = self.services.state("snapshot")
            queue = self.services.dispatcher.snapshot()
        except ConnectionError as exc:
            log.debug("metrics without the live state: %s", exc)
            yield GaugeMetricFamily("whisper_api_pool_up", "1 while the worker pool answers.", value=0)
            return
        yield GaugeMetricFamily("whisper_api_pool_up", "1 while the worker pool answers.", value=1)
        depth = GaugeMetricFamily("whisper_api_queue_depth", "Job ids waiting in a queue lane.", labels=["lane"])
        depth.add_metric(["device"], len(queue["queued"]))
        depth.add_metric(["after"], len(queue["after"]))
        yield depth
        counters = snapshot["counters"]
        for key, (name, documentation) in COUNTERS.items():
            yield CounterMetricFamily(name, documentation, value=counters.get(key, 0))
        histogram = snapshot["histograms"].get("processing_seconds") or {
            "buckets": {bound: 0 for bound in HISTOGRAM_BUCKETS}, "sum": 0.0}
        yield HistogramMetricFamily(
            "whisper_api_processing_seconds", "Seconds a device spent on one transcription.",
            buckets=[(floatToGoString(bound), count) for bound, count in sorted(histogram["buckets"].items())],
            sum_value=histogram["sum"],
        )
        busy = GaugeMetricFamily("whisper_api_device_busy", "1 while a device runs a job.", labels=["device"])
        for name, info in sorted(device_workers(snapshot).items()):
            busy.add_metric([name], int(info.get("status") == "busy"))
        yield busy


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(services()))
    return current_app.response_class(generate_latest(registry), mimetype=None,
                                      content_type=CONTENT_TYPE_LATEST)


@bp.get("/healthz")
def healthz():
    """Liveness: this web process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Readiness: the pool answers and every preload model is loaded on a working device."""
    try:
        snapshot = services().state("snapshot")
    except ConnectionError as exc:
        return jsonify(status="not ready", error=str(exc), missing=[]), 503
    up = [name for name, info in device_workers(snapshot).items() if info.get("status") in UP]
    missing = [model for model in services().settings.preload_models
               if not any(snapshot["models"].get(device, {}).get(model) == "loaded" for device in up)]
    if not up:
        return jsonify(status="not ready", error="no device worker is up yet", missing=missing), 503
    if missing:
        return jsonify(status="not ready", error=f"not loaded yet: {', '.join(missing)}",
                       missing=missing), 503
    return jsonify(status="ready", devices=sorted(up))
