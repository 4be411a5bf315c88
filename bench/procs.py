"""Process facts read from ``/proc``: resident memory, parents, command lines, sessions."""
from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def rss_kb(pid: int) -> int | None:
    """``VmRSS`` of ``pid`` in KiB, or None once it has gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, pgrp, session…)."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def children(pid: int) -> list[int]:
    """Live children of ``pid``."""
    return _live_with(1, pid)


def session(sid: int) -> list[int]:
    """Live processes of session ``sid`` (a process started with ``start_new_session``)."""
    return _live_with(3, sid)


def _live_with(index: int, value: int) -> list[int]:
    """Live processes whose /proc stat field ``index`` (after the name) is ``value``."""
    found = []
    for candidate in _pids():
        fields = _stat(candidate)
        if fields and fields[0] != "Z" and int(fields[index]) == value:
            found.append(candidate)
    return found


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of ``pid`` (all its threads) so far."""
    fields = _stat(pid)
    if not fields:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def renice(pid: int, niceness: int) -> None:
    """Set the nice value of every thread of ``pid`` (Linux keeps one per thread)."""
    for task in (PROC / str(pid) / "task").iterdir():
        os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)


def total_cpu(pids: list[int]) -> float:
    """CPU seconds of ``pids`` together (a process that has gone counts 0)."""
    return sum(cpu_seconds(pid) or 0.0 for pid in pids)
