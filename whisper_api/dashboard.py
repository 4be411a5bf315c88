"""The dashboard: the live page at ``/`` and the finished transcripts at ``/completed``.

The pages are rendered here from the settings and the job store (never from the worker
pool, so they load while it restarts); their JavaScript then polls the JSON API.
"""
from __future__ import annotations

import logging

from flask import Blueprint, redirect, render_template, request

from . import auth, i18n
from .api import model_names, services
from .jobs import LANGUAGES, MAX_SPEED, MAX_TRACKS, MIN_SPEED, JobOptions, JobStatus
from .models import local_models

log = logging.getLogger(__name__)

bp = Blueprint("dashboard", __name__)

RESULTS_LIMIT = 100
FAILED_LIMIT = 50
RESULT_FORMATS = ("txt", "srt", "vtt", "json", "tsv")
# Listed first in the language menu, by their own names; the other Whisper codes follow.
COMMON_LANGUAGES = {
    "ru": "Русский", "en": "English", "uk": "Українська", "be": "Беларуская", "kk": "Қазақша",
    "de": "Deutsch", "fr": "Français", "es": "Español", "it": "Italiano", "pt": "Português",
    "pl": "Polski", "tr": "Türkçe", "zh": "中文", "ja": "日本語", "ko": "한국어", "ar": "العربية",
}
# Everything the pages load comes from the service itself: they must work on an offline LAN.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@bp.context_processor
def page_context() -> dict:
    lang = i18n.choose(request)
    strings = i18n.strings(lang)

    def t(key: str, **values) -> str:
        return i18n.fill(strings[key], values)

    return {"lang": lang, "languages": i18n.LANGUAGES, "strings": strings, "t": t,
            "result_formats": RESULT_FORMATS}


@bp.after_request
def page_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.vary.update(("Accept-Language", "Cookie"))
    lang = request.args.get("lang")
    if lang in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, max_age=i18n.COOKIE_MAX_AGE, samesite="Lax")
    return response


@bp.app_template_filter("clock")
def clock(seconds: float | None) -> str:
    """``75.4`` -> ``1:15``; hours when there are any."""
    if seconds is None:
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@bp.app_template_filter("stamp")
def stamp(iso: str | None) -> str:
    """An ISO time to the minute, for pages without JavaScript (which shows local time)."""
    return f"{iso[:16].replace('T', ' ')} UTC" if iso else ""


def model_groups() -> list[tuple[str, list[str]]]:
    """The form's model menu: preloaded, then local folders, then hub names."""
    settings = services().settings
    preload = list(dict.fromkeys(settings.preload_models))
    local = sorted(local_models(settings.models_dir) - set(preload))
    hub = sorted(model_names() - set(preload) - set(local))
    groups = [("models_preloaded", preload), ("models_local", local), ("models_hub", hub)]
    return [(label, names) for label, names in groups if names]


@bp.get("/")
def index():
    settings = services().settings
    return render_template(
        "index.html",
        model_groups=model_groups(),
        # A preloaded model answers at once; without one, the API's own default.
        selected_model=next(iter(settings.preload_models), JobOptions.model_name),
        common_languages=COMMON_LANGUAGES,
        other_languages=sorted(LANGUAGES.difference(COMMON_LANGUAGES)),
        max_upload_mb=settings.max_upload_mb,
        max_tracks=MAX_TRACKS,
        min_speed=MIN_SPEED,
        max_speed=MAX_SPEED,
    )


@bp.get("/completed")
def completed():
    store = services().store
    done = [job.to_dict(with_segments=False) for job in
            store.by_status(JobStatus.DONE, RESULTS_LIMIT, newest_first=True)]
    failed = [job.to_dict(with_segments=False) for job in
              store.by_status(JobStatus.ERROR, FAILED_LIMIT, newest_first=True)]
    return render_template("completed.html", done=done, failed=failed, counts=store.counts())


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Ask for the API key once; a valid one is kept in an HttpOnly cookie."""
    keys = services().settings.api_keys
    target = auth.local_target(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next=target, error=False, open=not keys)
    key = request.form.get("key", "").strip()
    if not keys or auth.valid(key, keys):
        response = redirect(target)
        if keys:
            response.set_cookie(auth.COOKIE, key, httponly=True, samesite="Strict", secure=request.is_secure,
                                max_age=30 * 24 * 3600)
        return response
    log.warning("login with a wrong key from %s", request.remote_addr)
    return render_template("login.html", next=target, error=True, open=False), 401
