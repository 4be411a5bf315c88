"""Optional API keys (``WHISPER_API_KEYS``): without them the service is open, as the seed was.

With keys set, everything but the probes, ``/metrics``, static files and the login page
needs ``Authorization: Bearer <key>``, ``X-API-Key: <key>``, or the cookie the login page
(in the dashboard) sets, so a browser enters its key once and the dashboard works as usual.
"""
from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Flask, redirect, request

from .config import Settings
from .exceptions import ApiError

COOKIE = "whisper_api_key"
OPEN_PATHS = ("/healthz", "/readyz", "/metrics", "/login", "/static/", "/favicon.ico",
              "/internal/")  # worker hosts sign each request with the job's own token
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class Unauthorized(ApiError):
    status = 401


def presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key") or request.cookies.get(COOKIE)


def valid(key: str | None, keys: tuple[str, ...]) -> bool:
    # compare_digest against every key: the time taken does not tell which one nearly matched
    return bool(key) and sum(hmac.compare_digest(key.encode(), k.encode()) for k in keys) > 0


def init_app(app: Flask, settings: Settings) -> None:
    """Require a key on every request when ``settings.api_keys`` is set."""
    if not settings.api_keys:
        return

    @app.before_request
    def require_key():
        if request.path.startswith(OPEN_PATHS) or valid(presented_key(), settings.api_keys):
            return None
        if request.method == "GET" and _is_page(request.path) and request.accept_mimetypes.accept_html:
            return redirect(f"/login?next={request.full_path.rstrip('?')}")
        raise Unauthorized("a valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")


def local_target(target: str | None) -> str:
    """``target`` if it is a path on this service, else ``/``: the login page redirects nowhere else."""
    target = target or "/"
    if urlsplit(target).netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _is_page(path: str) -> bool:
    return path == "/api/docs" or not path.startswith(("/api/", "/v1/"))


def warn_if_open(settings: Settings) -> str | None:
    """The start-up warning for a service reachable beyond loopback without keys."""
    host = settings.bind.rsplit(":", 1)[0] if not settings.bind.startswith("unix:") else "127.0.0.1"
    if settings.api_keys or host in LOOPBACK:
        return None
    return (f"listening on {settings.bind} without API keys: anyone who can reach it can use it; "
            "set WHISPER_API_KEYS or bind to 127.0.0.1")
