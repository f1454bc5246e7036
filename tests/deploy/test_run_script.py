"""./run.sh installs what serving needs for `serve`, adds the test tools for `test`, and reinstalls torch when the
torch spec changes (issue 25, point 2). Run on a copy of the script whose venv's Python only records what pip was
asked, so the logic is tested without gigabytes of wheels."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORDER = """#!/bin/sh
# stands in for the venv's python: records each pip call
echo "$*" >> "$(dirname "$0")/../calls.log"
"""


@pytest.fixture
def checkout(tmp_path) -> Path:
    for name in ("run.sh", "pyproject.toml", "docker/install-python.sh"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(RECORDER)
    python.chmod(0o755)
    return tmp_path


def install(checkout: Path, what: str, torch_spec: str | None = None) -> list[str]:
    log = checkout / ".venv" / "calls.log"
    log.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "FACESHOT_TORCH_SPEC"}
    if torch_spec is not None:
        env["FACESHOT_TORCH_SPEC"] = torch_spec
    out = subprocess.run(["bash", "run.sh", "install", what], cwd=checkout, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return log.read_text().splitlines() if log.exists() else []


def test_serve_installs_the_runtime_only_and_test_adds_the_test_tools(checkout):
    calls = install(checkout, "serve")
    assert any(c.endswith("install torch==2.14.1 torchvision==0.29.1") for c in calls), calls
    assert any(c.endswith("install -e .") for c in calls) and not any("[test]" in c for c in calls), calls
    assert any(c.endswith("install --no-deps facenet-pytorch==2.6.0") for c in calls), calls
    assert install(checkout, "serve") == []  # done: nothing again
    calls = install(checkout, "test")
    # only the test tools added: the extra, then CompreFace's SDK without its broken pin (pyproject.toml says why)
    assert len(calls) == 2 and calls[0].endswith("install -e .[test]"), calls
    assert calls[1].endswith("install --no-deps compreface-sdk==0.6.0"), calls
    assert install(checkout, "test") == [] and install(checkout, "serve") == []


def test_a_new_torch_spec_replaces_the_installed_torch(checkout):
    install(checkout, "serve")
    cpu = "torch torchvision --index-url https://download.pytorch.org/whl/cpu"
    calls = install(checkout, "serve", cpu)
    assert any(c.endswith("uninstall -y torch torchvision") for c in calls), calls
    assert any(c.endswith(f"install {cpu}") for c in calls), calls
    assert install(checkout, "serve", cpu) == []  # the same spec again: nothing to do
