"""Polishing through g4f against a real OpenAI-compatible HTTP server on loopback."""
import pytest

from loopback import FakeLLM
from whisper_api.config import Settings
from whisper_api.llm import polish, prompt_for

TRANSCRIPT = "[00:00] [Клиент] алло здравствуйте\n[00:03] [Сотрудник] добрый день слушаю вас"


def transcript_of(prompt: str) -> str:
    return prompt[prompt.index("[00:00]"):]


@pytest.fixture
def llm():
    server = FakeLLM(reply=lambda prompt: transcript_of(prompt).replace("алло", "Алло,"),
                     api_key="sk-test-secret")
    yield server
    server.close()


def settings(server, **overrides) -> Settings:
    values = dict(llm_base_url=server.base_url, llm_api_key="sk-test-secret", llm_model="local-model",
                  llm_timeout=5)
    return Settings(**(values | overrides))


def test_polished_text_comes_back(llm):
    text, error = polish(TRANSCRIPT, "ru", settings(llm))
    assert error is None
    assert text.startswith("[00:00] [Клиент] Алло, здравствуйте")
    request = llm.requests[-1]
    assert request["path"] == "/v1/chat/completions" and request["body"]["model"] == "local-model"
    assert request["headers"]["Authorization"] == "Bearer sk-test-secret"
    assert "таймкоды" in request["body"]["messages"][-1]["content"]  # the Russian prompt


def test_wrong_key_keeps_the_transcript_and_hides_the_key(llm):
    text, error = polish(TRANSCRIPT, "ru", Settings(llm_base_url=llm.base_url, llm_api_key="sk-wrong-key",
                                                    llm_timeout=5))
    assert text == TRANSCRIPT and error.startswith("the LLM failed")
    assert "sk-wrong-key" not in error


def test_slow_llm_times_out(llm):
    llm.delay = 3
    text, error = polish(TRANSCRIPT, "en", settings(llm, llm_timeout=1))
    assert text == TRANSCRIPT and "did not answer within 1s" in error


def test_server_down(llm):
    url = llm.base_url
    llm.close()
    text, error = polish(TRANSCRIPT, "en", Settings(llm_base_url=url, llm_timeout=5))
    assert text == TRANSCRIPT and error.startswith("the LLM failed")


def test_a_polish_that_loses_content_is_refused(llm):
    llm.reply = lambda prompt: "Summary: a call."
    text, error = polish(TRANSCRIPT, "ru", settings(llm))
    assert text == TRANSCRIPT and "kept only" in error


def test_prompt_template_override():
    custom = Settings(llm_prompt="Fix this:\n{text}\nThanks")
    assert prompt_for("hello", "en", custom) == "Fix this:\nhello\nThanks"
    assert prompt_for("hello", "de", Settings()).endswith("\n\nhello")
