"""Load on loopback, bounded: many uploads while many clients poll; a slow uploader."""
import random
import socket
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import DATA

EN = DATA / "en.mp3"


def test_50_uploads_while_200_clients_poll(make_service, tmp_path):
    short = tmp_path / "short.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-t", "3", "-i", str(EN), "-c", "copy", str(short)],
                   check=True)
    service = make_service(workers=4)
    ids: list[str] = []
    codes: list[int] = []
    latencies: list[float] = []
    done = threading.Event()

    def upload(_):
        with open(short, "rb") as handle:
            response = requests.post(service.url + "/api/transcribe", files={"file": handle},
                                     data={"model_name": "tiny.en"}, timeout=60)
        codes.append(response.status_code)
        ids.append(response.json()["task_id"])

    def poll(_):
        with requests.Session() as session:
            while not done.is_set():
                if ids:
                    started = time.perf_counter()
                    response = session.get(f"{service.url}/api/status/{random.choice(ids)}", timeout=30)
                    latencies.append(time.perf_counter() - started)
                    codes.append(response.status_code)
                time.sleep(2.0)

    with ThreadPoolExecutor(250) as pool:
        pollers = [pool.submit(poll, n) for n in range(200)]
        list(pool.map(upload, range(50)))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            counts = service.get("/api/queue").json()["counts"]
            if counts["done"] + counts["error"] == 50:
                break
            time.sleep(1)
        done.set()
        for poller in pollers:
            poller.result()

    assert len(ids) == 50 and all(code < 500 for code in codes), sorted(set(codes))
    finals = [service.get(f"/api/status/{task_id}").json() for task_id in ids]
    assert [f["status"] for f in finals] == ["done"] * 50
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"\nstatus requests: {len(latencies)}, p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms")


def test_a_slow_uploader_does_not_block_status(make_service):
    service = make_service(workers=1)  # one HTTP worker: only its threads can answer
    task_id = service.wait_done(service.submit(EN, model_name="tiny.en").json()["task_id"])["task_id"]
    body = b"x" * 2000
    slow = socket.create_connection(("127.0.0.1", service.port))
    slow.sendall(b"POST /api/transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                 b"boundary=b\r\nContent-Length: %d\r\n\r\n" % len(body))
    try:
        for chunk in range(10):
            slow.sendall(body[chunk * 10:(chunk + 1) * 10])  # 10 bytes every 0.3 s
            started = time.perf_counter()
            assert service.get(f"/api/status/{task_id}").json()["status"] == "done"
            assert time.perf_counter() - started < 2.0
            time.sleep(0.3)
    finally:
        slow.close()
