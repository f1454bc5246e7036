"""`faceshot import` as a new user runs it: face_recognition's flat folder, who a photo looks like, Ctrl-C midway."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess

import pytest

from app.testing.server import FACESHOT, ROOT

from .conftest import ADMIN


def _env(data) -> dict:
    env = {**os.environ, "FACESHOT_DATA_DIR": str(data), "FACESHOT_ADMIN_KEY": ADMIN, "OMP_NUM_THREADS": "1",
           "FACESHOT_TORCH_THREADS": "1"}
    env.pop("FACESHOT_DATABASE_URL", None)
    return env


def _import(folder, data, *extra):
    return subprocess.run([FACESHOT, "import", str(folder), *extra], cwd=ROOT, env=_env(data), capture_output=True,
                          text=True, timeout=300)


def _people(make_client, data) -> dict[str, int]:
    """name -> faces stored, read back through the API on the same data directory."""
    client = make_client(data)
    items = client.get("/api/v1/people", params={"limit": 100}).json()["items"]
    client.__exit__(None, None, None)
    return {p["name"]: p["face_count"] for p in items}


def test_a_flat_folder_is_one_person_per_photo_named_by_the_file(tmp_path, photos, make_client):
    """face_recognition's layout: alice.jpg; a trailing _<number> is a further photo of the same person."""
    folder = tmp_path / "known_people"
    folder.mkdir()
    shutil.copy(photos["Emma_Watson"][0], folder / "Emma_Watson.jpg")
    shutil.copy(photos["Emma_Watson"][1], folder / "Emma_Watson_2.jpg")
    shutil.copy(photos["Wen_Jiabao"][0], folder / "wen_jiabao.jpg")
    (folder / "notes.txt").write_text("not a photo: ignored")
    data = tmp_path / "data"
    out = _import(folder, data)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["layout"], summary["enrolled_people"], summary["enrolled_photos"]) == ("flat", 2, 3)
    assert "Traceback" not in out.stderr
    assert _people(make_client, data) == {"Emma Watson": 2, "wen jiabao": 1}


def test_a_folder_mixing_the_two_layouts_is_refused_with_how_to_lay_it_out(tmp_path, photos):
    folder = tmp_path / "people"
    (folder / "Wen_Jiabao").mkdir(parents=True)
    shutil.copy(photos["Wen_Jiabao"][0], folder / "Wen_Jiabao")
    shutil.copy(photos["Emma_Watson"][0], folder / "Emma_Watson.jpg")
    out = _import(folder, tmp_path / "data")
    assert out.returncode == 1 and out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith("faceshot: validation_error: ") and "Emma_Watson.jpg" in line and "Wen_Jiabao" in line
    assert "one sub-folder of photos per person" in line and "one photo per person named after them" in line
    assert not (tmp_path / "data").exists()  # told before anything was opened or loaded


def test_an_import_warning_names_the_look_alike_and_the_distance(tmp_path, photos):
    """A second name for the same face: the line and the summary say who it looks like, and how close."""
    folder = tmp_path / "people"
    for who, files in (("Emma_Watson", photos["Emma_Watson"][:1]), ("Hermione_Granger", photos["Emma_Watson"][1:3])):
        (folder / who).mkdir(parents=True)
        for f in files:
            shutil.copy(f, folder / who / f.name)
    out = _import(folder, tmp_path / "data")
    assert out.returncode == 0, out.stderr
    warnings = json.loads(out.stdout)["warnings"]
    assert [(w["name"], w["code"], w["looks_like"]) for w in warnings] == \
        [("Hermione Granger", "looks_like_other_person", "Emma Watson")] * 2  # each of her photos
    line = next(t for t in out.stderr.splitlines() if t.startswith("[2/2] Hermione Granger: enrolled"))
    for w in warnings:
        assert 0 < w["distance"] < 0.6
        assert f"{w['photo']}: looks like Emma Watson (distance {w['distance']:.2f}" in line


@pytest.mark.slow  # three imports of twelve people through the face pipeline
@pytest.mark.timeout(300)
def test_ctrl_c_stops_between_people_and_a_second_run_finishes(tmp_path, lfw_dir, make_client):
    folder = tmp_path / "people"
    shutil.copytree(lfw_dir, folder)
    total = sum(1 for d in folder.iterdir() if d.is_dir())
    data = tmp_path / "data"
    proc = subprocess.Popen([FACESHOT, "import", str(folder)], cwd=ROOT, env=_env(data), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:  # Ctrl-C once the first person is stored, as someone watching it would
        seen.append(line)
        if re.match(r"\[1/\d+\] .*: enrolled", line):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    err = "".join(seen) + err
    assert proc.returncode == 130, err
    stopped = re.search(r"^faceshot: interrupted after (\d+) people; run it again to continue$", err, re.M)
    assert stopped and "Traceback" not in err, err
    done = int(stopped.group(1))
    assert 1 <= done < total and json.loads(out)["enrolled_people"] == done

    again = _import(folder, data)
    assert again.returncode == 0, again.stderr
    rest = json.loads(again.stdout)
    assert rest["skipped_existing"] == done and rest["enrolled_people"] == total - done
    # every person whole: both photos (one where the folder has one), each stored once, none left over
    people = _people(make_client, data)
    assert people == {d.name.replace("_", " "): min(2, len(list(d.glob("*.jpg")))) for d in lfw_dir.iterdir()}
    assert len(list((data / "images").rglob("*.*"))) == sum(people.values())
