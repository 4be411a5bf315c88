"""callback_url delivery and the idle webhook, against real HTTP receivers on loopback."""
import time

import pytest
import requests

from conftest import DATA, free_port
from loopback import Receiver

EN = DATA / "en.mp3"


@pytest.fixture
def receivers():
    made = []

    def make(*codes):
        made.append(Receiver(codes))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(predicate)


def test_callbacks_retry_on_409_and_stop_on_other_4xx(make_service, receivers):
    service = make_service(workers=2, WHISPER_API_CALLBACK_ATTEMPTS="3")
    n8n = receivers(409, 409, 200)  # n8n: "is running already" until its Wait node is reached
    gone = receivers(404)
    dead_url = f"http://127.0.0.1:{free_port()}/hook"

    ids = {name: service.submit(EN, model_name="tiny.en", callback_url=url).json()["task_id"]
           for name, url in (("n8n", n8n.url + "/webhook/abc"), ("gone", gone.url), ("dead", dead_url))}

    def callback(name):
        status = service.get(f"/api/status/{ids[name]}").json()
        return status if status["callback"]["state"] != "pending" else None

    delivered = wait_for(lambda: callback("n8n"), 60)
    assert delivered["callback"]["state"] == "delivered" and delivered["callback"]["attempts"] == 3
    assert [r["path"] for r in n8n.requests] == ["/webhook/abc"] * 3
    body = n8n.requests[-1]["body"]
    assert body["task_id"] == ids["n8n"] and body["status"] == "done"
    assert "good morning" in body["result"].lower() and body["segments"]
    gaps = [b["time"] - a["time"] for a, b in zip(n8n.requests, n8n.requests[1:])]
    assert gaps[1] > gaps[0] >= 0.9  # backoff grows

    stopped = wait_for(lambda: callback("gone"), 60)
    assert stopped["callback"]["state"] == "failed" and stopped["callback"]["attempts"] == 1
    assert stopped["callback"]["error"].startswith("HTTP 404")
    assert stopped["status"] == "done" and stopped["result"]  # the result stays pollable

    unreachable = wait_for(lambda: callback("dead"), 60)
    assert unreachable["callback"]["state"] == "failed" and unreachable["callback"]["attempts"] == 3


def test_bad_callback_url_is_400(make_service):
    service = make_service(workers=1)
    for url in ("ftp://example.com/x", "javascript:alert(1)", "http://", "not a url"):
        with open(EN, "rb") as handle:
            response = requests.post(service.url + "/api/transcribe", files={"file": handle},
                                     data={"callback_url": url}, timeout=10)
        assert response.status_code == 400 and "callback_url" in response.json()["error"]


def test_idle_webhook_fires_once_per_idle_period(make_service, receivers):
    hook = receivers(200)
    service = make_service(workers=1, WHISPER_API_IDLE_WEBHOOK_URL=hook.url + "/idle",
                           WHISPER_API_IDLE_WEBHOOK_MINUTES="0.05")  # 3 s
    timer = wait_for(lambda: service.get("/api/health").json()["idle_webhook"])
    assert timer["interval_seconds"] == 3
    wait_for(lambda: hook.requests, 20)
    time.sleep(4)
    assert len(hook.requests) == 1  # once, not every interval
    first = hook.requests[0]["body"]
    assert first["event"] == "idle" and first["idle_seconds"] >= 3
    assert service.get("/api/health").json()["idle_webhook"]["fired"] is True

    task_id = service.submit(EN, model_name="tiny.en").json()["task_id"]
    assert service.wait_done(task_id)["status"] == "done"
    wait_for(lambda: len(hook.requests) == 2, 20)  # a new idle period after the job
