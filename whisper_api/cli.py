"""``whisper-api``: the commands of a whisper_api installation beyond the web service itself.

    whisper-api worker     run this host's device workers on the distributed queue
                           (WHISPER_API_QUEUE_URL), one process per GPU, until SIGTERM or Ctrl-C
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from . import logs
from .config import Settings

log = logging.getLogger("whisper_api.worker_host")


def worker(args: argparse.Namespace) -> int:
    from .supervisor import WORKER_HOST, Supervisor

    settings = Settings.from_env()
    if not settings.distributed:
        print("whisper-api worker: set WHISPER_API_QUEUE_URL (e.g. redis://redis-host:6379/0), the same "
              "value as on the API nodes", file=sys.stderr)
        return 2
    supervisor = Supervisor(settings, role=WORKER_HOST)
    logs.setup(settings.log_level, supervisor.state.log)

    def stop(signum, frame):
        supervisor.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker host %s (pid %d): %s", settings.host, os.getpid(),
             ", ".join(slot.name for slot in supervisor.slots))
    supervisor.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="whisper-api", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="run this host's device workers on the distributed queue "
                                       "(settings: the WHISPER_API_* variables)")
    args = parser.parse_args(argv)
    return {"worker": worker}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
