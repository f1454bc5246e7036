"""Schemathesis, driven by the service's own OpenAPI document, against a real `faceshot serve`: no 5xx.

A short run (a few examples per operation, all phases: coverage, fuzzing, stateful); the long one is
the same command with a larger ``-n`` (see the README's "Security" notes). Key revocation is left out:
the stateful phase would otherwise revoke the very admin key it authenticates with.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.testing.server import ADMIN, Server

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))


@pytest.mark.slow
@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (pip install -e .[test])")
def test_openapi_driven_run_finds_no_server_error(tmp_path, server_factory, photos, database_url):
    """On SQLite and on PostgreSQL (the review of issue 26 found 17 answers of 500, all on PostgreSQL)."""
    server: Server = server_factory(tmp_path / "data", database_url)
    server.start(env={"FACESHOT_RATE_LIMIT": "", "FACESHOT_AUTH_FAILURE_LIMIT": ""})
    with server.client() as c:  # someone to find, so person and face routes reach past 404
        files = [("images", (f.name, f.read_bytes(), "image/jpeg")) for f in photos["Emma_Watson"][:2]]
        assert c.post("/enroll", data={"name": "Emma Watson"}, files=files).status_code == 201
    report = tmp_path / "report.json"
    run = subprocess.run(
        [SCHEMATHESIS, "run", f"http://127.0.0.1:{server.port}/openapi.json", "-H", f"X-API-Key: {ADMIN}",
         "--generation-with-security-parameters", "false", "--exclude-path-regex", "/keys/",
         "--checks", "not_a_server_error", "-n", "20", "--seed", "20261123", "--workers", "1",
         "--generation-database", "none", "--no-color", "--report", "json", "--report-json-path", str(report)],
        capture_output=True, text=True, timeout=400, cwd=tmp_path)  # its cache lands there, not in the checkout
    assert run.returncode == 0, run.stdout[-4000:]
    summary = run.stdout[run.stdout.find("SUMMARY"):]
    assert "passed" in summary and "Server error" not in summary, summary
    operations = json.loads(report.read_text())["operations"]
    # every operation but key revocation was called, the collection paths and admin accounts among them
    assert operations["tested"] == operations["selected"] == operations["total"] - 1 and operations["errored"] == 0
