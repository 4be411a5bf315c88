"""The results as a Markdown report: the machine, each measured line with its target, raw runs."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from .bare import ROOT, EngineOptions
from .cases import AtOnce, ColdStart, Memory, Pairs, percentile

MB = 1_000_000
ALTERNATIVE = """\
## For reference: whisper-asr-webservice

The popular alternative, measured earlier on this machine with the same model (not re-run here):

- one 60 s request: 1.00× bare faster-whisper;
- 4 clips sent at once: every client waits until all 4 are done (~8 s for 22 s clips), and the
  server answers nothing else meanwhile;
- one process of ~870 MiB;
- answers HTTP 6–7 s after launch.
"""


class LoadMonitor:
    """Samples the 1-minute load average while the benchmark runs (other work shares the machine)."""

    def __init__(self, interval: float = 2.0):
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-monitor", daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(float(Path("/proc/loadavg").read_text().split()[0]))
            if self._stop.wait(self.interval):
                return

    def start(self) -> "LoadMonitor":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class VariantResult:
    env: dict[str, str]
    long: Pairs
    short: Pairs
    at_once: list[AtOnce]

    def label(self, model: str) -> str:
        return f"{model} [{' '.join(f'{key}={value}' for key, value in self.env.items())}]"


@dataclass
class ModelResult:
    name: str
    cold: list[ColdStart]
    long: Pairs
    short: Pairs
    at_once: list[AtOnce] = field(default_factory=list)
    uploads: list[float] = field(default_factory=list)
    loads: tuple[float | None, int, str] | None = None  # (loads after warm-up, jobs, source)
    memory: Memory | None = None
    variants: list[VariantResult] = field(default_factory=list)


@dataclass
class Results:
    command: str
    commit: str  # read when the run starts: the code it measured
    options: EngineOptions
    started: datetime
    load: LoadMonitor
    clips: dict[str, str]
    audio: str
    settings: dict[str, str]
    pollers: int
    poller_interval: float
    poll: float
    at_once_poll: float
    models: list[ModelResult] = field(default_factory=list)
    threads: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    wall: float = 0.0
    resets: int = 0  # clients' status polls reset by the server (and retried)


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    cores = {line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("core id")}
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    ram = int(meminfo["MemTotal"].split()[0]) / 1024 / 1024
    return (f"{model}, {os.cpu_count()} logical CPUs ({len(cores) or '?'} cores), {ram:.1f} GiB RAM; "
            f"Linux {platform.release()}; Python {platform.python_version()}; "
            f"faster-whisper {_version('faster-whisper')}, ctranslate2 {_version('ctranslate2')}")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no")
    return head + (" (tracked files have uncommitted changes)" if changed else "")


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("**PASS**" if ok else "**MISS**")


def _waiting(poll: float) -> str:
    if poll:
        return f"`GET /api/status` every {poll * 1000:.0f} ms"
    return "`GET /api/status/<id>?wait=30`, a long poll the service answers when the job ends"


def _median(values: list[float]) -> float:
    return statistics.median(values)


class Table:
    def __init__(self, *header: str):
        self.lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def row(self, *cells: str) -> None:
        self.lines.append("| " + " | ".join(cells) + " |")

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _pair_rows(table: Table, label: str, long: Pairs, short: Pairs, clips: dict[str, str]) -> None:
    ratio = long.ratio()
    table.row(f"{label} · {clips['long']} · one job, submit → done",
              f"{_s(_median(long.service))} (n={len(long.service)})", _s(_median(long.bare)),
              f"×{ratio:.3f}", "≤ ×1.05", _verdict(ratio <= 1.05))
    excess = short.excess()
    table.row(f"{label} · {clips['short']} · one job, submit → done",
              f"{_s(_median(short.service))} (n={len(short.service)})", _s(_median(short.bare)),
              f"{excess:+.2f} s", "≤ bare + 0.5 s", _verdict(excess <= 0.5))
    for name, pairs in ((clips["long"], long), (clips["short"], short)):
        if pairs.batched:
            table.row(f"{label} · {name} · bare BatchedInferencePipeline", "—", _s(_median(pairs.batched)),
                      f"×{_median(pairs.service) / _median(pairs.batched):.3f} service ÷ batched bare",
                      "—", _verdict(None))


def _at_once_rows(table: Table, label: str, run: AtOnce, clip: str) -> None:
    spread = run.mean / max(run.times)
    table.row(f"{label} · {run.count} × {clip} at once, {run.pollers} status pollers · time to result",
              f"mean {_s(run.mean)}, max {_s(max(run.times))}, first {_s(min(run.times))}",
              f"sequential: mean {_s(statistics.mean(run.bare_times))}, total {_s(run.bare_times[-1])}",
              f"mean ÷ max {spread:.2f}; max ÷ bare total ×{max(run.times) / run.bare_times[-1]:.2f} "
              f"(meanwhile CPU of the HTTP workers {run.http_cpu:.1f} s, of the benchmark's clients "
              f"{run.client_cpu:.1f} s; device idle between jobs: median {_ms(_median(run.gaps))})",
              "mean ≤ 0.75 × max (results as each finishes)", _verdict(spread <= 0.75))
    if run.status:
        p95 = percentile(run.status, 0.95)
        table.row(f"{label} · {run.count} × {clip} at once · GET /api/status, {run.pollers} pollers",
                  f"p50 {_ms(percentile(run.status, 0.5))}, p95 {_ms(p95)}, max {_ms(max(run.status))} "
                  f"({len(run.status)} requests, {len(run.status) / run.status_span:.0f}/s, "
                  f"{run.status_failures} failed; HTTP workers' CPU {_ms(run.http_cpu / run.requests)} "
                  "per request)",
                  "—", "", "p95 ≤ 20 ms", _verdict(p95 <= 0.020 and not run.status_failures))


def results_table(results: Results) -> str:
    table = Table("case", "service", "bare faster-whisper", "compare", "target", "")
    for model in results.models:
        _pair_rows(table, model.name, model.long, model.short, results.clips)
        for run in model.at_once:
            _at_once_rows(table, model.name, run, results.clips["medium"])
        if model.uploads:
            p95 = percentile(model.uploads, 0.95)
            table.row(f"{model.name} · 10 MiB upload, POST answered (n={len(model.uploads)}, one at a time)",
                      f"p50 {_ms(percentile(model.uploads, 0.5))}, p95 {_ms(p95)}", "—", "",
                      "p95 ≤ 200 ms", _verdict(p95 <= 0.2))
        if model.loads:
            loads, jobs, source = model.loads
            per_job = None if loads is None else loads / max(1, jobs)
            table.row(f"{model.name} · model loads per job after warm-up",
                      "unknown" if per_job is None else f"{per_job:g} ({loads:g} loads in {jobs} jobs)",
                      "—", source, "0", _verdict(None if per_job is None else per_job == 0))
        if model.memory:
            memory = model.memory
            http = max(memory.http) if memory.http else 0
            table.row(f"{model.name} · RSS of one HTTP worker",
                      f"{_mib(http)} (max of {len(memory.http)}: {', '.join(_mib(kib) for kib in memory.http)})",
                      "—", "", "≤ 100 MB", _verdict(bool(memory.http) and http * 1024 <= 100 * MB))
            table.row(f"{model.name} · RSS of one device worker",
                      ", ".join(_mib(kib) for kib in memory.device), f"one bare process {_mib(memory.bare)}",
                      f"{(max(memory.device) - memory.bare) / 1024:+.0f} MiB", "—", _verdict(None))
            count = sum(len(pids) for pids in (memory.http, memory.device, memory.supervisor, memory.master,
                                               memory.other))
            table.row(f"{model.name} · RSS of the whole service ({count} processes)",
                      f"{_mib(memory.total)} (master {_mib(sum(memory.master))}, supervisor "
                      f"{_mib(sum(memory.supervisor))}, other {_mib(sum(memory.other))})",
                      f"one bare process {_mib(memory.bare)}", "", "—", _verdict(None))
        answer = _median([cold.answer for cold in model.cold])
        table.row(f"{model.name} · cold start: launch → API answers (n={len(model.cold)})",
                  f"{_s(answer)} (health 200 at {_s(_median([cold.ready for cold in model.cold]))})",
                  "—", "", "≤ 2 s", _verdict(answer <= 2.0))
        first = _median([cold.first for cold in model.cold])
        bare_first = _median([cold.bare_first for cold in model.cold])
        table.row(f"{model.name} · cold start: launch → first {results.clips['short']} transcription done",
                  _s(first), f"{_s(bare_first)} (process start, import, load "
                             f"{_s(_median([cold.bare_load for cold in model.cold]))}, run)",
                  f"{first - bare_first:+.2f} s", "≤ bare + 1 s", _verdict(first - bare_first <= 1.0))
        for variant in model.variants:
            label = variant.label(model.name)
            _pair_rows(table, label, variant.long, variant.short, results.clips)
            for run in variant.at_once:
                _at_once_rows(table, label, run, results.clips["medium"])
    return str(table)


def breakdown_table(results: Results) -> str:
    table = Table("job", "bare", "service total", "upload answered", "queue wait", "worker processing",
                  "done seen after", "processing − bare", "CPU: worker ÷ bare", "CPU: rest of service",
                  "segments service / bare")
    for model in results.models:
        runs = [(model.name, model.long, results.clips["long"]), (model.name, model.short, results.clips["short"])]
        runs += [(variant.label(model.name), pairs, clip)
                 for variant in model.variants
                 for pairs, clip in ((variant.long, results.clips["long"]), (variant.short, results.clips["short"]))]
        for label, pairs, clip in runs:
            trips = pairs.trips
            processing = _median([trip.processing for trip in trips])
            table.row(f"{label} · {clip}", _s(_median(pairs.bare)), _s(_median(pairs.service)),
                      _ms(_median([trip.upload for trip in trips])), _ms(_median([trip.queue for trip in trips])),
                      _s(processing), _ms(_median([trip.lag for trip in trips])),
                      f"{processing - _median(pairs.bare):+.2f} s",
                      f"{_median(pairs.worker_cpu):.2f} ÷ {_median(pairs.bare_cpu):.2f} s = "
                      f"×{_median(pairs.worker_cpu) / _median(pairs.bare_cpu):.3f}",
                      _ms(_median(pairs.rest_cpu)),
                      f"{'/'.join(sorted({str(trip.segments) for trip in trips}))} / "
                      f"{'/'.join(str(count) for count in sorted(pairs.bare_segments))}")
    return str(table)


def threads_table(results: Results) -> str:
    counts = sorted({count for runs in results.threads.values() for count in runs})
    table = Table("model", *(f"{count} thread{'s' if count > 1 else ''}" for count in counts), "fastest (threads)")
    for name, runs in results.threads.items():
        medians = {count: _median(values) for count, values in runs.items()}
        base = medians.get(2) or next(iter(medians.values()))
        table.row(name, *(f"{_s(medians[count])} (×{medians[count] / base:.2f})" for count in counts),
                  f"{min(medians, key=medians.get)}")
    return str(table)


def raw(results: Results) -> str:
    lines = []
    for model in results.models:
        sections = [(model.name, model.long, model.short, model.at_once)] + [
            (variant.label(model.name), variant.long, variant.short, variant.at_once) for variant in model.variants]
        for label, long, short, at_once in sections:
            for clip, pairs in ((results.clips["long"], long), (results.clips["short"], short)):
                lines.append(f"- {label} {clip}: service {', '.join(f'{v:.2f}' for v in pairs.service)}; "
                             f"bare {', '.join(f'{v:.2f}' for v in pairs.bare)}")
            for run in at_once:
                lines.append(f"- {label} {run.count} at once, {run.pollers} pollers, time to result: "
                             f"{', '.join(f'{v:.2f}' for v in sorted(run.times))}; bare sequential finish: "
                             f"{', '.join(f'{v:.2f}' for v in run.bare_times)}")
        for cold in model.cold:
            lines.append(f"- {model.name} cold: answers {cold.answer:.2f}, ready {cold.ready:.2f}, first done "
                         f"{cold.first:.2f}; bare first run {cold.bare_first:.2f} (load {cold.bare_load:.2f})")
        if model.uploads:
            lines.append(f"- {model.name} 10 MiB uploads (ms): "
                         f"{', '.join(f'{v * 1000:.0f}' for v in model.uploads)}")
    return "\n".join(lines)


def render(results: Results) -> str:
    options = results.options
    load = results.load.samples or [0.0]
    engine = (f"device {options.device}, {options.compute_type}, "
              + (f"{options.threads} CPU threads, " if options.device == "cpu" else "")
              + f"beam {options.beam_size}, VAD, word timestamps, language {options.language}")
    settings = ", ".join(f"`{key}={value}`" for key, value in results.settings.items())
    parts = [
        "# Benchmark: whisper_api against bare faster-whisper",
        "",
        f"- Date: {results.started:%Y-%m-%d %H:%M} UTC; the run took {results.wall / 60:.1f} min",
        f"- Commit: {results.commit}",
        f"- Command: `{results.command}`",
        f"- Machine: {machine()}",
        f"- Load: 1-minute load average during the run min {min(load):.1f}, median {_median(load):.1f}, "
        f"max {max(load):.1f} (other processes shared the machine when this is above ~2; each service "
        "figure is paired with the bare run next to it in time, and ratios are medians of those pairs)",
        f"- Both sides: {engine}. Bare: `WhisperModel(...).transcribe(path, ...)` in a plain Python "
        "process, the model loaded and warmed on the short clip.",
        f"- Service: gunicorn with its defaults except {settings}; the model preloaded and warmed. "
        f"A client waits for each job with {_waiting(results.poll)} (in the at-once cases "
        f"{_waiting(results.at_once_poll)}, beside {results.pollers} pollers that each wait "
        f"{results.poller_interval * 1000:.0f} ms between requests).",
        f"- Clips: {results.audio}.",
        f"- Status polls of the clients that the server reset (kept-alive connection closed as the "
        f"request went out; retried): {results.resets}. Pollers' resets count as failed requests below.",
        "",
        "## Results",
        "",
        results_table(results),
        "",
        "## Where a single job's time goes (medians)",
        "",
        "Queue wait and processing come from the job's own timestamps (server clock); "
        "\"done seen after\" is from the stored transcript to the client's poll that saw it. "
        "CPU is user + system time from `/proc` (all threads): the device worker's per job against "
        "the bare process's per run, and the gunicorn master, supervisor and HTTP workers together per "
        "job (upload, status polls, progress and log traffic).",
        "",
        breakdown_table(results),
        "",
        "Segment counts can differ between the sides: the service decodes with PyAV to float samples, "
        "faster-whisper's `decode_audio` goes through 16-bit integers; the samples differ by about 1e-5, "
        "which moves segment boundaries in beam search, not the amount of work.",
        "",
    ]
    if results.threads:
        parts += ["## Bare faster-whisper by CPU threads", "",
                  f"Median of runs on the {results.clips['medium']}, each count in a fresh process, "
                  f"on {os.cpu_count()} logical CPUs.", "", threads_table(results), ""]
    parts += [ALTERNATIVE, *gpu_section(), "## Raw runs (seconds)", "", raw(results), ""]
    return "\n".join(parts)


GPU_RESULTS = ROOT / "bench" / "RESULTS-GPU.md"


def gpu_section() -> list[str]:
    """The last GPU run (``python -m bench.gpu`` writes bench/RESULTS-GPU.md), quoted whole."""
    if not GPU_RESULTS.exists():
        return []
    body = GPU_RESULTS.read_text().split("\n", 1)[1].strip()  # without its title
    return ["## On a GPU", "", "From `bench/RESULTS-GPU.md`, the last run of `python -m bench.gpu` on a GPU host "
            "(not re-run by this command):", "", body.replace("\n## ", "\n### "), ""]


def now() -> datetime:
    return datetime.now(timezone.utc)
