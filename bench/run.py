"""Benchmark the service end to end against bare faster-whisper, in one run on one machine.

    .venv/bin/python -m bench.run                 # full run, about 10 minutes on 2 CPU cores
    .venv/bin/python -m bench.run --quick         # smoke run, about 2 minutes
    .venv/bin/python -m bench.run --env "WHISPER_API_BATCH_SIZE=8 WHISPER_API_PREFETCH=1"
    .venv/bin/python -m bench.run --device cuda --model /srv/models/large-v3 --audio talk.mp3

Every case runs the same files through the same model on both sides; service and bare runs
alternate so that both see the same load. The report goes to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import cases, clips as clip_files
from .bare import ROOT, Bare, EngineOptions
from .cases import AtOnce, ColdStart
from .report import LoadMonitor, ModelResult, Results, VariantResult, commit, now, render
from .service import Service, Upload, warm_numba

DEFAULT_MODELS = (ROOT / "models" / "tiny.en", ROOT / "models" / "base")
THREAD_COUNTS = (1, 2, 4)
SETTINGS_SHOWN_ELSEWHERE = ("DATA_DIR", "MODELS_DIR", "PRELOAD_MODELS", "BIND")
AT_ONCE_POLL = 0.0  # the clients waiting in the at-once cases long-poll too (0; N: poll every N s)
NICE = "BENCH_WORKER_NICE"  # in an --env variant: the harness renices the device workers' threads


@dataclass(frozen=True)
class Plan:
    """How many runs of what: the full run and ``--quick`` differ only here."""

    runs_long: int
    runs_short: int
    cold_runs: int
    at_once: tuple[int, ...]
    uploads: int
    thread_runs: int
    thread_models: int  # how many of the models get the threads comparison


FULL = Plan(runs_long=5, runs_short=5, cold_runs=2, at_once=(4, 8), uploads=20, thread_runs=2, thread_models=2)
QUICK = Plan(runs_long=1, runs_short=2, cold_runs=1, at_once=(4,), uploads=5, thread_runs=1, thread_models=1)


def parse_env(spec: str) -> dict[str, str]:
    """``"A=1 B=2"`` -> ``{"A": "1", "B": "2"}``."""
    pairs = {}
    for item in shlex.split(spec):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{item!r} is not NAME=VALUE")
        pairs[key] = value
    return pairs


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and the first model only")
    parser.add_argument("--model", action="append", type=Path, metavar="PATH",
                        help="a CTranslate2 model folder, repeatable; the first one also gets the load "
                             "cases (default: models/tiny.en and models/base; --quick: the first)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--compute-type", help="default: int8 on the CPU, float16 on CUDA")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads of the bare process and of the service's one CPU worker")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--language", default="en", help="sent with every upload and given to bare")
    parser.add_argument("--audio", type=Path, help="speech of 60 s or more to cut the clips from "
                                                   "(default: an English text spoken by espeak-ng)")
    parser.add_argument("--env", action="append", type=parse_env, default=[], metavar='"NAME=VALUE ..."',
                        help="also measure a service with these settings (repeatable: one service each); "
                             f"{NICE}=N renices its device workers")
    parser.add_argument("--pollers", type=int, default=50, help="status pollers in the at-once cases")
    parser.add_argument("--poller-interval", type=float, default=0.5, help="seconds between a poller's requests")
    parser.add_argument("--poll", type=float, default=0.0,
                        help="seconds between a client's status polls; 0: one long poll (?wait=) per job")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, clips, data)")
    return parser.parse_args(argv)


def link_models(models: list[Path], folder: Path) -> Path:
    """A models dir for the service: each model folder linked under its own name."""
    folder.mkdir(parents=True)
    for model in models:
        link = folder / model.name
        if link.exists():
            raise SystemExit(f"two models are named {model.name!r}; rename one folder")
        link.symlink_to(model.resolve(), target_is_directory=True)
    return folder


def read_through(model: Path) -> None:
    """Read the model files once, so neither side's first load pays for the disk."""
    for path in model.iterdir():
        if path.is_file():
            with open(path, "rb") as handle:
                while handle.read(1 << 24):
                    pass


class Bench:
    """One run: the sides it starts, the plan, the files; ``measure`` fills the results."""

    def __init__(self, args: argparse.Namespace, plan: Plan, options: EngineOptions, workdir: Path,
                 results: Results):
        self.args = args
        self.plan = plan
        self.options = options
        self.workdir = workdir
        self.results = results
        self.bare_log = workdir / "bare.log"
        self.services: list[Service] = []

    def say(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def measure(self, models: list[Path]) -> None:
        self.clips = clip_files.build(self.workdir / "clips", self.args.audio)
        self.models_dir = link_models(models, self.workdir / "models")
        for model in models:
            read_through(model)
        self.say("filling the numba cache, as an earlier start of the service would have")
        warm_numba()
        for index, model in enumerate(models):
            self.results.models.append(self.measure_model(model, first=index == 0))
        if self.options.device == "cpu":
            for model in models[:self.plan.thread_models]:
                self.say(f"{model.name}: bare with {THREAD_COUNTS} CPU threads")
                self.results.threads[model.name] = cases.threads(
                    model, self.clips.medium, self.clips.short, self.options, THREAD_COUNTS,
                    self.plan.thread_runs, self.bare_log)

    def uploads(self, model: Path) -> dict[str, Upload]:
        fields = {"model_name": model.name, "language": self.options.language}
        return {name: Upload.of(getattr(self.clips, name), **fields)
                for name in ("long", "medium", "short", "upload")}

    def service(self, model: Path, env: dict[str, str] | None = None) -> Service:
        service = Service(self.workdir, self.models_dir, model.name, self.options, env)
        self.services.append(service)
        return service

    def measure_model(self, model: Path, first: bool) -> ModelResult:
        uploads = self.uploads(model)
        cold, service = self.cold_starts(model, uploads["short"])
        try:
            bare = Bare(model, self.options, self.bare_log)
            try:
                result = self.warm_cases(model, first, service, bare, uploads)
                result.cold = cold
                service.stop()
                if first:
                    result.variants = [self.measure_variant(model, bare, env, uploads) for env in self.args.env]
            finally:
                bare.close()
        finally:
            service.stop()
        return result

    def cold_starts(self, model: Path, upload: Upload) -> tuple[list[ColdStart], Service]:
        """Launch the service ``cold_runs`` times from nothing; the last one is left running."""
        cold, service = [], None
        try:
            for attempt in range(self.plan.cold_runs):
                if service is not None:
                    service.stop()
                self.say(f"{model.name}: cold start {attempt + 1}/{self.plan.cold_runs}")
                service = self.service(model)
                cold.append(cases.cold_start(service, model, self.clips.short, upload, self.options,
                                             self.bare_log, self.args.poll))
        except BaseException:
            if service is not None:
                service.stop()
            raise
        self.results.settings = {key: value for key, value in service.settings.items()
                                 if key.removeprefix("WHISPER_API_") not in SETTINGS_SHOWN_ELSEWHERE}
        return cold, service

    def warm_cases(self, model: Path, first: bool, service: Service, bare: Bare,
                   uploads: dict[str, Upload]) -> ModelResult:
        """Both sides warm: single jobs; for the first model also the at-once and upload cases."""
        name, plan, poll = model.name, self.plan, self.args.poll
        service.wait_idle()
        bare.transcribe(self.clips.short)
        cases.pairs(bare, service, self.clips.short, uploads["short"], 1, poll)  # warm-up
        loads_before, _ = service.model_loads()
        self.say(f"{name}: one job at a time, {plan.runs_long} × 60 s and {plan.runs_short} × 5 s each side")
        long = cases.pairs(bare, service, self.clips.long, uploads["long"], plan.runs_long, poll)
        short = cases.pairs(bare, service, self.clips.short, uploads["short"], plan.runs_short, poll)
        result = ModelResult(name, [], long, short)
        jobs = plan.runs_long + plan.runs_short
        if first:
            for count in plan.at_once:
                self.say(f"{name}: {count} at once, then again under {self.args.pollers} status pollers")
                result.at_once += self.at_once(service, bare, uploads, count)
                jobs += 2 * count
            self.say(f"{name}: {plan.uploads} uploads of 10 MiB")
            result.uploads = cases.uploads(service, uploads["upload"], plan.uploads)
            jobs += plan.uploads
        loads_after, source = service.model_loads()
        loads = None if loads_before is None or loads_after is None else loads_after - loads_before
        result.loads = (loads, jobs, source)
        result.memory = cases.memory(service, bare)
        return result

    def at_once(self, service: Service, bare: Bare, uploads: dict[str, Upload], count: int) -> list[AtOnce]:
        """``count`` at once without pollers (the queue alone), then again under the status pollers."""
        quiet = cases.at_once(bare, service, self.clips.medium, uploads["medium"], count, 0,
                              self.args.poller_interval, AT_ONCE_POLL)
        polled = cases.at_once(bare, service, self.clips.medium, uploads["medium"], count, self.args.pollers,
                               self.args.poller_interval, AT_ONCE_POLL, quiet.bare_times)
        return [quiet, polled]

    def measure_variant(self, model: Path, bare: Bare, env: dict[str, str],
                        uploads: dict[str, Upload]) -> VariantResult:
        plan, poll = self.plan, self.args.poll
        self.say(f"{model.name}: service with {env}")
        settings = {key: value for key, value in env.items() if key != NICE}
        service = self.service(model, settings)
        service.launch()
        try:
            service.wait_answer(ready=True)
            service.wait_idle()
            if NICE in env:
                service.renice_workers(int(env[NICE]))
            batch_size = int(env.get("WHISPER_API_BATCH_SIZE") or 0)
            cases.pairs(bare, service, self.clips.short, uploads["short"], 1, poll)  # warm-up
            long = cases.pairs(bare, service, self.clips.long, uploads["long"], plan.runs_long, poll, batch_size)
            short = cases.pairs(bare, service, self.clips.short, uploads["short"], plan.runs_short, poll, batch_size)
            once = self.at_once(service, bare, uploads, plan.at_once[0])
        finally:
            service.stop()
        return VariantResult(env, long, short, once)


def command_line(argv: list[str]) -> str:
    python = Path(sys.executable)
    shown = os.path.relpath(python, ROOT) if python.is_relative_to(ROOT) else str(python)
    return shlex.join([shown, "-m", "bench.run", *argv])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = arguments(argv)
    plan = QUICK if args.quick else FULL
    models = args.model or list(DEFAULT_MODELS[:1] if args.quick else DEFAULT_MODELS)
    options = EngineOptions(device=args.device,
                            compute_type=args.compute_type or ("float16" if args.device == "cuda" else "int8"),
                            threads=args.threads, beam_size=args.beam_size, language=args.language)
    workdir = Path(tempfile.mkdtemp(prefix="whisper-bench-"))
    started = time.perf_counter()
    results = Results(command=command_line(argv), commit=commit(), options=options, started=now(), load=LoadMonitor().start(),
                      clips={"long": "60 s clip", "medium": "20 s clip", "short": "5 s clip"},
                      audio=clip_files.describe(args.audio), settings={},
                      pollers=args.pollers, poller_interval=args.poller_interval, poll=args.poll,
                      at_once_poll=AT_ONCE_POLL)
    bench = Bench(args, plan, options, workdir, results)
    try:
        bench.measure(models)
    except BaseException:
        print(f"benchmark failed; logs are in {workdir}", file=sys.stderr)
        args.keep = True
        raise
    finally:
        results.load.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results.wall = time.perf_counter() - started
    results.resets = sum(service.resets for service in bench.services)
    text = render(results)
    args.output.write_text(text)
    print(text)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
