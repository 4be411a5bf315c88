"""The Flask application factory."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import auth, internal, logs, openai_api
from .config import Settings
from .exceptions import ApiError, TooBusy
from .services import Services
from .uploads import UploadRequest

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def error_response(status: int, message: str):
    """Every JSON error the service sends: ``{"error": message}`` with ``status``, OpenAI's under /v1."""
    if request.path.startswith(openai_api.PREFIX):
        return openai_api.error_response(status, message)
    response = jsonify(error=message)
    response.status_code = status
    return response


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; ``settings`` default to the ``WHISPER_API_*`` environment."""
    settings = settings or Settings.from_env()
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.request_class = UploadRequest  # uploads are spooled into the data dir, then renamed
    app.config.from_mapping(
        # Werkzeug stops reading the body at this size and answers 413.
        MAX_CONTENT_LENGTH=settings.max_upload_mb * MB,
        # Form fields are small; the file part is streamed to a file in the uploads dir.
        MAX_FORM_MEMORY_SIZE=1 * MB,
    )
    app.json.ensure_ascii = False
    services = Services(settings)
    app.extensions["whisper_api"] = services
    logs.setup(settings.log_level, services.log_sink)

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        response = error_response(exc.status, exc.message)
        if isinstance(exc, TooBusy):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc):
        return error_response(413, f"the upload is larger than the {settings.max_upload_mb} MB limit")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith(("/api/", openai_api.PREFIX)) or not request.accept_mimetypes.accept_html:
            return error_response(exc.code or 500, exc.description or exc.name)
        return exc

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return error_response(500, "internal error; the service log has the details")

    from .api import bp as api_bp
    from .dashboard import bp as dashboard_bp
    from .metrics import bp as metrics_bp
    from .openapi import bp as openapi_bp

    auth.init_app(app, settings)
    app.register_blueprint(api_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(openai_api.bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(metrics_bp)
    internal.init_app(app, settings)
    return app
