"""Polishing a transcript through an LLM with g4f: its own providers, or any OpenAI-compatible
endpoint (``WHISPER_API_LLM_BASE_URL``: a local Ollama, vLLM, OpenAI itself…)."""
from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from .config import Settings

log = logging.getLogger(__name__)

PROMPTS = {
    "ru": (
        "Ниже расшифровка аудиозаписи, сделанная автоматически. Исправь ошибки распознавания, "
        "орфографию и пунктуацию, не меняя смысла и ничего не добавляя. Сохрани каждую строку, "
        "таймкоды вида [мм:сс] и имена ролей в квадратных скобках в начале строк. "
        "Ответь только исправленным текстом.\n\n{text}"
    ),
    "en": (
        "Below is an automatic transcript of an audio recording. Fix recognition errors, "
        "spelling and punctuation without changing the meaning or adding anything. Keep every "
        "line, the [mm:ss] time codes and the role names in square brackets at the start of "
        "lines. Answer with the corrected text only.\n\n{text}"
    ),
}
MIN_KEPT_WORDS = 0.6  # a polish that keeps fewer of the transcript's words lost content

_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="llm")


def prompt_for(text: str, language: str | None, settings: Settings) -> str:
    template = settings.llm_prompt or PROMPTS["ru" if language == "ru" else "en"]
    return template.replace("{text}", text) if "{text}" in template else f"{template}\n\n{text}"


def _complete(prompt: str, settings: Settings) -> str:
    from g4f.client import Client

    client = Client(base_url=settings.llm_base_url or None, api_key=settings.llm_api_key or None)
    response = client.chat.completions.create(
        model=settings.llm_model,
        messages=[{"role": "user", "content": prompt}],
        timeout=settings.llm_timeout,
    )
    return (response.choices[0].message.content or "").strip()


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", re.sub(r"\[[^\]]*\]", " ", text.lower()))


def polish(text: str, language: str | None, settings: Settings) -> tuple[str, str | None]:
    """The polished text and None, or ``text`` unchanged and why it was kept."""
    future = _pool.submit(_complete, prompt_for(text, language, settings), settings)
    try:
        polished = future.result(timeout=settings.llm_timeout)
    except FutureTimeout:
        return text, f"the LLM did not answer within {settings.llm_timeout:.0f}s"
    except Exception as exc:
        return text, f"the LLM failed: {_redact(str(exc) or type(exc).__name__, settings)}"
    kept = _kept_fraction(text, polished)
    if kept < MIN_KEPT_WORDS:
        return text, (f"the polished text kept only {kept:.0%} of the transcript's words; "
                      "the transcript is returned as it was")
    return polished, None


def _kept_fraction(original: str, polished: str) -> float:
    source = _words(original)
    if not source:
        return 1.0
    remaining = set(_words(polished))
    return sum(word in remaining for word in source) / len(source)


def _redact(message: str, settings: Settings) -> str:
    """Error texts may echo the request; the key never leaves this module."""
    if settings.llm_api_key:
        message = message.replace(settings.llm_api_key, "***")
    return message[:500]
