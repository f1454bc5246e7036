"""Replicas may start together on a new database: one migrates, the others wait and find the schema."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

ROOT = Path(__file__).resolve().parents[2]

# Import everything first, say so, then migrate the moment the test says go: the processes really overlap.
MIGRATE = """
import sys, time
from pathlib import Path
from app.core.db import upgrade_database
import alembic.command, app.core.tables  # noqa: F401
ready, go = Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.001)
upgrade_database(sys.argv[1])
"""


@pytest.mark.slow
def test_processes_migrating_at_once_all_succeed(database_url, tmp_path):
    go = tmp_path / "go"
    procs = []
    for i in range(3):
        ready = tmp_path / f"ready{i}"
        procs.append((ready, subprocess.Popen([sys.executable, "-c", MIGRATE, database_url, str(ready), str(go)],
                                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in procs):
        assert all(p.poll() is None for _, p in procs), [p.stdout.read() for _, p in procs if p.poll() is not None]
        assert time.monotonic() < deadline, "the migrating processes did not start"
        time.sleep(0.05)
    go.touch()
    for _, p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
    engine = create_engine(database_url)
    try:
        assert {"people", "faces", "api_keys", "gallery_state"} <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM gallery_state")).scalar_one() == 1
    finally:
        engine.dispose()
