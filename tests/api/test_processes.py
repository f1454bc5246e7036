"""Real server processes: `faceshot serve`, two workers that must agree, and `faceshot import`."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.testing.server import free_port
from app.testing.server import wait_ready as shared_wait_ready

ROOT = Path(__file__).resolve().parents[2]
FACESHOT = str(Path(sys.executable).parent / "faceshot")


def start_server(data_dir: Path, port: int, extra_env=None, workers: int = 1) -> subprocess.Popen:
    env = {**os.environ, "FACESHOT_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1",
           "FACESHOT_TORCH_THREADS": "1", **(extra_env or {})}
    env.pop("FACESHOT_DATABASE_URL", None)
    return subprocess.Popen(
        [FACESHOT, "serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def wait_ready(proc: subprocess.Popen, port: int, timeout: float = 90) -> None:
    shared_wait_ready(proc, port, timeout, output=proc.stdout.read)


@pytest.fixture
def servers():
    procs = []
    yield procs
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.mark.slow
def test_two_processes_agree_within_a_second(tmp_path, photos, servers):
    data = tmp_path / "data"
    env = {"FACESHOT_ADMIN_KEY": "two-process-admin-key-0123456789"}
    ports = [free_port(), free_port()]
    a = start_server(data, ports[0], env)
    servers.append(a)
    wait_ready(a, ports[0])  # the first one creates the schema
    b = start_server(data, ports[1], env)
    servers.append(b)
    wait_ready(b, ports[1])
    headers = {"X-API-Key": "two-process-admin-key-0123456789"}
    url_a, url_b = (f"http://127.0.0.1:{p}/api/v1" for p in ports)
    probe = photos["Emma_Watson"][2].read_bytes()

    def named_by_b():
        r = httpx.post(f"{url_b}/identify", files={"image": ("p.jpg", probe)}, headers=headers, timeout=30)
        assert r.status_code == 200
        person = r.json()["faces"][0]["person"]
        return person and person["name"]

    assert named_by_b() is None  # B has nobody yet
    files = [("images", (f.name, f.read_bytes())) for f in photos["Emma_Watson"][:2]]
    r = httpx.post(f"{url_a}/enroll", data={"name": "Emma Watson"}, files=files, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    enrolled_at = time.monotonic()
    while named_by_b() != "Emma Watson":
        assert time.monotonic() - enrolled_at < 1.0 + 0.5, "B did not see A's enrollment within a second"
    # and a delete through B is seen by A
    assert httpx.delete(f"{url_b}/people/{r.json()['person']['id']}", headers=headers).status_code == 204
    r = httpx.post(f"{url_a}/identify", files={"image": ("p.jpg", probe)}, headers=headers, timeout=30)
    assert r.json()["faces"][0]["person"] is None


@pytest.mark.slow
def test_serve_generates_the_admin_key_once_and_import_enrolls_a_folder(tmp_path, photos, lfw_dir, servers):
    data = tmp_path / "data"
    folder = tmp_path / "company"
    for person in ("Emma_Watson", "Wen_Jiabao", "Robert_Blake"):
        (folder / person).mkdir(parents=True)
        for f in photos[person][:2]:
            shutil.copy(f, folder / person / f.name)
    (folder / "Robert_Blake" / "notes.jpg").write_text("not a photo")
    env = {**os.environ, "FACESHOT_DATA_DIR": str(data), "OMP_NUM_THREADS": "1", "FACESHOT_TORCH_THREADS": "1"}
    env.pop("FACESHOT_ADMIN_KEY", None)
    out = subprocess.run([FACESHOT, "import", str(folder), "--max-photos", "3"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["enrolled_people"] == 3 and summary["enrolled_photos"] == 6
    assert [r["code"] for r in summary["refused_photos"]] == ["invalid_image"]
    # a second run adds nobody twice, says so, and succeeds (issue 16, point 8: it enrolled all three again)
    again = subprocess.run([FACESHOT, "import", str(folder), "--max-photos", "3"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["enrolled_people"], json.loads(again.stdout)["skipped_existing"]) == (0, 3)

    key_file = data / "admin_key"
    key = key_file.read_text().strip()
    assert key.startswith("fs_") and oct(key_file.stat().st_mode)[-3:] == "600"
    port = free_port()
    proc = start_server(data, port, {"FACESHOT_ADMIN_KEY": ""})
    servers.append(proc)
    wait_ready(proc, port)
    assert key_file.read_text().strip() == key  # written once, never replaced
    # what the first start prints (issue 16, point 5): where the key is, and the admin and docs URLs
    printed = [proc.stdout.readline() for _ in range(2)]
    assert printed[0].strip() == f"faceshot: the admin API key is in {key_file}"
    base = f"http://127.0.0.1:{port}"
    assert printed[1].strip() == f"faceshot: serving {base} (admin page {base}/admin, API docs {base}/docs)"
    r = httpx.post(f"http://127.0.0.1:{port}/api/v1/identify", headers={"X-API-Key": key},
                   files={"image": ("q.jpg", photos["Wen_Jiabao"][2].read_bytes())}, timeout=30)
    assert r.status_code == 200 and r.json()["faces"][0]["person"]["name"] == "Wen Jiabao"
