"""faceshot export / faceshot import --from-export: a gallery moves between hosts and databases, whole."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest

from app.cli import main
from app.gallery.transfer import import_export

from .conftest import upload


@pytest.fixture
def cli(capsys, monkeypatch):
    """``faceshot`` in-process; the FACESHOT_* variables its flags set are put back afterwards."""
    for name in ("FACESHOT_DATA_DIR", "FACESHOT_DATABASE_URL"):
        monkeypatch.setenv(name, "unset-by-the-test")
        monkeypatch.delenv(name)

    def run(*argv):
        return _cli(capsys, *argv)

    return run


def _cli(capsys, *argv) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else None), out.err


@pytest.fixture
def source(make_client, tmp_path, photos):
    """A deployment with two people: one with an external id, metadata and two photos; one with one photo."""
    data = tmp_path / "source"
    client = make_client(data)
    emma = client.post("/api/v1/enroll", data={"name": "Emma Watson", "external_id": "hr-17",
                                                "metadata": json.dumps({"team": "film", "desk": 4})},
                       files=[upload(p, "images") for p in photos["Emma_Watson"][:2]])
    wen = client.post("/api/v1/enroll", data={"name": "Wen Jiabao"}, files=[upload(photos["Wen_Jiabao"][0], "images")])
    assert emma.status_code == wen.status_code == 201
    return data, client


def _people(client) -> dict[str, dict]:
    people = client.get("/api/v1/people", params={"limit": 100}).json()["items"]
    return {p["id"]: p for p in people}


@pytest.mark.slow  # the CLI loads the encoder in-process twice
def test_a_gallery_moves_whole_and_a_second_import_adds_nothing(source, make_client, tmp_path, photos,
                                                                 database_url, cli):
    data, src = source
    out = tmp_path / "gallery.tar"
    code, summary, err = cli("export", str(out), "--data-dir", str(data))
    assert code == 0, err
    assert (summary["people"], summary["faces"], summary["photos"]) == (2, 3, 3)
    assert not out.with_name("gallery.tar.partial").exists()

    target = tmp_path / "target"
    code, summary, err = cli("import", "--from-export", str(out), "--data-dir", str(target),
                              "--database-url", database_url)
    assert code == 0, err
    assert (summary["imported_people"], summary["imported_faces"], summary["refused"]) == (2, 3, [])

    dst = make_client(target, database_url=database_url)
    before, after = _people(src), _people(dst)
    keep = ("name", "external_id", "metadata", "face_count")
    assert {i: {k: p.get(k) for k in keep} for i, p in after.items()} == \
           {i: {k: p.get(k) for k in keep} for i, p in before.items()}
    for person_id in before:
        faces_a = src.get(f"/api/v1/people/{person_id}/faces").json()
        faces_b = dst.get(f"/api/v1/people/{person_id}/faces").json()
        assert [(f["id"], f["box"]) for f in faces_a] == [(f["id"], f["box"]) for f in faces_b]
        for f in faces_a:  # the photos arrive byte for byte
            url = f"/api/v1/people/{person_id}/faces/{f['id']}/image"
            assert dst.get(url).content == src.get(url).content
    r = dst.post("/api/v1/identify", files=[upload(photos["Emma_Watson"][2])]).json()
    assert r["faces"][0]["person"]["name"] == "Emma Watson"

    code, summary, err = cli("import", "--from-export", str(out), "--data-dir", str(target),
                              "--database-url", database_url)
    assert code == 0, err
    assert summary["imported_people"] == 0 and sorted(summary["skipped_existing"]) == sorted(
        p["external_id"] or p["id"] for p in before.values())
    assert len(_people(dst)) == 2


def _rewrite(src, dst, edit):
    """A copy of an export with people.jsonl changed by ``edit(records)`` and photos dropped where it says."""
    with tarfile.open(src) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    records = [json.loads(line) for line in members["people.jsonl"].splitlines()]
    drop = edit(records)
    members["people.jsonl"] = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    with tarfile.open(dst, "w") as tar:
        for name, data in members.items():
            if name in drop:
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_faces_of_another_encoder_are_remade_from_their_photo_or_refused(source, tmp_path, make_client):
    data, src = source
    from app.gallery.transfer import export_gallery

    service = src.app.state.service
    out = tmp_path / "gallery.tar"
    export_gallery(service, out)

    def other_encoder(records):
        for r in records:
            for f in r["faces"]:
                f["encoder_hash"] = "0" * 64
                # a face whose embedding is garbage for this encoder: re-embedding must not read it
                f["embedding"] = base64.b64encode(b"\0" * 8).decode()
        wen = next(r for r in records if r["name"] == "Wen Jiabao")
        wen["faces"][0]["photo_sha256"] = None  # as exported with --no-photos
        return {f"photos/{wen['faces'][0]['id']}.img"}

    changed = tmp_path / "other.tar"
    _rewrite(out, changed, other_encoder)
    target = make_client(tmp_path / "target").app.state.service
    summary = import_export(target, changed)
    assert summary.imported_people == 1 and summary.reembedded_faces == 2
    assert [(r["name"], r["code"]) for r in summary.refused] == [("Wen Jiabao", "validation_error")]
    assert "photo was not kept" in summary.refused[0]["reason"]


def test_a_damaged_or_foreign_file_is_refused_and_nothing_is_stored(source, tmp_path, make_client):
    from app.gallery.transfer import BadExport, export_gallery

    _, src = source
    out = tmp_path / "gallery.tar"
    export_gallery(src.app.state.service, out)
    target_client = make_client(tmp_path / "target")
    target = target_client.app.state.service

    cut = tmp_path / "cut.tar"
    cut.write_bytes(out.read_bytes()[: out.stat().st_size // 3])
    foreign = tmp_path / "foreign.tar"
    with tarfile.open(foreign, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        payload = json.dumps({"format": "something-else"}).encode()
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    for path, says in ((cut, "cut short"), (foreign, "not describe")):
        with pytest.raises(BadExport, match=says):
            import_export(target, path)
    assert _people(target_client) == {}

    bad_line = tmp_path / "bad_line.tar"  # one bad line refuses its person, not the file (test_transfer_safety.py)
    _rewrite(out, bad_line, lambda records: records[0].update(nmae="typo") or set())
    summary = import_export(target, bad_line)
    assert [(r["line"], r["code"]) for r in summary.refused] == [(1, "invalid_export")]
    assert "nmae" in summary.refused[0]["reason"] and summary.imported_people == 1


def test_a_camera_captured_face_stays_one_through_an_export(source, tmp_path, make_client):
    """A face added from an event holds its person to a capture class (issue 29): an export and import keep its
    origin, for a face taken as it is and for one re-made from its photo by another encoder."""
    from app.gallery.transfer import export_gallery

    _, src = source
    out = tmp_path / "gallery.tar"
    export_gallery(src.app.state.service, out)

    def captured(records, *, other_encoder: bool):
        emma = next(r for r in records if r["name"] == "Emma Watson")
        emma["faces"][1]["origin"] = "camera"
        for f in emma["faces"] if other_encoder else ():
            f["encoder_hash"] = "0" * 64
        return set()

    for other in (False, True):
        changed = tmp_path / f"captured-{other}.tar"
        _rewrite(out, changed, lambda records, other=other: captured(records, other_encoder=other))
        target = make_client(tmp_path / f"target-{other}")
        summary = import_export(target.app.state.service, changed)
        assert summary.imported_people == 2 and summary.reembedded_faces == (2 if other else 0)
        emma = next(p for p in _people(target).values() if p["name"] == "Emma Watson")
        origins = [f["origin"] for f in target.get(f"/api/v1/people/{emma['id']}/faces").json()]
        assert sorted(origins) == ["camera", "upload"]
        assert target.app.state.service.gallery.entry(emma["id"]).capture == "with_camera"
