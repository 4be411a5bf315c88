"""The dashboard's log: a logging handler that feeds the live state's ring of 200 entries."""
from __future__ import annotations

import logging
import sys
import threading
from datetime import datetime, timezone
from typing import Callable

FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s"


class RingHandler(logging.Handler):
    """Sends each record as ``{"time", "level", "msg"}`` to ``sink``; never raises."""

    def __init__(self, sink: Callable[[dict], None], level: int = logging.INFO):
        super().__init__(level)
        self.sink = sink
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "on", False):
            return  # a record logged while delivering one (e.g. by the connection) would loop
        self._busy.on = True
        try:
            self.sink({
                "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "level": record.levelname,
                "msg": record.getMessage(),
            })
        except Exception:
            pass  # the log ring is best effort; the stderr handler still has the record
        finally:
            self._busy.on = False


def setup(level: str, sink: Callable[[dict], None] | None = None) -> None:
    """Log to stderr and, when given, to the live ring (``whisper_api`` loggers only)."""
    root = logging.getLogger()
    if not any(getattr(h, "_whisper_api", False) for h in root.handlers):
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(logging.Formatter(FORMAT))
        stderr._whisper_api = True
        root.addHandler(stderr)
    root.setLevel(level)
    if sink is not None:
        logging.getLogger("whisper_api").addHandler(RingHandler(sink))
