"""A careless user's `faceshot` commands: each mistake is one line, `faceshot: <code>: <message>`, status 1."""

from __future__ import annotations

import os
import re
import socket
import subprocess

import pytest

from app.testing.clips import door_clip
from app.testing.server import FACESHOT

ONE_LINE = re.compile(r"faceshot: ([a-z_]+): \S.*")


@pytest.fixture
def places(tmp_path, photos):
    """A working directory with what a user points commands at: a file, an empty folder, a clip."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "data-file").write_text("a file where the data directory should be")
    door_clip([(photos["Emma_Watson"][0], 0.0, 0.5)], tmp_path / "clip.avi", size=(320, 240), face_px=160)
    return tmp_path


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: a connection is refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MISTAKES = [  # (what the user typed, the code they are told)
    (["import", "missing"], "not_found"),
    (["import", "notes.txt"], "validation_error"),
    (["import", "empty"], "validation_error"),
    (["import", "--from-export", "missing.tar"], "not_found"),
    (["compare", "missing.jpg", "other.jpg"], "invalid_image"),
    (["compare", "empty", "notes.txt"], "invalid_image"),
    (["embed", "notes.txt", "--device", "cpu"], "invalid_image"),
    (["eval-openset", "missing"], "training_error"),
    (["eval-openset", "empty"], "training_error"),
    (["calibrate", "notes.txt"], "training_error"),
    (["watch", "missing.avi"], "not_found"),
    (["watch", "missing.avi", "--server", "http://127.0.0.1:9", "--key", "fs_k"], "not_found"),
    (["watch", "empty", "--server", "http://127.0.0.1:9", "--key", "fs_k"], "validation_error"),
    (["watch", "clip.avi", "--server", "http://127.0.0.1:{closed}", "--key", "fs_k"], "unavailable"),
    (["export", "no/such/folder/gallery.tar"], "not_found"),
    (["export", "notes.txt"], "conflict"),
    (["admin-key", "--data-dir", "data-file"], "storage_unavailable"),
    (["admin-key", "--database-url", "nosuchdb://x"], "validation_error"),
]


@pytest.mark.parametrize("argv, code", MISTAKES, ids=[" ".join(a[:2]) for a, _ in MISTAKES])
def test_a_mistake_is_one_line_with_its_code(places, argv, code):
    argv = [a.format(closed=_closed_port()) for a in argv]
    env = {**os.environ, "FACESHOT_DATA_DIR": str(places / "data"), "OMP_NUM_THREADS": "1",
           "FACESHOT_TORCH_THREADS": "1"}
    for name in ("FACESHOT_DATABASE_URL", "FACESHOT_ADMIN_KEY"):
        env.pop(name, None)
    out = subprocess.run([FACESHOT, *argv], cwd=places, env=env, capture_output=True, text=True, timeout=120)
    lines = out.stderr.splitlines()
    assert out.returncode == 1 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    told = ONE_LINE.fullmatch(lines[0])
    assert told and told.group(1) == code, lines[0]


@pytest.mark.parametrize("argv", [["import", ".", "--max-photos", "0"], ["watch", "clip.avi", "--fps", "0"],
                                  ["watch", "clip.avi", "--start", "yesterday"], ["admin-key", "--encoder", "dlib"]])
def test_bad_usage_is_status_2_before_anything_runs(tmp_path, argv):
    out = subprocess.run([FACESHOT, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.splitlines()[-1].startswith("faceshot")


def test_a_misspelled_setting_is_one_line_with_its_code(tmp_path):
    env = {**os.environ, "FACESHOT_DATA_DIR": str(tmp_path / "data"), "FACESHOT_TRESHOLD": "0.3"}
    out = subprocess.run([FACESHOT, "admin-key"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.splitlines() == [
        "faceshot: validation_error: unknown settings: FACESHOT_TRESHOLD (did you mean FACESHOT_THRESHOLD?). "
        "The settings are listed in docs/configuration.md."]
