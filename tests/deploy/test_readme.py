"""The README is the front door: its five-minute walkthrough runs as written against a live `faceshot serve`, in
order, twice, and creates nobody twice (issue 25, points 4 and 9); the settings and links it names exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.testing.server import ADMIN, Server

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def walkthrough_blocks() -> list[tuple[str, str]]:
    """The (language, code) blocks of the README's "Five minutes" section, in order."""
    section = README.split("## Five minutes", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(bash|python)\n(.*?)```", section, re.S)


def as_run_here(code: str, server: Server) -> str:
    """The block with its two machine-specific names replaced: the server's port and its data directory."""
    return (code.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
            .replace("data/admin_key", str(server.data_dir / "admin_key")))


@pytest.mark.slow
def test_the_five_minute_walkthrough_runs_twice_and_enrolls_nobody_twice(server_factory, tmp_path):
    blocks = walkthrough_blocks()
    assert [lang for lang, _ in blocks] == ["bash", "python"]
    server = server_factory(tmp_path / "data")
    server.start(env={"FACESHOT_ADMIN_KEY": ""})  # as a user starts it: the key generated into data/admin_key
    assert (server.data_dir / "admin_key").exists()
    env = {k: v for k, v in os.environ.items() if k != "FACESHOT_ADMIN_KEY"}
    outputs = []
    for _ in range(2):
        for lang, code in blocks:
            command = ["bash", "-euo", "pipefail", "-c"] if lang == "bash" else [sys.executable, "-c"]
            run = subprocess.run([*command, as_run_here(code, server)], cwd=ROOT, env=env, capture_output=True,
                                 text=True, timeout=300)
            assert run.returncode == 0, f"{lang} block failed:\n{run.stdout}\n{run.stderr}"
            outputs.append(run.stdout)
    key = (server.data_dir / "admin_key").read_text().strip()
    people = httpx.get(f"{server.url}/people", headers={"X-API-Key": key}).json()
    assert sorted(p["name"] for p in people["items"]) == ["Emma Watson", "Wen Jiabao"]  # twice run, once enrolled
    first_bash, first_python, second_bash, _ = outputs
    assert first_bash.count('"name":"Emma Watson"') >= 2  # enrolled, then named by identify
    assert second_bash.count('"code":"person_exists"') == 2  # the second run is told they are there
    assert first_python.splitlines()[0].startswith("Emma Watson ") and first_python.splitlines()[1] == "False"
    assert ADMIN not in first_bash  # (the generated key, not the harness's)


def test_every_link_and_file_the_readme_names_exists():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if "://" not in target:
            assert (ROOT / target).exists(), target
    for path in re.findall(r"`((?:docker|tests|app|models|bench)/[\w./-]+|requirements-watch\.txt)`", README):
        assert (ROOT / path).exists(), path
