"""The distributed queue for real: redis-server, one API node under gunicorn and two worker hosts.

Each worker host is ``python -m whisper_api worker`` in a data dir of its own with its own host
name, as it would run on another machine; they reach the API node over loopback HTTP.
"""
from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cluster import RedisServer, WorkerHost, devices, wait_for
from conftest import DATA, ROOT, Service, wer

EN = DATA / "en.mp3"
EN_TEXT = (DATA / "en.txt").read_text()
RU = DATA / "ru.mp3"
RU_TEXT = (DATA / "ru.txt").read_text()
REMOTE_TIMEOUT = 6  # seconds without a report before a job goes to another worker host

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed (scripts/test.sh installs it)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, models_dir):
    folder = tmp_path_factory.mktemp("cluster")
    redis_server = RedisServer(folder / "redis").start()
    hosts = [WorkerHost(name, folder, models_dir, redis_server.url).start() for name in ("host-a", "host-b")]
    node = Service(folder / "api" / "data", models_dir, workers=2, WHISPER_API_QUEUE_URL=redis_server.url,
                   WHISPER_API_REMOTE_TIMEOUT=str(REMOTE_TIMEOUT), WHISPER_API_PRELOAD_MODELS="tiny.en")
    try:
        node.start()
        wait_for(lambda: devices(node) >= {"host-a/cpu:0", "host-b/cpu:0"}, 120,
                 lambda: f"worker hosts not up:\n{hosts[0].log_text()}\n{hosts[1].log_text()}")
        yield node, hosts, redis_server
    finally:
        node.__exit__(None, None, None)
        for host in hosts:
            host.stop()
        redis_server.stop()


def test_jobs_spread_over_both_hosts_and_results_come_back(cluster):
    node, hosts, _ = cluster
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: node.submit(EN, model_name="tiny.en", language="en"), range(6)))
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    finals = [node.wait_done(answer.json()["task_id"], timeout=180) for answer in answers]
    assert [final["status"] for final in finals] == ["done"] * 6, finals
    for final in finals:
        assert wer(EN_TEXT, final["result"]) < 0.25, final["result"]
        assert final["attempts"] == 1
    assert {final["device"] for final in finals} == {"host-a/cpu:0", "host-b/cpu:0"}

    # The views show every host's devices and lines, labelled with the host.
    models = node.get("/api/model_status").json()
    assert models["host-a/cpu:0"] == {"tiny.en": "loaded"} and models["host-b/cpu:0"] == {"tiny.en": "loaded"}
    lines = node.get("/api/logs").json()
    assert {line["host"] for line in lines} >= {"host-a", "host-b"}
    done_on = {line["host"] for line in lines if "transcribed in" in line["msg"]}
    assert done_on == {"host-a", "host-b"}
    queue = node.get("/api/queue").json()
    assert {job["id"] for job in queue["completed"]} >= {final["task_id"] for final in finals}
    # Each worker host's copy of the audio is gone once the job is.
    for host in hosts:
        leftovers = list(Path(host.env["WHISPER_API_DATA_DIR"], "remote").rglob("*"))
        assert [path for path in leftovers if path.is_file()] == []


CHROMIUM = Path(os.environ.get("WHISPER_API_TEST_CHROMIUM", "/usr/bin/chromium"))


@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM}")
def test_dashboard_labels_every_device_and_log_line_with_its_host(cluster):
    sync_api = pytest.importorskip("playwright.sync_api")
    node, _, _ = cluster
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(node.url + "/")
            for host in ("host-a", "host-b"):
                sync_api.expect(page.locator(f'#devices [data-device="{host}/cpu:0"]')).to_be_visible()
                sync_api.expect(page.locator(f'#model-status [data-device="{host}/cpu:0"] h3')).to_have_text(
                    f"{host} · cpu:0")
                sync_api.expect(page.locator("#logs .log-host", has_text=f"[{host}]").first).to_be_visible()
            (ROOT / "test-artifacts" / "screenshots").mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ROOT / "test-artifacts" / "screenshots" / "cluster.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()


def test_forged_job_tokens_are_refused(cluster):
    node, _, _ = cluster
    task_id = node.submit(EN, model_name="tiny.en", language="en").json()["task_id"]
    for token in ("", "0" * 64):
        answer = requests.post(f"{node.url}/internal/jobs/{task_id}/claim", json={"holder": "intruder/cpu:0"},
                               headers={"X-Job-Token": token}, timeout=10)
        assert answer.status_code == 403 and "token" in answer.json()["error"]
    assert node.wait_done(task_id, timeout=120)["status"] == "done"


def test_redis_down_refuses_uploads_cleanly_and_work_resumes_when_it_returns(cluster):
    node, _, redis_server = cluster
    counts = node.get("/api/health").json()["counts"]
    uploads = Path(node.env["WHISPER_API_DATA_DIR"]) / "uploads"
    files_before = sorted(uploads.iterdir())
    redis_server.stop()
    try:
        answer = node.submit(EN, model_name="tiny.en", language="en")
        assert answer.status_code == 503, answer.text
        assert "Redis" in answer.json()["error"] and "redis://" not in answer.json()["error"]
        assert node.get("/api/health").json()["counts"] == counts  # no job half-created
        assert sorted(uploads.iterdir()) == files_before  # no file left behind
        assert node.get("/api/queue").status_code == 200  # the rest of the API still answers
    finally:
        redis_server.start()  # same port and folder: the append-only file brings the queue back
    task_id = None
    deadline = time.monotonic() + 60
    while task_id is None and time.monotonic() < deadline:
        answer = node.submit(EN, model_name="tiny.en", language="en")
        if answer.status_code == 200:
            task_id = answer.json()["task_id"]
        else:
            time.sleep(1)
    assert task_id, answer.text
    final = node.wait_done(task_id, timeout=120)  # the worker hosts have reconnected on their own
    assert final["status"] == "done" and final["device"].startswith("host-"), final


def test_a_worker_host_lost_mid_job_its_job_finishes_on_the_other(cluster):
    node, hosts, _ = cluster
    task_id = node.submit(RU, model_name="base", language="ru").json()["task_id"]
    status = {}

    def running():
        status.update(node.get(f"/api/status/{task_id}").json())
        return status["status"] == "processing"

    wait_for(running, 60, lambda: f"job never started: {status}")
    victim = next(host for host in hosts if status["device"].startswith(host.name + "/"))
    survivor = next(host for host in hosts if host is not victim)
    victim.kill()
    final = node.wait_done(task_id, timeout=180)
    assert final["status"] == "done", final
    assert final["device"].startswith(survivor.name + "/"), final
    assert final["attempts"] == 2
    assert wer(RU_TEXT, final["result"]) < 0.4, final["result"]
    lines = [line["msg"] for line in node.get("/api/logs").json()]
    assert any(task_id in line and "stopped reporting" in line for line in lines), lines
    # The lost host's devices leave the views once its entry expires.
    wait_for(lambda: not any(name.startswith(victim.name + "/") for name in devices(node)), 30)
