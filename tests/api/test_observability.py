"""/metrics, the request id, and JSON access logs that never carry keys, photos or embeddings."""

import json
import logging
import os
import re
from pathlib import Path

from app.cli import prepare_multiprocess_dir
from app.core.observability import JsonFormatter, log_config

from .conftest import ADMIN, upload


def sample(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_by_route_template_and_time_each_stage(client, photos):
    before = client.get("/metrics").text
    files = [upload(p, "images") for p in photos["Emma_Watson"][:2]]
    assert client.post("/api/v1/enroll", data={"name": "Emma Watson"}, files=files).status_code == 201
    assert client.post("/api/v1/identify", files=[upload(photos["Emma_Watson"][2])]).status_code == 200
    assert client.get("/api/v1/people/no-such-person").status_code == 404
    assert client.get("/no/such/path/at/all").status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = r.text

    def grew(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("faceshot_http_requests_total", method="POST", route="/api/v1/identify", status="200") == 1
    assert grew("faceshot_http_request_duration_seconds_count",
                method="POST", route="/api/v1/identify", status="200") == 1
    # a template, not the URL: ids and scanners' paths do not become label values
    assert grew("faceshot_http_requests_total", method="GET", route="/api/v1/people/{person_id}", status="404") == 1
    assert grew("faceshot_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert "no-such-person" not in after and "/no/such/path" not in after
    # two enrollment photos and one query: three detections and embeddings, one gallery search
    assert grew("faceshot_pipeline_stage_seconds_count", stage="detect") == 3
    assert grew("faceshot_pipeline_stage_seconds_count", stage="embed") == 3
    assert grew("faceshot_pipeline_stage_seconds_count", stage="search") == 1
    assert sample(after, "faceshot_gallery_people") == 1
    assert 'faceshot_http_request_duration_seconds_bucket{le="0.1",method="POST",route="/api/v1/identify"' in after


def test_request_id_is_echoed_or_generated(client):
    r = client.get("/api/v1/health", headers={"X-Request-ID": "cam-7:frame-0042"})
    assert r.headers["x-request-id"] == "cam-7:frame-0042"
    generated = client.get("/api/v1/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    # ids that could forge log lines are replaced, not echoed
    r = client.get("/api/v1/health", headers={"X-Request-ID": "x\" , \"level\": \"error"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    # errors and refusals carry it too
    r = client.get("/api/v1/people/none", headers={"X-Request-ID": "err-1"})
    assert r.status_code == 404 and r.headers["x-request-id"] == "err-1"
    r = client.get("/api/v1/keys", headers={"X-API-Key": "wrong", "X-Request-ID": "auth-1"})
    assert r.status_code == 401 and r.headers["x-request-id"] == "auth-1"


def test_access_logs_are_json_with_the_request_id_and_no_secrets(client, photos, caplog):
    caplog.set_level(logging.INFO, logger="faceshot.access")
    photo = photos["Emma_Watson"][0]
    client.post("/api/v1/identify", files=[upload(photo)], headers={"X-Request-ID": "log-test-1"})
    client.get("/api/v1/people?limit=2&search=Emma%20Secret", headers={"X-Request-ID": "log-test-2"})
    records = [r for r in caplog.records if r.name == "faceshot.access"]
    assert records
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(r)) for r in records]
    entry = next(e for e in lines if e.get("route") == "/api/v1/identify")
    assert entry["request_id"] == "log-test-1" and entry["level"] == "info" and entry["pid"] > 0
    assert entry["status"] == 200 and entry["method"] == "POST" and entry["duration_ms"] > 0
    assert entry["path"] == "/api/v1/identify"
    listed = next(e for e in lines if e.get("request_id") == "log-test-2")
    assert listed["status"] == 200 and listed["path"] == "/api/v1/people"  # no query string
    text = "\n".join(formatter.format(r) for r in caplog.records)
    assert ADMIN not in text and "Emma Secret" not in text and "limit=2" not in text
    assert photo.read_bytes()[:64].hex() not in text


def test_log_config_routes_uvicorn_and_faceshot_through_the_json_formatter():
    config = log_config("warning")
    assert config["loggers"]["faceshot"]["level"] == "WARNING"
    assert config["loggers"]["uvicorn.access"]["handlers"] == []  # replaced by faceshot.access
    assert config["formatters"]["json"]["()"] is JsonFormatter
    assert all(config["handlers"][h]["formatter"] == "json" for h in config["handlers"])


def test_multiprocess_dir_is_made_fresh_for_several_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # so that teardown restores the variable as it was
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert prepare_multiprocess_dir(1) is None
    made = prepare_multiprocess_dir(2)
    assert made and not list(Path(made).iterdir())
    Path(made).rmdir()
    stale = tmp_path / "prom"
    stale.mkdir()
    (stale / "counter_123.db").write_bytes(b"old")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(stale))
    assert prepare_multiprocess_dir(3) == str(stale) and not list(stale.iterdir())
    assert prepare_multiprocess_dir(1) is None
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
