"""gunicorn settings for whisper_api; the side effects live in the server hooks below.

The master starts ONE supervisor process (which owns the live state and the device
workers) and stops it on exit; it never imports the engine or touches CUDA itself.
"""
import os

from whisper_api.config import Settings

settings = Settings.from_env()

bind = settings.bind
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads let a slow client trickling an upload hold one thread, not a whole worker.
worker_class = "gthread"
threads = int(os.environ.get("WHISPER_API_THREADS", "8"))
timeout = 120
# Idle keep-alive connections wait in the poller, not in a thread. Longer than a polling
# client's usual interval, so its next request does not race the server closing the socket.
keepalive = 10
# gunicorn's control socket is shared by every instance of a user (~/.gunicorn/); unused here.
control_socket_disable = True
# Each turn of a worker's loop touches its heartbeat file: about 0.25 ms on a disk-backed /tmp,
# a few µs on a tmpfs (as gunicorn's docs advise).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
graceful_timeout = int(settings.shutdown_grace) + 10
# Uploads are spooled to disk by Werkzeug; keep gunicorn's own buffers default.
accesslog = "-" if os.environ.get("WHISPER_API_ACCESS_LOG") else None
errorlog = "-"
loglevel = settings.log_level.lower()
proc_name = "whisper_api"

_supervisor = None


def on_starting(server):
    global _supervisor
    from whisper_api.supervisor import Handle

    # The supervisor first: the first transcription after a start waits for its device workers.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _supervisor = Handle(settings)
    _supervisor.start()
    server.log.info("supervisor started (pid %s)", _supervisor.process.pid)
    from whisper_api.auth import warn_if_open  # imports Flask, which the HTTP workers then inherit

    warning = warn_if_open(settings)
    if warning:
        server.log.warning(warning)


def on_exit(server):
    if _supervisor is not None:
        server.log.info("stopping supervisor (pid %s)", _supervisor.process.pid)
        _supervisor.stop()
