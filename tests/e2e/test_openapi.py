"""The OpenAPI document against the running service: schemathesis fuzzes every operation.

The schema is built from ``whisper_api.openapi.document()``, which the service serves as is
(checked below); schemathesis' own fixture-based loader breaks on pytest 9.
"""
from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import DATA, Service
from whisper_api.openapi import document

# Every answer must be documented and match its schema, and no input may cause a 5xx.
# (Not "positive data is accepted": a generated file is never audio, so 400 is right.)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def service(tmp_path_factory, models_dir):
    with Service(tmp_path_factory.mktemp("openapi") / "data", models_dir, workers=2) as service:
        yield service


@pytest.fixture(scope="module")
def done_task(service) -> str:
    """A finished job, so status, result and queue answers carry real data."""
    task_id = service.submit(DATA / "en.mp3", model_name="tiny.en", language="en").json()["task_id"]
    assert service.wait_done(task_id)["status"] == "done"
    return task_id


schema = schemathesis.openapi.from_dict(document())


@schema.parametrize()
@settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_api_or_its_schema(case, service, done_task):
    case.call_and_validate(base_url=service.url, checks=CHECKS, timeout=30)


@pytest.mark.parametrize("path, method, parameters", [
    ("/api/status/{task_id}", "GET", {}),
    *[("/api/result/{task_id}", "GET", {"query": {"format": fmt}}) for fmt in ("txt", "json", "srt", "vtt", "tsv")],
    ("/api/queue", "GET", {}),
    ("/api/health", "GET", {}),
    ("/api/model_status", "GET", {}),
    ("/api/gpus", "GET", {}),
    ("/api/logs", "GET", {}),
    ("/api/models", "GET", {}),
    ("/v1/models", "GET", {}),
    ("/readyz", "GET", {}),
    ("/metrics", "GET", {}),
])
def test_real_answers_match_the_schema(service, done_task, path, method, parameters):
    path_parameters = {"task_id": done_task} if "{task_id}" in path else None
    case = schema[path][method].Case(path_parameters=path_parameters, **parameters)
    assert case.call_and_validate(base_url=service.url, checks=CHECKS).status_code == 200


def test_docs_page_renders_the_document(service):
    page = requests.get(service.url + "/api/docs", timeout=10)
    assert page.status_code == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("/static/js/apidocs.js", "/static/css/apidocs.css", "/api/openapi.json"):
        assert asset in page.text
        assert requests.get(service.url + asset, timeout=10).status_code == 200
    served = requests.get(service.url + "/api/openapi.json", timeout=10).json()
    assert served == document()
    assert {"/api/transcribe", "/api/status/{task_id}", "/api/result/{task_id}", "/api/task/{task_id}",
            "/api/queue", "/api/gpus", "/api/model_status", "/api/models", "/api/logs", "/api/health",
            "/v1/audio/transcriptions", "/v1/audio/translations", "/v1/models", "/v1/models/{model}",
            "/metrics", "/healthz", "/readyz"} <= set(served["paths"])
