"""faceshot import --from-export under a crafted or edited file: nobody else's photo is touched, nothing is read
beyond its bound, each person is imported whole or refused whole (with the line), and a refusal names its cause."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import tracemalloc
import uuid

import numpy as np
import pytest
from sqlalchemy import select

from app.cli import main
from app.core.errors import Conflict
from app.core.tables import Face, PhotoJournal
from app.gallery.transfer import BadExport, check_export, export_gallery, import_export

from .conftest import upload


@pytest.fixture
def exported(make_client, tmp_path, photos):
    """An export of two people (Emma Watson with two photos, Wen Jiabao with one): its path, records and members."""
    client = make_client(tmp_path / "source")
    for name, files in (("Emma Watson", photos["Emma_Watson"][:2]), ("Wen Jiabao", photos["Wen_Jiabao"][:1])):
        r = client.post("/api/v1/enroll", data={"name": name}, files=[upload(p, "images") for p in files])
        assert r.status_code == 201, r.text
    out = tmp_path / "gallery.tar"
    export_gallery(client.app.state.service, out)
    with tarfile.open(out) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    records = sorted((json.loads(line) for line in members.pop("people.jsonl").splitlines()), key=lambda r: r["name"])
    return out, records, members


def _tar(path, records, members, extra=()):
    """An export of ``records`` (a dict is a person; bytes are written as the line) with ``members`` as its photos
    and manifest, and ``extra`` TarInfo/bytes pairs after them; its path."""
    lines = b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [*((n, d) for n, d in members.items() if n != "manifest.json"), ("people.jsonl", lines),
                           ("manifest.json", members["manifest.json"])]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _clone(record, members, name, photo: bytes | None = None):
    """Another person made of ``record``'s faces: new person and face ids, the photos copied (or ``photo``)."""
    person = json.loads(json.dumps(record))
    person.update(id=uuid.uuid4().hex, name=name, external_id=None)
    for face in person["faces"]:
        data = photo if photo is not None else members[f"photos/{face['id']}.img"]
        face.update(id=uuid.uuid4().hex, photo_sha256=hashlib.sha256(data).hexdigest())
        members[f"photos/{face['id']}.img"] = data
    return person


def _photos_on_disk(service) -> dict[str, bytes]:
    """Every stored face's photo, by face id, as the photo store holds it."""
    with service.sessions() as session:
        faces = session.execute(select(Face.id, Face.image_file)).all()
    return {face_id: service.photos.read(file) for face_id, file in faces if file}


def _leftovers(service) -> tuple[list[str], list[str]]:
    """Journal rows and partial files a finished import must not leave."""
    with service.sessions() as session:
        journal = list(session.scalars(select(PhotoJournal.file_name)))
    return journal, sorted(p.name for p in service.photos.folder.glob(".*.partial"))


def _refusals(summary):
    return [(r["line"], r["code"]) for r in summary.refused]


# -- point 1: nobody else's photo ------------------------------------------------------------------------------------

def test_a_crafted_export_cannot_overwrite_or_remove_another_persons_photo(exported, make_client, tmp_path, photos,
                                                                          database_url):
    out, records, members = exported
    target = make_client(tmp_path / "target", database_url=database_url).app.state.service
    assert import_export(target, out).imported_people == 2
    emma, wen = records
    elsewhere = _clone(wen, members, "Wen in alpha")  # a face in a second collection
    assert import_export(target, _tar(tmp_path / "alpha.tar", [elsewhere], members), collection="alpha") \
        .imported_people == 1
    before = _photos_on_disk(target)
    assert len(before) == 4

    stranger = photos["John_Travolta"][0].read_bytes()
    thief = _clone(emma, members, "Thief", photo=stranger)  # new person id, but Emma's face ids, another photo
    for face, own in zip(thief["faces"], emma["faces"]):
        members[f"photos/{own['id']}.img"] = stranger
        face["id"] = own["id"]
    raider = _clone(wen, members, "Raider", photo=stranger)
    raider["faces"][0]["id"] = elsewhere["faces"][0]["id"]  # the face in the other collection
    members[f"photos/{elsewhere['faces'][0]['id']}.img"] = stranger
    first = _clone(wen, members, "First of a pair")
    second = _clone(wen, members, "Second of a pair", photo=stranger)
    second["faces"][0]["id"] = first["faces"][0]["id"]  # one face id on two lines of the file
    members[f"photos/{first['faces'][0]['id']}.img"] = members[f"photos/{wen['faces'][0]['id']}.img"]

    summary = import_export(target, _tar(tmp_path / "crafted.tar", [thief, raider, first, second], members))
    assert summary.imported_people == 1
    assert _refusals(summary) == [(1, "face_exists"), (2, "face_exists"), (4, "duplicate_in_export")]
    assert [r["name"] for r in summary.refused] == ["Thief", "Raider", "Second of a pair"]
    after = _photos_on_disk(target)
    assert {k: after[k] for k in before} == before  # byte for byte, in both collections
    assert after[first["faces"][0]["id"]] == members[f"photos/{wen['faces'][0]['id']}.img"]
    assert _leftovers(target) == ([], [])


def test_a_photo_file_already_at_a_faces_name_is_neither_replaced_nor_removed(exported, make_client, tmp_path,
                                                                                database_url):
    out, records, members = exported
    target = make_client(tmp_path / "target", database_url=database_url).app.state.service
    wen = records[1]
    stray = target.photos.folder / f"{wen['faces'][0]['id']}.img"  # a file no face row names (a restored folder)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"somebody's photo")

    summary = import_export(target, _tar(tmp_path / "ordered.tar", records, members))
    assert summary.imported_people == 1 and _refusals(summary) == [(2, "photo_exists")]
    assert stray.read_bytes() == b"somebody's photo"
    assert _leftovers(target) == ([], [])


def test_restore_person_refuses_a_face_id_that_is_taken_and_keeps_its_photo(exported, make_client, tmp_path,
                                                                             photos, database_url):
    out, records, _ = exported
    target = make_client(tmp_path / "target", database_url=database_url).app.state.service
    import_export(target, out)
    before = _photos_on_disk(target)
    taken = records[0]["faces"][0]["id"]
    prepared = target.people.prepare(photos["John_Travolta"][0].read_bytes())

    with pytest.raises(Conflict, match=taken):
        target.people.restore_person(uuid.uuid4().hex, "Thief", None, None, None, [(taken, prepared, None)])
    assert _photos_on_disk(target) == before
    assert _leftovers(target) == ([], [])


def test_a_failed_write_never_removes_a_photo_a_stored_face_refers_to(exported, make_client, tmp_path,
                                                                      database_url):
    """The race the checks before a write cannot close: a face committed by another process after them."""
    out, records, _ = exported
    target = make_client(tmp_path / "target", database_url=database_url).app.state.service
    import_export(target, out)
    before = _photos_on_disk(target)
    name = target.photos.file_name(records[0]["faces"][0]["id"])

    def work(session):
        raise Conflict("another process stored this face first")

    with pytest.raises(Conflict):
        target.gallery_sync.write(work, new_photos=[name])
    assert _photos_on_disk(target) == before
    assert _leftovers(target) == ([], [])


# -- point 2: bounded reading ----------------------------------------------------------------------------------------

def _sparse(name: str, size: int) -> tuple[tarfile.TarInfo, bytes]:
    """A GNU sparse member (PAX 0.1): 10 bytes in the file, ``size`` bytes when read."""
    info = tarfile.TarInfo(name)
    info.size = 10
    info.pax_headers = {"GNU.sparse.map": "0,10", "GNU.sparse.realsize": str(size)}
    return info, b'{"id": "xx'


def test_a_sparse_people_jsonl_is_refused_before_it_is_read(exported, make_client, tmp_path):
    out, _, members = exported
    sparse = tmp_path / "sparse.tar"
    with tarfile.open(sparse, "w", format=tarfile.PAX_FORMAT) as tar:
        info, data = _sparse("people.jsonl", 300 * 2**20)
        tar.addfile(info, io.BytesIO(data))
        manifest = tarfile.TarInfo("manifest.json")
        manifest.size = len(members["manifest.json"])
        tar.addfile(manifest, io.BytesIO(members["manifest.json"]))
    assert sparse.stat().st_size <= 10240
    target = make_client(tmp_path / "target").app.state.service

    tracemalloc.start()
    try:
        with pytest.raises(BadExport, match="sparse") as refused:
            import_export(target, sparse)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MB allocated to refuse a 10 KB file"
    assert refused.value.details == {"member": "people.jsonl", "problem": "sparse"}
    with pytest.raises(BadExport, match="sparse"):  # what the CLI can tell before its model loads
        check_export(sparse, max_photo_bytes=15 * 2**20)


def _link(name, target, kind):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _member(name, data=b"x", kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, len(data)
    return info, data


@pytest.mark.parametrize("make, problem", [
    (lambda ids: _link(f"photos/{ids[0]}.img", "people.jsonl", tarfile.SYMTYPE), "link"),
    (lambda ids: _link(f"photos/{ids[0]}.img", "manifest.json", tarfile.LNKTYPE), "link"),
    (lambda ids: _member("photos/camera", b"", tarfile.CHRTYPE), "special"),
    (lambda ids: _member("photos/fifo", b"", tarfile.FIFOTYPE), "special"),
    (lambda ids: _member("../outside.txt"), "path"),
    (lambda ids: _member("/etc/faceshot.txt"), "path"),
    (lambda ids: _member("photos/../people.jsonl"), "path"),
    (lambda ids: _sparse(f"photos/{ids[0]}.img", 2**20), "sparse"),
    (lambda ids: _member(f"photos/{ids[0]}.img", b"\xff" * (64 * 1024 + 1)), "too_large"),
    (lambda ids: _member("manifest.json", b" " * (2**20 + 1)), "too_large"),
], ids=["symlink", "hardlink", "device", "fifo", "dotdot", "absolute", "dotdot-inside", "sparse-photo",
        "photo-over-limit", "manifest-over-limit"])
def test_an_unsafe_member_refuses_the_whole_file_before_anything_is_stored(exported, make_client, tmp_path,
                                                                           make, problem):
    out, records, members = exported
    emma, wen = records
    ids = [f["id"] for f in wen["faces"]]
    members = {n: d for n, d in members.items() if n != f"photos/{ids[0]}.img"}  # the unsafe member replaces it
    path = _tar(tmp_path / "unsafe.tar", [emma, wen], members, extra=[make(ids)])
    client = make_client(tmp_path / "target", max_upload_bytes=64 * 1024)
    target = client.app.state.service

    with pytest.raises(BadExport) as refused:
        import_export(target, path)
    assert refused.value.details["problem"] == problem, refused.value.message
    assert client.get("/api/v1/people").json()["items"] == []
    assert not target.photos.folder.exists() or not any(target.photos.folder.iterdir())


def test_a_line_longer_than_any_person_can_be_is_refused_alone(exported, make_client, tmp_path):
    from app.gallery.transfer import MAX_LINE_BYTES

    out, records, members = exported
    emma, wen = records
    huge = json.dumps({**emma, "name": "x" * MAX_LINE_BYTES}).encode()
    path = _tar(tmp_path / "long.tar", [huge, wen], members)
    target = make_client(tmp_path / "target").app.state.service

    tracemalloc.start()
    try:
        summary = import_export(target, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.imported_people == 1 and _refusals(summary) == [(1, "invalid_export")]
    assert "longer than" in summary.refused[0]["reason"]
    assert peak < MAX_LINE_BYTES * 3, f"{peak / 2**20:.0f} MB to skip one line"


# -- point 3: whole people and a summary -----------------------------------------------------------------------------

def _nan_at(record, face: int, position: int, value=float("nan")):
    vector = np.frombuffer(base64.b64decode(record["faces"][face]["embedding"]), dtype="<f4").copy()
    vector[position] = value
    record["faces"][face]["embedding"] = base64.b64encode(vector.astype("<f4").tobytes()).decode()


def test_each_person_is_imported_whole_or_refused_whole_and_every_refusal_has_its_line(exported, make_client,
                                                                                       tmp_path, database_url):
    out, records, members = exported
    emma, wen = records
    _nan_at(emma, 1, 5)  # the second of Emma's two faces: her first face must not be stored either
    later = _clone(wen, members, "After the bad lines")
    path = _tar(tmp_path / "mixed.tar", [wen, emma, b"{not json", {**later, "nmae": "typo"}, b"", later], members)
    client = make_client(tmp_path / "target", database_url=database_url)
    target = client.app.state.service

    summary = import_export(target, path)
    assert summary.imported_people == 2 and summary.imported_faces == 2
    assert _refusals(summary) == [(2, "validation_error"), (3, "invalid_export"), (4, "invalid_export")]
    assert summary.refused[0]["id"] == emma["id"] and summary.refused[0]["name"] == "Emma Watson"
    assert "JSON" in summary.refused[1]["reason"] and "nmae" in summary.refused[2]["reason"]
    names = sorted(p["name"] for p in client.get("/api/v1/people").json()["items"])
    assert names == ["After the bad lines", "Wen Jiabao"]
    assert not (target.photos.folder / f"{emma['faces'][0]['id']}.img").exists()
    assert _leftovers(target) == ([], [])


def _unset_after(monkeypatch):
    """The FACESHOT_* variables the CLI's flags set are put back when the test ends."""
    for name in ("FACESHOT_DATA_DIR", "FACESHOT_DATABASE_URL"):
        monkeypatch.setenv(name, "unset-by-the-test")
        monkeypatch.delenv(name)


def test_the_cli_prints_every_refusal_with_its_line(exported, tmp_path, capsys, database_url, monkeypatch):
    _unset_after(monkeypatch)
    out, records, members = exported
    emma, wen = records
    path = _tar(tmp_path / "mixed.tar", [wen, b"[]", emma], members)

    code = main(["import", "--from-export", str(path), "--data-dir", str(tmp_path / "target"),
                 "--database-url", database_url])
    printed = capsys.readouterr()
    summary = json.loads(printed.out)
    assert summary["imported_people"] == 2
    assert [(r["line"], r["code"]) for r in summary["refused"]] == [(2, "invalid_export")]
    assert "1 refused" in printed.err and "2 imported" in printed.err and code == 1


def test_the_cli_exit_status_says_something_was_refused(exported, tmp_path, capsys, monkeypatch):
    _unset_after(monkeypatch)
    out, records, members = exported
    path = _tar(tmp_path / "mixed.tar", [records[1], b"[]", records[0]], members)
    code = main(["import", "--from-export", str(path), "--data-dir", str(tmp_path / "target")])
    capsys.readouterr()
    assert code == 1


# -- point 4: the real cause -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("edit, says", [
    (lambda r: r.update(external_id="hr\x0017"), "`external_id` contains a NUL character"),
    (lambda r: r.update(name="Ann\u202egnp.exe"), "bidirectional override"),
    (lambda r: r.update(name="Ann\x00"), "`name` contains a NUL character"),
    (lambda r: _nan_at(r, 0, 7), "holds NaN at position 7"),
    (lambda r: _nan_at(r, 0, 0, float("inf")), "holds Infinity at position 0"),
    (lambda r: r["faces"][0].update(embedding=base64.b64encode(b"\0" * 508).decode()), "has 127 values, not 128"),
    (lambda r: r["faces"][0].update(embedding="not base64!"), "not base64"),
], ids=["nul-external-id", "bidi-name", "nul-name", "nan", "infinity", "short", "not-base64"])
def test_a_refusal_names_the_real_cause(exported, make_client, tmp_path, database_url, edit, says):
    out, records, members = exported
    wen = records[1]
    edit(wen)
    client = make_client(tmp_path / "target", database_url=database_url)
    summary = import_export(client.app.state.service, _tar(tmp_path / "edited.tar", [wen], members))
    assert summary.imported_people == 0 and _refusals(summary) == [(1, "validation_error")]
    assert says in summary.refused[0]["reason"]
    assert client.get("/api/v1/people").json()["items"] == []
