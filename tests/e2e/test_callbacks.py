"""callback_url delivery, the shipped n8n workflows and the idle webhook, against real HTTP
receivers on loopback."""
import json
import re
import time

import pytest
import requests

from conftest import DATA, ROOT, free_port
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


def n8n_workflow(name):
    flow = json.loads((ROOT / "docs" / "n8n" / name).read_text())
    nodes = {node["name"]: node for node in flow["nodes"]}
    for source, outputs in flow["connections"].items():  # every link joins two real nodes
        assert source in nodes
        assert all(link["node"] in nodes for branch in outputs["main"] for link in branch)
    return nodes


def n8n_submit(service, node, clip, resume_url=None):
    """Send the multipart request the workflow's HTTP Request node describes, as n8n would."""
    params = node["parameters"]
    fields, files = {}, {}
    for field in params["bodyParameters"]["parameters"]:
        if field.get("parameterType") == "formBinaryData":
            files[field["name"]] = (clip.name, clip.read_bytes())
        else:
            fields[field["name"]] = resume_url if field["value"] == "={{ $execution.resumeUrl }}" else field["value"]
    url = params["url"].replace("http://whisper-api:8000", service.url)
    return requests.post(url, files=files, data=fields, timeout=30)


def test_n8n_workflows_match_the_api(make_service, receivers):
    service = make_service(workers=1, WHISPER_API_PRELOAD_MODELS="base")
    call = DATA / "call_stereo.mp3"

    wait_node = receivers(409, 200)  # n8n: 409 until the execution reaches its Wait node
    nodes = n8n_workflow("transcribe-callback.json")
    assert nodes["Wait for the transcript"]["parameters"]["httpMethod"] == "POST"
    response = n8n_submit(service, nodes["Submit to whisper_api"], call, wait_node.url + "/webhook-waiting/7")
    assert response.status_code == 200, response.text
    wait_for(lambda: len(wait_node.requests) == 2, 120)
    body = wait_node.requests[-1]["body"]
    assert body["status"] == "done" and "[Клиент]" in body["result"] and "[Сотрудник]" in body["result"]

    nodes = n8n_workflow("transcribe-polling.json")
    task_id = n8n_submit(service, nodes["Submit to whisper_api"], call).json()["task_id"]
    status_url = nodes["Get status"]["parameters"]["url"]
    status_url = status_url.lstrip("=").replace("http://whisper-api:8000", service.url)
    status_url = re.sub(r"\{\{.*\}\}", task_id, status_url)
    final = wait_for(lambda: (s := requests.get(status_url, timeout=10).json())["status"] in ("done", "error") and s)
    assert final["status"] == "done" and final["task_id"] == task_id
