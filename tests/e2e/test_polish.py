"""upgrade_transcribation through the running service, with a real LLM server on loopback."""
import pytest

from conftest import DATA, wer
from loopback import FakeLLM

EN = DATA / "en.mp3"


@pytest.fixture
def llm():
    server = FakeLLM(reply=lambda prompt: prompt[prompt.index("[00:00]"):].upper(), api_key="sk-e2e-key")
    yield server
    server.close()


def test_polished_result_and_raw_result(make_service, llm):
    service = make_service(workers=2, WHISPER_API_LLM_BASE_URL=llm.base_url,
                           WHISPER_API_LLM_API_KEY="sk-e2e-key", WHISPER_API_LLM_TIMEOUT="10")
    task_id = service.submit(EN, model_name="tiny.en", upgrade_transcribation="true").json()["task_id"]
    final = service.wait_done(task_id)
    assert final["status"] == "done" and final["upgrade_error"] is None, final
    assert final["result"] == final["raw_result"].upper().strip()
    assert wer((DATA / "en.txt").read_text(), final["raw_result"]) <= 0.25
    assert final["options"]["upgrade_transcribation"] is True
    # The key reaches the LLM and nothing else.
    assert llm.requests[-1]["headers"]["Authorization"] == "Bearer sk-e2e-key"
    assert "sk-e2e-key" not in service.get("/api/logs").text
    assert "sk-e2e-key" not in service.log_text()
    assert "sk-e2e-key" not in service.get(f"/api/status/{task_id}").text


def test_llm_down_still_ends_done(make_service, llm):
    url = llm.base_url
    llm.close()
    service = make_service(workers=1, WHISPER_API_LLM_BASE_URL=url, WHISPER_API_LLM_TIMEOUT="5")
    task_id = service.submit(EN, model_name="tiny.en", upgrade_transcribation="true").json()["task_id"]
    final = service.wait_done(task_id)
    assert final["status"] == "done"
    assert final["result"] == final["raw_result"] and "good morning" in final["result"].lower()
    assert final["upgrade_error"].startswith("the LLM failed")
