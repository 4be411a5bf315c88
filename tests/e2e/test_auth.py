"""WHISPER_API_KEYS: every API call and the dashboard need a key; probes stay open."""
import requests

from conftest import DATA
from whisper_api.auth import warn_if_open
from whisper_api.config import Settings

KEYS = "key-one-7f3a,key-two-91bc"


def test_keys_guard_the_api_and_the_dashboard(make_service):
    service = make_service(workers=2, WHISPER_API_KEYS=KEYS)
    url = service.url

    denied = requests.get(url + "/api/queue", timeout=10)
    assert denied.status_code == 401 and "API key" in denied.json()["error"]
    assert requests.get(url + "/api/queue", headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
    assert requests.get(url + "/api/queue", headers={"Authorization": "Bearer key-one-7f3a"}, timeout=10).ok
    assert requests.get(url + "/api/queue", headers={"X-API-Key": "key-two-91bc"}, timeout=10).ok
    with open(DATA / "en.mp3", "rb") as handle:
        assert requests.post(url + "/api/transcribe", files={"file": handle}, timeout=10).status_code == 401
    task_id = service.submit(DATA / "en.mp3", model_name="tiny.en").json()["task_id"]
    assert service.wait_done(task_id)["status"] == "done"
    assert requests.get(f"{url}/api/result/{task_id}", timeout=10).status_code == 401
    assert requests.get(url + "/healthz", timeout=10).ok

    # A browser is sent to the login page once, then the cookie carries the key.
    browser = requests.Session()
    browser.headers["Accept"] = "text/html"
    first = browser.get(url + "/completed", allow_redirects=False, timeout=10)
    assert first.status_code == 302 and first.headers["Location"] == "/login?next=/completed"
    wrong = browser.post(url + "/login", data={"key": "guess", "next": "/completed"}, allow_redirects=False, timeout=10)
    assert wrong.status_code == 401 and "whisper_api_key" not in browser.cookies
    entered = browser.post(url + "/login", data={"key": "key-two-91bc", "next": "https://evil.example/"},
                           allow_redirects=False, timeout=10)
    assert entered.status_code == 302 and entered.headers["Location"] == "/"
    assert "HttpOnly" in entered.headers["Set-Cookie"]
    assert browser.get(url + "/", timeout=10).status_code == 200
    assert browser.get(url + "/api/queue", timeout=10).ok

    # Keys never show up in what the service writes or answers.
    for text in (service.log_text(), service.get("/api/logs").text, service.get(f"/api/status/{task_id}").text):
        assert "key-one-7f3a" not in text and "key-two-91bc" not in text


def test_open_service_warns_when_reachable_beyond_loopback():
    assert "without API keys" in warn_if_open(Settings(bind="0.0.0.0:8000"))
    assert warn_if_open(Settings(bind="127.0.0.1:8000")) is None
    assert warn_if_open(Settings(bind="0.0.0.0:8000", api_keys=("k",))) is None
