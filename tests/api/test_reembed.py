"""``faceshot reembed``: after an encoder change the gallery is re-made from the kept photos, or not at all."""

import json

import pytest

from app.cli import main as faceshot
from app.core.tables import Face
from app.main import build_service
from models.pipeline import FacePipeline

from .conftest import ADMIN, make_settings


@pytest.fixture
def enrolled(tmp_path, pipeline, photos):
    """Two people enrolled by the default encoder; returns the data directory."""
    data_dir = tmp_path / "data"
    service = build_service(make_settings(data_dir), pipeline)
    for name in ("Emma_Watson", "John_Travolta"):
        service.people.enroll(name, service.people.prepare_many([p.read_bytes() for p in photos[name][:2]]))
    return data_dir


def run_reembed(monkeypatch, capsys, data_dir, encoder, *flags):
    monkeypatch.setenv("FACESHOT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("FACESHOT_ENCODER", str(encoder))
    monkeypatch.setenv("FACESHOT_ADMIN_KEY", ADMIN)
    monkeypatch.setenv("FACESHOT_TORCH_THREADS", "1")
    code = faceshot(["reembed", *flags])
    out = capsys.readouterr().out
    return code, json.loads(out[out.index("{"):])


def stored_hashes(service) -> set[str]:
    with service.sessions() as session:
        return {h for (h,) in session.query(Face.encoder_hash).all()}


def test_reembed_makes_the_gallery_usable_with_the_new_encoder(enrolled, other_encoder, photos, monkeypatch, capsys):
    new = FacePipeline.from_spec(str(other_encoder), "cpu")
    with pytest.raises(RuntimeError, match="another encoder"):
        build_service(make_settings(enrolled, encoder=str(other_encoder)), new)

    code, summary = run_reembed(monkeypatch, capsys, enrolled, other_encoder)
    assert code == 0 and summary["stale"] == 4 and summary["reembedded"] == 4 and not summary["unrecoverable"]

    service = build_service(make_settings(enrolled, encoder=str(other_encoder)), new)  # starts now
    assert stored_hashes(service) == {new.encoder.content_hash}
    answer = service.recognition.identify(photos["Emma_Watson"][2].read_bytes())
    assert answer.faces[0].person.name == "Emma_Watson"

    code, summary = run_reembed(monkeypatch, capsys, enrolled, other_encoder)  # nothing left to do
    assert code == 0 and summary["stale"] == 0


def test_a_face_without_its_photo_stops_the_change_unless_told_to_drop_it(enrolled, other_encoder, pipeline,
                                                                          monkeypatch, capsys):
    old = build_service(make_settings(enrolled), pipeline)
    with old.sessions() as session:
        lost = session.query(Face).filter(Face.image_file.is_not(None)).order_by(Face.id).first()
        lost_id, lost_person = lost.id, lost.person_id
    (enrolled / "images" / lost.image_file).unlink()

    code, summary = run_reembed(monkeypatch, capsys, enrolled, other_encoder)
    assert code == 1 and summary["reembedded"] == 0
    assert summary["unrecoverable"] == [{"face_id": lost_id, "person_id": lost_person, "code": "photo_not_kept"}]
    assert stored_hashes(old) == {pipeline.encoder.content_hash}  # nothing changed

    code, summary = run_reembed(monkeypatch, capsys, enrolled, other_encoder, "--delete-unrecoverable")
    assert code == 0 and summary["reembedded"] == 3 and summary["deleted"] == 1
    with old.sessions() as session:
        assert session.get(Face, lost_id) is None
        assert session.query(Face).count() == 3
