"""The measurements: each takes running sides (a ``Bare`` process, a ``Service``) and returns numbers."""
from __future__ import annotations

import itertools
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from . import procs
from .bare import Bare, EngineOptions, first_run
from .service import Service, Trip, Upload, epoch


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) by linear interpolation, as numpy's default does."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Pairs:
    """The same clip through bare faster-whisper and through the service, runs interleaved."""

    bare: list[float] = field(default_factory=list)
    trips: list[Trip] = field(default_factory=list)
    bare_segments: set[int] = field(default_factory=set)
    batched: list[float] = field(default_factory=list)  # bare BatchedInferencePipeline, when asked
    # CPU seconds, steadier than wall time when other work shares the machine:
    bare_cpu: list[float] = field(default_factory=list)  # the bare process, per run
    worker_cpu: list[float] = field(default_factory=list)  # the device workers, per job
    rest_cpu: list[float] = field(default_factory=list)  # master, supervisor, HTTP workers, per job

    @property
    def service(self) -> list[float]:
        return [trip.total for trip in self.trips]

    def ratio(self) -> float:
        """Median of each run's service ÷ bare (neighbours in time share the machine's load)."""
        return statistics.median(s / b for s, b in zip(self.service, self.bare))

    def excess(self) -> float:
        """Median of each run's service − bare, in seconds."""
        return statistics.median(s - b for s, b in zip(self.service, self.bare))


def pairs(bare: Bare, service: Service, clip: Path, upload: Upload, runs: int, poll: float,
          batch_size: int = 0) -> Pairs:
    """``runs`` transcriptions on each side, alternating which side goes first."""
    result = Pairs()
    roles = service.processes()
    workers = roles["device"]
    rest = roles["master"] + roles["supervisor"] + roles["http"]
    with requests.Session() as session:
        def bare_run():
            answer = bare.transcribe(clip)
            result.bare.append(answer["seconds"])
            result.bare_cpu.append(answer["cpu"])
            result.bare_segments.add(answer["segments"])
            if batch_size:
                result.batched.append(bare.transcribe(clip, batch_size)["seconds"])

        def service_run():
            worker_cpu, rest_cpu = procs.total_cpu(workers), procs.total_cpu(rest)
            result.trips.append(service.trip(session, upload, poll))
            result.worker_cpu.append(procs.total_cpu(workers) - worker_cpu)
            result.rest_cpu.append(procs.total_cpu(rest) - rest_cpu)

        for index in range(runs):
            first, second = (bare_run, service_run) if index % 2 == 0 else (service_run, bare_run)
            first()
            second()
    return result


@dataclass
class AtOnce:
    """``count`` uploads sent together while pollers read status: when each result came out."""

    count: int
    times: list[float]  # per job: POST sent -> "done" seen
    bare_times: list[float]  # per file, bare sequential: its finish time from the first start
    status: list[float]  # status request latencies of the pollers, seconds
    status_failures: int
    pollers: int
    status_span: float  # seconds the pollers ran
    requests: int  # every request the clients and pollers sent
    gaps: list[float]  # a job's start minus the previous job's end (server clock): the device idle between
    http_cpu: float  # CPU seconds of the HTTP workers meanwhile
    client_cpu: float  # CPU seconds of this benchmark's own process meanwhile (its clients and pollers)

    @property
    def mean(self) -> float:
        return statistics.mean(self.times)


def at_once(bare: Bare, service: Service, clip: Path, upload: Upload, count: int, pollers: int,
            poller_interval: float, poll: float, bare_times: list[float] | None = None) -> AtOnce:
    """Send ``count`` copies of ``clip`` at once; ``pollers`` clients read status until all are done.

    Bare then transcribes the copies one after another, unless its ``bare_times`` are given.
    """
    gate = threading.Barrier(count)
    ids: list[str | None] = [None] * count
    times: list[float] = [0.0] * count
    spans: list[tuple[float, float]] = []  # (started, completed) of each job, server clock
    errors: list[BaseException] = []
    posted = threading.Semaphore(0)

    answered = itertools.count()  # every response to a client or a poller (next() is atomic)

    def count_response(response, *args, **kwargs) -> None:  # a hook that returns None keeps the response
        next(answered)

    def counted() -> requests.Session:
        session = requests.Session()
        session.hooks["response"].append(count_response)
        return session

    def client(index: int) -> None:
        try:
            with counted() as session:
                gate.wait()
                sent = time.perf_counter()
                ids[index] = service.post(session, upload)
                posted.release()
                status, seen, _ = service.wait_done(session, ids[index], poll)
                times[index] = seen - sent
                spans.append((epoch(status["started_at"]), epoch(status["completed_at"])))
        except BaseException as exc:  # reported after the join
            errors.append(exc)
            posted.release()

    http = service.processes()["http"]
    http_cpu, client_cpu = procs.total_cpu(http), time.process_time()
    clients = [threading.Thread(target=client, args=(index,)) for index in range(count)]
    for thread in clients:
        thread.start()
    for _ in range(count):
        posted.acquire()
    answers: list[tuple[float, bool]] = []  # (seconds, answered 200) per poller request
    stop = threading.Event()

    def poller(index: int) -> None:
        task_id = ids[index % count]
        with counted() as session:
            stop.wait(random.Random(index).uniform(0, poller_interval))  # spread the first requests
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    ok = session.get(f"{service.url}/api/status/{task_id}", timeout=30).status_code == 200
                except requests.RequestException:
                    ok = False
                answers.append((time.perf_counter() - started, ok))
                stop.wait(poller_interval)

    polling = [threading.Thread(target=poller, args=(index,)) for index in range(pollers if all(ids) else 0)]
    began = time.perf_counter()
    for thread in polling:
        thread.start()
    for thread in clients:
        thread.join()
    stop.set()
    span = time.perf_counter() - began
    for thread in polling:
        thread.join()
    http_cpu, client_cpu = procs.total_cpu(http) - http_cpu, time.process_time() - client_cpu
    if errors:
        raise errors[0]
    if bare_times is None:
        bare_times, elapsed = [], 0.0
        for _ in range(count):
            elapsed += bare.transcribe(clip)["seconds"]
            bare_times.append(elapsed)
    spans.sort()
    gaps = [start - previous_end for (_, previous_end), (start, _) in zip(spans, spans[1:])]
    return AtOnce(count, times, bare_times, [seconds for seconds, _ in answers],
                  sum(not ok for _, ok in answers), pollers, span, next(answered), gaps, http_cpu, client_cpu)


def uploads(service: Service, upload: Upload, count: int) -> list[float]:
    """Seconds each of ``count`` sequential POSTs took to answer; then waits for their jobs."""
    latencies, ids = [], []
    with requests.Session() as session:
        for _ in range(count):
            started = time.perf_counter()
            ids.append(service.post(session, upload))
            latencies.append(time.perf_counter() - started)
        for task_id in ids:
            service.wait_done(session, task_id, poll=0.2)
    return latencies


@dataclass
class ColdStart:
    answer: float  # launch -> /api/health answers at all
    ready: float  # launch -> /api/health answers 200 (a worker is up)
    first: float  # launch -> the first upload's status is "done"
    bare_first: float  # bare: process launch -> first transcription done (import, load, run)
    bare_load: float


def cold_start(service: Service, model: Path, clip: Path, upload: Upload, options: EngineOptions,
               log_path: Path, poll: float) -> ColdStart:
    """Bare's first run in a fresh process, then the service from launch to its first result.

    The service's upload is sent as soon as the API answers, as a client retrying after a
    restart would; it is left running, warm, for the next cases.
    """
    bare = first_run(model, clip, options, log_path)
    ready: list[float] = []
    service.launch()
    answer = service.wait_answer()
    watcher = threading.Thread(target=lambda: ready.append(service.wait_answer(ready=True, poll=0.05)))
    watcher.start()
    with requests.Session() as session:
        task_id = service.post(session, upload, retry_for=60)
        _, seen, _ = service.wait_done(session, task_id, poll)
    watcher.join()
    return ColdStart(answer, ready[0] if ready else float("nan"), seen - service.launched, bare["total"],
                     bare["load_seconds"])


@dataclass
class Memory:
    """Resident memory in KiB by role; ``http`` and ``device`` hold one entry per process."""

    http: list[int]
    device: list[int]
    supervisor: list[int]
    master: list[int]
    other: list[int]
    bare: int

    @property
    def total(self) -> int:
        return sum(self.http + self.device + self.supervisor + self.master + self.other)


def memory(service: Service, bare: Bare) -> Memory:
    roles = {role: [procs.rss_kb(pid) or 0 for pid in pids] for role, pids in service.processes().items()}
    return Memory(bare=procs.rss_kb(bare.process.pid) or 0, **roles)


def threads(model: Path, clip: Path, warm: Path, options: EngineOptions, counts: tuple[int, ...],
            runs: int, log_path: Path) -> dict[int, list[float]]:
    """Bare seconds per run of ``clip`` with each CPU thread count (a fresh process each)."""
    found = {}
    for count in counts:
        bare = Bare(model, options, log_path, threads=count)
        try:
            bare.transcribe(warm)
            found[count] = [bare.transcribe(clip)["seconds"] for _ in range(runs)]
        finally:
            bare.close()
    return found
