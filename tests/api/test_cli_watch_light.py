"""The door PC's light install: `faceshot watch --server` without torch, from requirements-watch.txt alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from app.testing.server import ROOT, Server

from .conftest import upload
from .test_watch import START, _check_events, make_clip


def test_importing_the_watch_loop_imports_no_torch_and_no_face_pipeline():
    """What `watch --server` imports (the loop, the remote recognizer, the CLI) leaves the face model out."""
    probe = ("import sys, app.cli, app.live.watch\n"
             "from app.live.watch import RemoteRecognizer, watch\n"
             "print(sorted(m for m in ('torch', 'models.pipeline', 'app.live.watch_local') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _clean_env(**extra) -> dict[str, str]:
    """This environment without what would point Python at the test venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, **extra}


@pytest.mark.slow  # a venv built from the local wheel cache (about 30 s), a server, and a clip through it
@pytest.mark.timeout(900)
def test_watch_through_a_server_runs_from_the_light_install(tmp_path, photos):
    # the package from a copy of the checkout, so that the build leaves nothing in it
    src = tmp_path / "src"
    for part in ("app", "models"):
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md", "requirements-watch.txt"):
        shutil.copy(ROOT / part, src / part)
    venv = tmp_path / "door-pc"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_clean_env(), timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for step in ([*pip, "--no-deps", str(src)], [*pip, "-r", str(src / "requirements-watch.txt")]):
        out = subprocess.run(step, env=_clean_env(), capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"{' '.join(step)}:\n{out.stdout}\n{out.stderr}"
    no_torch = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], env=_clean_env(),
                              capture_output=True, text=True, timeout=60)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr

    clip = make_clip(photos, tmp_path / "door.avi")
    (tmp_path / "server").mkdir()
    server = Server(tmp_path / "server" / "data")
    server.start()
    try:
        http = server.client()
        for who in ("Emma_Watson", "Wen_Jiabao"):
            assert http.post("/enroll", data={"name": who.replace("_", " ")},
                             files=[upload(p, "images") for p in photos[who][:2]]).status_code == 201
        key = http.post("/keys", json={"name": "door-1 watcher", "role": "recognition"}).json()["key"]
        out = subprocess.run([str(venv / "bin" / "faceshot"), "watch", str(clip), "--server",
                              f"http://127.0.0.1:{server.port}", "--key", key, "--no-reconnect", "--source", "door-1",
                              "--start", START.isoformat()],
                             cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        events = [json.loads(line) for line in out.stdout.splitlines()]
        _check_events(events)
        assert http.get("/events", params={"source": "door-1"}).json()["total"] == 3
    finally:
        server.stop()
