"""The image's exact Python environment serves: a fresh venv built by the image's own install steps
(docker/install-python.sh with the Dockerfile's arguments; torch from this machine's wheel cache instead of
torch's CPU index), with none of the test tools, runs the image's entrypoint on two workers, enrolls and identifies.

It is built once and reused (``.venv-image`` beside ``.venv``) until its inputs change, as ./run.sh reuses ``.venv``.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from app.testing.server import free_port
from tests.deploy.test_deploy import DOCKERFILE, ROOT, dockerfile_instructions

IMAGE_VENV = ROOT / ".venv-image"
INSTALL = ROOT / "docker" / "install-python.sh"
VARIANT = "cpu"  # the variant whose extras are built here: no GPU on a test machine


def image_install_steps() -> list[list[str]]:
    """The Dockerfile's install commands, as the arguments it gives docker/install-python.sh, for VARIANT."""
    text = DOCKERFILE.read_text()
    stage = re.search(rf"FROM \S+ AS base-{VARIANT}\n(.*?)(?=\nFROM )", text, re.S).group(1)
    extras = re.search(r'ENV FACESHOT_PIP_EXTRAS="([^"]*)"', stage).group(1)
    steps = []
    for op, arg in dockerfile_instructions():
        found = re.search(r"sh docker/install-python\.sh (.*)$", arg) if op == "RUN" else None
        if found:
            steps.append([a.strip('"').replace("${FACESHOT_PIP_EXTRAS}", extras) for a in found.group(1).split()])
    return steps


def test_the_image_installs_through_the_one_install_script():
    """The steps the environment below is built with are the image's: torch, then the app with the variant's
    extras (a Dockerfile that installed anything else would make this test's environment a different one)."""
    assert image_install_steps() == [["torch"], ["app", ""]]
    assert not re.search(r"\bpip3? install\b", DOCKERFILE.read_text())


@pytest.fixture(scope="session")
def image_venv() -> Path:
    """A venv made exactly as the image's (same script, arguments and extras); rebuilt when they change."""
    stamp = hashlib.sha256(b"".join(p.read_bytes() for p in (ROOT / "pyproject.toml", INSTALL, DOCKERFILE)))
    stamp = stamp.hexdigest()
    marker = IMAGE_VENV / ".faceshot-image-env"
    python = IMAGE_VENV / "bin" / "python"
    if not (python.exists() and marker.exists() and marker.read_text() == stamp):
        shutil.rmtree(IMAGE_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(IMAGE_VENV)], check=True)
        env = clean_environment()
        env["PIP"] = f"{python} -m pip --disable-pip-version-check -q"
        for step in image_install_steps():
            out = subprocess.run(["sh", str(INSTALL), *step], cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=1500)
            assert out.returncode == 0, f"install-python.sh {' '.join(step)} failed:\n{out.stdout}\n{out.stderr}"
        marker.write_text(stamp)
    return IMAGE_VENV


def clean_environment() -> dict[str, str]:
    """This process's environment without what would point Python at the test venv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def image_python_has(venv: Path, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                          env=clean_environment()).returncode == 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_image_environment_has_the_runtime_and_none_of_the_test_tools(image_venv, tmp_path):
    for module in ("httpx", "onnxruntime", "onnx", "faiss", "facenet_pytorch", "psycopg", "app.main"):
        assert image_python_has(image_venv, module), f"{module} is missing from the image's environment"
    for module in ("pytest", "playwright", "schemathesis", "dlib"):
        assert not image_python_has(image_venv, module), f"{module} (a test tool) is in the image's environment"
    # the service itself imports there: the check the Docker image's start would make first
    out = subprocess.run([str(image_venv / "bin" / "python"), "-c", "import app.main"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env=clean_environment())
    assert out.returncode == 0, out.stderr


# -- the image's entrypoint, run as a process ----------------------------------------------------
ADMIN = "deploy-test-admin-key-0123456789"


class LogReader(threading.Thread):
    """Collects the server's stdout (JSON lines) while it runs."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.lines = stream, []

    def run(self):
        for line in self.stream:
            self.lines.append(line.rstrip("\n"))

    def entries(self) -> list[dict]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def pid_of(self, request_id: str) -> int | None:
        return next((e["pid"] for e in self.entries() if e.get("request_id") == request_id), None)



@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_image_entrypoint_serves_two_workers_from_the_image_environment(image_venv, database_url, tmp_path, photos):
    """The image's ENTRYPOINT, with the image's environment first on the PATH, on SQLite and PostgreSQL."""
    entrypoint = json.loads(next(arg for op, arg in dockerfile_instructions() if op == "ENTRYPOINT"))
    port = free_port()
    prom = tmp_path / "prometheus"
    prom.mkdir()
    (prom / "counter_999999.db").write_bytes(b"left by a previous run")
    env = {**clean_environment(), "PATH": f"{image_venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
           "FACESHOT_WORKERS": "2", "FACESHOT_DATABASE_URL": database_url,
           "FACESHOT_DATA_DIR": str(tmp_path / "data"), "FACESHOT_ADMIN_KEY": ADMIN, "FACESHOT_DEVICE": "cpu",
           "OMP_NUM_THREADS": "1", "FACESHOT_TORCH_THREADS": "1", "FACESHOT_GALLERY_SYNC_INTERVAL_S": "0",
           "PROMETHEUS_MULTIPROC_DIR": str(prom)}
    # the image's own command line; later flags win, as with compose's `command:`
    proc = subprocess.Popen([*entrypoint, "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    logs = LogReader(proc.stdout)
    logs.start()
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"X-API-Key": ADMIN}
    try:
        deadline = time.monotonic() + 120
        while True:  # polling a starting server
            assert proc.poll() is None, "server exited:\n" + "\n".join(logs.lines)
            assert time.monotonic() < deadline, "not ready:\n" + "\n".join(logs.lines)
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert not (prom / "counter_999999.db").exists()  # the multiprocess directory was emptied at start

        r = httpx.get(f"{base}/health", headers={"X-Request-ID": "deploy-health"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "deploy-health"
        assert httpx.get(f"{base}/ready").json()["checks"] == {"model_loaded": True, "database": True}
        # dlib's ResNet on a CPU runs on ONNX Runtime there (a runtime dependency), and /model says so
        encoder = httpx.get(f"{base}/model", headers=headers).json()["encoder"]
        assert (encoder["runtime"], encoder["device"]) == ("onnx", "cpu"), encoder

        files = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in photos["Emma_Watson"][:2]]
        r = httpx.post(f"{base}/enroll", data={"name": "Emma Watson"}, files=files, timeout=60,
                       headers={**headers, "X-Request-ID": "deploy-enroll"})
        assert r.status_code == 201, r.text
        enrolled_by = None
        for _ in range(50):  # until the access line is written
            enrolled_by = logs.pid_of("deploy-enroll")
            if enrolled_by:
                break
            time.sleep(0.1)
        assert enrolled_by, "no JSON access log line with the request id:\n" + "\n".join(logs.lines[-20:])

        # new connections until the other worker answers one; every answer names her
        probe = photos["Emma_Watson"][2].read_bytes()
        other = None
        for i in range(40):
            r = httpx.post(f"{base}/identify", files={"image": ("q.jpg", probe, "image/jpeg")}, timeout=30,
                           headers={**headers, "X-Request-ID": f"deploy-identify-{i}"})
            assert r.status_code == 200 and r.json()["faces"][0]["person"]["name"] == "Emma Watson", r.text
            for _ in range(20):
                pid = logs.pid_of(f"deploy-identify-{i}")
                if pid:
                    break
                time.sleep(0.05)
            if pid and pid != enrolled_by:
                other = pid
                break
        assert other, "every identify went to the worker that enrolled"
        calls = i + 1

        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        # summed over both workers, whichever answered
        line = f'faceshot_http_requests_total{{method="POST",route="/api/v1/identify",status="200"}} {float(calls)}'
        assert line in metrics.splitlines(), [m for m in metrics.splitlines() if "requests_total" in m]
        assert 'faceshot_pipeline_stage_seconds_count{stage="search"}' in metrics
        assert ADMIN not in "\n".join(logs.lines)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode is not None


