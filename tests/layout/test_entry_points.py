"""What each entry point loads (issue 27): `faceshot watch` and the pipeline commands run without building the web
app; `faceshot serve` checks the encoder's weight files before its workers start, without importing torch."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The command runs in this process as `faceshot` would run it; then: its status and what it had imported.
PROBE = """
import json, sys
from app.cli import main
try:
    status = main(json.loads(sys.argv[1]))
except SystemExit as exc:
    status = exc.code
print(json.dumps({"status": status, "loaded": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}),
      file=sys.stderr)
"""
WATCHED = ["app.main", "torch", "models.pipeline"]  # app.main: the module that builds the ASGI app


def run(argv, tmp_path, **env) -> tuple[dict, str, str]:
    environ = {**os.environ, "FACESHOT_DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1",
               "FACESHOT_TORCH_THREADS": "1", **env}
    environ.pop("FACESHOT_DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(WATCHED)], cwd=ROOT,
                         env=environ, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in out.stderr, out.stderr
    return json.loads(out.stderr.splitlines()[-1]), out.stdout, out.stderr


@pytest.mark.slow  # a clip through the face pipeline in a fresh process
def test_watch_runs_the_face_pipeline_without_the_web_app(photos, tmp_path):
    from app.testing.clips import door_clip

    clip = door_clip([(photos["Emma_Watson"][0], 0.2, 1.2)], tmp_path / "door.avi", fps=5)
    probe, stdout, _ = run(["watch", str(clip), "--source", "door-1"], tmp_path)
    assert probe["status"] == 0
    assert [json.loads(line)["person"] for line in stdout.splitlines()] == [None]  # a stranger: nobody enrolled
    assert probe["loaded"] == ["models.pipeline", "torch"]  # the pipeline ran; the ASGI app was never built


@pytest.mark.slow  # the face pipeline in a fresh process
def test_a_pipeline_command_does_not_build_the_web_app(photos, tmp_path):
    probe, stdout, _ = run(["embed", str(photos["Emma_Watson"][0]), "--compact"], tmp_path)
    assert probe["status"] in (0, None)
    assert len(json.loads(stdout)["images"][0]["faces"]) == 1
    assert probe["loaded"] == ["models.pipeline", "torch"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_refuses_missing_weights_without_importing_torch(tmp_path):
    """The supervisor's check of an imported encoder's file: one line naming the fetch command, and no torch."""
    probe, _, stderr = run(["serve", "--port", str(free_port())], tmp_path, FACESHOT_ENCODER="dlib+hse-faceres",
                   FACESHOT_MODEL_CACHE=str(tmp_path / "empty-cache"))
    assert probe["status"] not in (0, None) and "faceshot fetch-weights hse-faceres" in stderr
    assert probe["loaded"] == []


def test_the_weight_check_of_present_weights_imports_no_torch(tmp_path):
    """dlib's file is there (pip installs it): the check passes, and still no torch in the supervisor."""
    code = ("import sys\nfrom app.core.config import Settings\nfrom app.cli import _weights_present\n"
            "_weights_present(Settings(encoder='dlib@zoom=1.15'))\nprint('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
