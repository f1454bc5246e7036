"""A full disk or a read-only photo folder is a typed 507/503, nothing partial is stored, /ready says so (point 8).

The photo folder is a real filesystem that fills up or refuses writes: a small tmpfs in a
mount namespace of the server's own (``unshare``; skipped where the kernel does not allow
it). The SQLite file vanishing under a running service is the real file, unlinked.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.testing.server import Server

MOUNT = 'mkdir -p "$IMAGES" && mount -t tmpfs -o "size=$SIZE" tmpfs "$IMAGES" && {ro} exec "$@"'


def _can_unshare() -> bool:
    try:
        probe = subprocess.run(["unshare", "--mount", "--map-root-user", "--propagation", "private",
                                "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True, timeout=10)
        return probe.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_unshare = pytest.mark.skipif(not _can_unshare(), reason="needs `unshare --mount --map-root-user` (util-linux, "
                                   "unprivileged user namespaces) to give the server a small filesystem of its own")


def images_on_tmpfs(size: int, read_only: bool = False) -> list[str]:
    ro = 'mount -o remount,ro "$IMAGES" &&' if read_only else ""
    return ["unshare", "--mount", "--map-root-user", "--propagation", "private", "sh", "-c", MOUNT.format(ro=ro), "sh"]


def page_rounded(n: int) -> int:
    return -(-n // 4096) * 4096


def stored_state(data: Path) -> dict:
    engine = create_engine(f"sqlite:///{data / 'faceshot.db'}")
    with engine.connect() as c:
        counts = {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                  for t in ("people", "faces", "photo_journal")}
    engine.dispose()
    return counts


def seen_by(server: Server, path: Path) -> Path:
    """``path`` as the server sees it, in its own mount namespace."""
    return Path(f"/proc/{server.proc.pid}/root") / str(path.resolve()).lstrip("/")


def enroll(client, name, files):
    return client.post("/enroll", data={"name": name},
                       files=[("images", (f.name, f.read_bytes(), "image/jpeg")) for f in files])


@pytest.mark.slow
@needs_unshare
def test_a_full_disk_is_507_and_leaves_nothing_partial(tmp_path, photos, server_factory):
    data = tmp_path / "data"
    first, second = photos["Emma_Watson"][:2], photos["Robert_Blake"][:2]
    # room for the first person's two photos and a page more: the next photo's write fails half-way
    size = sum(page_rounded(f.stat().st_size) for f in first) + 4096
    server: Server = server_factory(data)
    server.start(env={"IMAGES": str(data / "images"), "SIZE": str(size)}, wrapper=images_on_tmpfs(size))
    with server.client() as c:
        assert enroll(c, "Emma Watson", first).status_code == 201
        r = enroll(c, "Robert Blake", second)
        assert r.status_code == 507, r.text
        assert r.json()["error"]["code"] == "storage_unavailable"
        assert r.json()["error"]["details"]["reason"] == "enospc"
        ready = c.get("/ready")
        assert ready.status_code == 200 and ready.json()["degraded"] is True  # recognition still works
        assert ready.json()["storage"] == {"writable": False, "problem": "low_space"}
        assert c.get("/people").json()["total"] == 1
        face = c.post("/identify", files={"image": ("q.jpg", photos["Emma_Watson"][2].read_bytes())}).json()
        assert face["faces"][0]["person"]["name"] == "Emma Watson"
        # the server's own view of its photo folder: Emma's two photos, no partial third
        left = sorted(p.name for p in seen_by(server, data / "images").iterdir())
        assert len(left) == 2 and all(n.endswith(".img") and not n.startswith(".") for n in left), left
    server.stop()
    assert stored_state(data) == {"people": 1, "faces": 2, "photo_journal": 0}


@pytest.mark.slow
@needs_unshare
def test_a_read_only_photo_folder_is_503_and_ready_says_so(tmp_path, photos, server_factory):
    data = tmp_path / "data"
    server: Server = server_factory(data)
    server.start(env={"IMAGES": str(data / "images"), "SIZE": "8m"}, wrapper=images_on_tmpfs(0, read_only=True))
    with server.client() as c:
        r = enroll(c, "Emma Watson", photos["Emma_Watson"][:2])
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "storage_unavailable"
        assert r.json()["error"]["details"]["reason"] == "erofs"
        ready = c.get("/ready").json()
        assert ready["ready"] is True and ready["storage"] == {"writable": False, "problem": "read_only"}
        assert c.get("/people").json()["total"] == 0
        assert list(seen_by(server, data / "images").iterdir()) == []
    server.stop()
    assert stored_state(data) == {"people": 0, "faces": 0, "photo_journal": 0}


def test_the_sqlite_file_vanishing_is_seen_by_ready_and_refuses_writes(pipeline, tmp_path, photos):
    from fastapi.testclient import TestClient

    from app.core.config import Settings
    from app.main import create_app
    from app.testing.server import ADMIN

    data = tmp_path / "data"
    client = TestClient(create_app(Settings(data_dir=data, admin_key=ADMIN, torch_threads=1), pipeline))
    client.__enter__()
    client.headers["X-API-Key"] = ADMIN
    assert client.get("/api/v1/ready").json()["ready"] is True
    os.unlink(data / "faceshot.db")  # an operator's clean-up, or a volume swapped under the service
    r = client.get("/api/v1/ready")
    assert r.status_code == 503 and r.json()["problems"]["database"] == "database_file_missing"
    r = client.post("/api/v1/enroll", data={"name": "Emma Watson"},
                    files=[("images", (f.name, f.read_bytes(), "image/jpeg")) for f in photos["Emma_Watson"][:1]])
    assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
    assert not (data / "images").exists() or not any((data / "images").glob("*.img"))
    client.__exit__(None, None, None)
