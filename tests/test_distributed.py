"""The distributed queue's pieces that need no Redis: tokens, node addresses, refusing cleanly."""
import time

import pytest

from conftest import free_port
from whisper_api import cluster, distributed
from whisper_api.config import Settings
from whisper_api.exceptions import Unavailable
from whisper_api.jobs import device_key, gpu_id


def test_job_tokens_are_per_job_and_per_node_secret(tmp_path):
    settings = Settings(data_dir=tmp_path, queue_url="redis://127.0.0.1:1/0")
    secret = distributed.node_secret(settings)
    assert distributed.node_secret(settings) == secret  # kept in the data dir across restarts
    assert (tmp_path / distributed.SECRET_FILE).stat().st_mode & 0o777 == 0o600
    token = distributed.job_token(secret, "job-1")
    assert token != distributed.job_token(secret, "job-2")
    assert token != distributed.job_token(b"another node", "job-1")
    assert distributed.node_secret(Settings(data_dir=tmp_path, node_secret="set")) == b"set"


def test_node_url():
    assert distributed.node_url(Settings(bind="127.0.0.1:8123")) == "http://127.0.0.1:8123"
    assert distributed.node_url(Settings(bind="0.0.0.0:8000", host_name="api-1")) == "http://api-1:8000"
    assert distributed.node_url(Settings(node_url="https://api.example/")) == "https://api.example"


def test_redis_down_refuses_fast_without_showing_the_password(tmp_path):
    port = free_port()  # nothing listens there
    settings = Settings(data_dir=tmp_path, queue_url=f"redis://:hunter2@127.0.0.1:{port}/0")
    assert "hunter2" not in repr(settings)
    started = time.monotonic()
    with pytest.raises(Unavailable) as refused:
        distributed.CeleryDispatcher(settings).submit("job-1")
    assert time.monotonic() - started < 10
    assert "Redis" in refused.value.message and "hunter2" not in refused.value.message
    assert cluster.hosts(settings) == []  # the views go on without the worker hosts


def test_devices_of_worker_hosts_keep_their_host_in_the_seed_names():
    assert device_key("cuda:1") == "1" and device_key("cpu:0") == "cpu:0"
    assert device_key("gpu-7/cuda:1") == "gpu-7/1" and device_key("gpu-7/cpu:0") == "gpu-7/cpu:0"
    assert gpu_id("gpu-7/cuda:3") == 3 and gpu_id("gpu-7/cpu:0") is None
