"""Benchmark the service on one CUDA GPU: float16, bare vs service, sequential vs batched.

    .venv/bin/python -m bench.clips /tmp/clips --no-upload    # where ffmpeg and espeak-ng are
    .venv/bin/python -m bench.gpu --model models/base --clips /tmp/clips

Both sides run the same model, precision, beam, VAD and word timestamps, as ``bench.run``
does on the CPU. Cases: cold start; one job at a time on the 60 s and 5 s clips (service with
batching off against bare ``WhisperModel.transcribe``); the 10 min clip sequential and batched
on both sides; 4 clips at once on the batched service; what the service reports of its GPU
and workers. The report goes to bench/RESULTS-GPU.md, which bench/RESULTS.md quotes.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from . import cases, clips as clip_files
from .bare import ROOT, Bare, EngineOptions
from .report import Table, _mib, _ms, _s, _verdict, _waiting, commit, machine, now
from .run import AT_ONCE_POLL, command_line, link_models, read_through
from .service import Service, Upload, warm_numba

OUTPUT = ROOT / "bench" / "RESULTS-GPU.md"
TARGET_SPEED = 0.95  # service speed ÷ bare speed
TARGET_BATCHED = 2.5  # batched speed ÷ sequential speed on the long clip


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def gpu_name() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown GPU"
    return "; ".join(out.splitlines()) or "unknown GPU"


def gpu_memory() -> dict[int, int]:
    """MiB of GPU memory by process id, as nvidia-smi lists the compute processes."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    used = {}
    for line in out.splitlines():
        pid, _, mib = line.partition(",")
        if pid.strip().isdigit() and mib.strip().isdigit():
            used[int(pid)] = int(mib)
    return used


def inventory(service: Service) -> dict:
    """What the service says of its GPUs, models and workers."""
    get = lambda path: requests.get(service.url + path, timeout=10).json()  # noqa: E731
    health = service.health()
    return {"gpus": get("/api/gpus"), "model_status": get("/api/model_status"),
            "devices": {name: {key: info.get(key) for key in ("kind", "pid", "state", "device")}
                        for name, info in health["devices"].items()}}


def speed(service: list[float], bare: list[float]) -> float:
    """Bare time ÷ service time, the median over runs paired in time (>1: the service is faster)."""
    return statistics.median(b / s for s, b in zip(service, bare))


class GpuBench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.options = EngineOptions(device=args.device, compute_type=args.compute_type, beam_size=args.beam_size,
                                     language=args.language)
        self.workdir = Path(tempfile.mkdtemp(prefix="whisper-bench-gpu-"))
        self.bare_log = self.workdir / "bare.log"
        self.found: dict = {}

    def service(self, batch_size: int) -> Service:
        return Service(self.workdir, self.models_dir, self.args.model.name, self.options,
                       {"WHISPER_API_BATCH_SIZE": str(batch_size)})

    def run(self) -> dict:
        args, model, poll = self.args, self.args.model, self.args.poll
        if args.clips:
            clips, long = clip_files.prebuilt(args.clips), args.clips / clip_files.LONG_NAME
        else:
            clips = clip_files.build(self.workdir / "clips")
            long = clip_files.build_long(self.workdir / "clips")
        self.models_dir = link_models([model], self.workdir / "models")
        read_through(model)
        try:
            warm_numba()
        except subprocess.CalledProcessError as exc:  # librosa only serves up_speed jobs, not measured here
            say(f"numba cache not filled: {exc.stderr[-300:]!r}")
        fields = {"model_name": model.name, "language": args.language}
        uploads = {name: Upload.of(path, **fields) for name, path in
                   (("short", clips.short), ("long", clips.long), ("medium", clips.medium), ("ten", long))}
        found = self.found
        found["gpu"] = gpu_name()

        say("cold start of the sequential service (batching off)")
        sequential = self.service(0)
        try:
            cold = cases.cold_start(sequential, model, clips.short, uploads["short"], self.options,
                                    self.bare_log, poll)
            found["cold"] = cold.__dict__
            found["inventory"] = inventory(sequential)
            bare = Bare(model, self.options, self.bare_log)
            try:
                bare.transcribe(clips.short)
                cases.pairs(bare, sequential, clips.short, uploads["short"], 1, poll)  # warm-up
                loads_before, _ = sequential.model_loads()
                say(f"one job at a time: {args.runs} × 60 s and 5 s each side")
                found["long"] = self.pairs(bare, sequential, clips.long, uploads["long"], args.runs)
                found["short"] = self.pairs(bare, sequential, clips.short, uploads["short"], args.runs)
                say(f"the 10 min clip, {args.long_runs} runs: sequential service, bare sequential and batched")
                found["ten_sequential"] = self.pairs(bare, sequential, long, uploads["ten"], args.long_runs,
                                                     args.batch_size)
                loads_after, _ = sequential.model_loads()
                found["loads"] = [loads_after - loads_before, 2 * args.runs + args.long_runs]
                found["memory"] = cases.memory(sequential, bare).__dict__
                found["gpu_memory"] = gpu_memory()
                found["device_pids"] = sequential.device_pids()
                sequential.stop()

                say(f"batched service (batch size {args.batch_size})")
                batched = self.service(args.batch_size)
                batched.launch()
                try:
                    batched.wait_answer(ready=True)
                    cases.pairs(bare, batched, clips.short, uploads["short"], 1, poll)  # warm-up
                    found["ten_batched"] = self.pairs(bare, batched, long, uploads["ten"], args.long_runs,
                                                      args.batch_size)
                    found["long_batched"] = self.pairs(bare, batched, clips.long, uploads["long"], args.runs,
                                                       args.batch_size)
                    say("4 × 20 s at once on the batched service")
                    once = cases.at_once(bare, batched, clips.medium, uploads["medium"], 4, 0, 0.5, AT_ONCE_POLL)
                    found["at_once"] = {"times": once.times, "bare_times": once.bare_times, "gaps": once.gaps}
                finally:
                    batched.stop()
            finally:
                bare.close()
        finally:
            sequential.stop()
        return found

    def pairs(self, bare: Bare, service: Service, clip: Path, upload: Upload, runs: int,
              batch_size: int = 0) -> dict:
        result = cases.pairs(bare, service, clip, upload, runs, self.args.poll, batch_size)
        return {"service": result.service, "bare": result.bare, "bare_batched": result.batched,
                "processing": [trip.processing for trip in result.trips],
                "segments": [trip.segments for trip in result.trips], "bare_segments": sorted(result.bare_segments)}


def render(found: dict, args: argparse.Namespace, command: str, started, wall: float) -> str:
    median = statistics.median
    table = Table("case", "service", "bare faster-whisper", "compare", "target", "")
    for key, label in (("long", "60 s clip"), ("short", "5 s clip")):
        run = found[key]
        ratio = speed(run["service"], run["bare"])
        table.row(f"{label} · one job, submit → done (batching off on both sides)",
                  f"{_s(median(run['service']))} (n={len(run['service'])})", _s(median(run["bare"])),
                  f"speed ×{ratio:.3f} of bare", f"≥ ×{TARGET_SPEED}", _verdict(ratio >= TARGET_SPEED))
    seq, bat = found["ten_sequential"], found["ten_batched"]
    bare_gain = median(seq["bare"]) / median(seq["bare_batched"])
    service_gain = median(seq["service"]) / median(bat["service"])
    table.row("10 min clip · bare: batched ÷ sequential", "—",
              f"{_s(median(seq['bare']))} sequential, {_s(median(seq['bare_batched']))} batched",
              f"×{bare_gain:.2f} faster", f"≥ ×{TARGET_BATCHED}", _verdict(bare_gain >= TARGET_BATCHED))
    table.row("10 min clip · service: batched ÷ sequential",
              f"{_s(median(seq['service']))} sequential, {_s(median(bat['service']))} batched", "—",
              f"×{service_gain:.2f} faster", f"≥ ×{TARGET_BATCHED}", _verdict(service_gain >= TARGET_BATCHED))
    ratio = speed(seq["service"], seq["bare"])
    table.row("10 min clip · sequential, submit → done", _s(median(seq["service"])), _s(median(seq["bare"])),
              f"speed ×{ratio:.3f} of bare", f"≥ ×{TARGET_SPEED}", _verdict(ratio >= TARGET_SPEED))
    ratio = speed(bat["service"], bat["bare_batched"])
    table.row(f"10 min clip · batched (batch size {args.batch_size}), submit → done", _s(median(bat["service"])),
              _s(median(bat["bare_batched"])), f"speed ×{ratio:.3f} of bare batched", f"≥ ×{TARGET_SPEED}",
              _verdict(ratio >= TARGET_SPEED))
    run = found["long_batched"]
    ratio = speed(run["service"], run["bare_batched"])
    table.row(f"60 s clip · batched (batch size {args.batch_size}), submit → done", _s(median(run["service"])),
              _s(median(run["bare_batched"])), f"speed ×{ratio:.3f} of bare batched", f"≥ ×{TARGET_SPEED}",
              _verdict(ratio >= TARGET_SPEED))
    once = found["at_once"]
    table.row("4 × 20 s clip at once (batched service) · time to result",
              f"mean {_s(statistics.mean(once['times']))}, max {_s(max(once['times']))}",
              f"sequential: total {_s(max(once['bare_times']))}",
              f"mean ÷ max {statistics.mean(once['times']) / max(once['times']):.2f}; device idle between "
              f"jobs: median {_ms(median(once['gaps']))}", "results as each finishes", "—")
    loads, jobs = found["loads"]
    table.row("model loads per job after warm-up", f"{loads:.0f} in {jobs} jobs", "—", "`/metrics`", "0",
              _verdict(loads == 0))
    cold = found["cold"]
    table.row("cold start: launch → API answers", _s(cold["answer"]), "—", f"ready (health 200) at "
              f"{_s(cold['ready'])}", "≤ 2 s", _verdict(cold["answer"] <= 2))
    table.row("cold start: launch → first 5 s clip done", _s(cold["first"]),
              f"{_s(cold['bare_first'])} (load {_s(cold['bare_load'])})",
              f"+{cold['first'] - cold['bare_first']:.2f} s", "≤ bare + 1 s",
              _verdict(cold["first"] - cold["bare_first"] <= 1))
    memory = found["memory"]
    pids = found["device_pids"]
    used = found["gpu_memory"]
    workers = ", ".join(f"{name} (pid {info['pid']})" for name, info in found["inventory"]["devices"].items()
                        if info.get("kind") != "after")
    table.row("device workers (one per GPU)", workers, "—", "`/api/health`", "one per GPU",
              _verdict(len(pids) == 1))
    table.row("GPU memory of the device worker", ", ".join(f"{used.get(pid, 0)} MiB" for pid in pids),
              f"{sum(used.values()) - sum(used.get(pid, 0) for pid in pids)} MiB (bare process)", "nvidia-smi",
              "—", "—")
    table.row("RSS of the device worker / one HTTP worker",
              f"{_mib(max(memory['device']))} / {_mib(max(memory['http']))}", _mib(memory["bare"]), "", "—", "—")
    gpus = json.dumps(found["inventory"]["gpus"], ensure_ascii=False)
    models = json.dumps(found["inventory"]["model_status"], ensure_ascii=False)
    raw = "\n".join(f"- {key}: service {', '.join(f'{v:.2f}' for v in found[key]['service'])}; bare "
                    f"{', '.join(f'{v:.2f}' for v in found[key]['bare'])}"
                    + (f"; bare batched {', '.join(f'{v:.2f}' for v in found[key]['bare_batched'])}"
                       if found[key]["bare_batched"] else "")
                    + f"; segments service {found[key]['segments']}, bare {found[key]['bare_segments']}"
                    for key in ("long", "short", "ten_sequential", "ten_batched", "long_batched"))
    return "\n".join([
        "# Benchmark on a GPU: whisper_api against bare faster-whisper",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; the run took {wall / 60:.1f} min",
        f"- Commit: {commit()}",
        f"- Command: `{command}`",
        f"- GPU: {found['gpu']}",
        f"- Host: {machine()}",
        f"- Both sides: model `{args.model.name}`, device {args.device}, {args.compute_type}, beam {args.beam_size}, VAD, "
        f"word timestamps, language {args.language}. Bare: `WhisperModel(...).transcribe` (sequential) or "
        f"`BatchedInferencePipeline(model).transcribe(batch_size={args.batch_size})` in a plain Python "
        "process, the model loaded and warmed.",
        "- Service: gunicorn, `WHISPER_API_DEVICES=cuda:0`, one device worker; `WHISPER_API_BATCH_SIZE=0` for "
        f"the sequential cases and `{args.batch_size}` for the batched ones. A client waits for each job with "
        f"{_waiting(args.poll)}.",
        "- Clips: 60 s, 20 s and 10 min of espeak-ng speech without repetitions (the 10 min clip: one "
        "text in twelve voices and speeds); 5 s cut from tests/data/en.mp3; mono 16 kHz MP3.",
        "",
        table.__str__(),
        "",
        f"`/api/gpus`: `{gpus}`",
        "",
        f"`/api/model_status`: `{models}`",
        "",
        "Raw runs (seconds):",
        "",
        raw,
        "",
    ])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "base", help="CTranslate2 model folder")
    parser.add_argument("--clips", type=Path, help="clips made by python -m bench.clips (default: make them)")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of this script where no GPU is")
    parser.add_argument("--compute-type", default="float16")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--language", default="en")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--runs", type=int, default=5, help="runs of the 60 s and 5 s clips")
    parser.add_argument("--long-runs", type=int, default=3, help="runs of the 10 min clip")
    parser.add_argument("--poll", type=float, default=0.0, help="seconds between status polls; 0: long poll")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    started, clock = now(), time.perf_counter()
    bench = GpuBench(args)
    try:
        found = bench.run()
    except BaseException:
        print(f"benchmark failed; logs are in {bench.workdir}", file=sys.stderr)
        for log in sorted(bench.workdir.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
        raise
    if args.json:
        args.json.write_text(json.dumps(found, indent=1, default=str))
    text = render(found, args, command_line(argv).replace("bench.run", "bench.gpu"), started,
                  time.perf_counter() - clock)
    args.output.write_text(text)
    print(text)
    shutil.rmtree(bench.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
