"""The data layer against real databases: SQLite always, PostgreSQL when FACESHOT_TEST_POSTGRES_URL is set."""


import numpy as np
import pytest
from sqlalchemy import update

from app.core.errors import Conflict, NotFound
from app.core.tables import Face
from app.gallery import queries
from tests.data.conftest import make_service


def test_write_read_delete_and_reload(database_url, tmp_path, pipeline, prepared):
    service = make_service(database_url, tmp_path, pipeline)
    v0 = service.galleries.version
    emma = service.people.enroll("Emma Watson", prepared["Emma_Watson"], external_id="E1", metadata={"team": "ops"})
    wen = service.people.enroll("Wen Jiabao", prepared["Wen_Jiabao"][:1])
    assert service.galleries.version == v0 + 2 and len(service.gallery) == 2

    with service.sessions() as s:
        faces = s.query(Face).filter_by(person_id=emma.person.id).all()
        assert len(faces) == 2
        assert all(f.encoder_hash == pipeline.encoder.content_hash for f in faces)
        assert np.allclose(faces[0].vector, prepared["Emma_Watson"][0].embedding)

    # a second process on the same database rebuilds the same index
    other = make_service(database_url, tmp_path, pipeline)
    probe = prepared["Emma_Watson"][1].embedding
    a, b = service.gallery.forward(probe, k=2)[0], other.gallery.forward(probe, k=2)[0]
    assert [(m.person_id, round(m.distance, 5)) for m in a] == [(m.person_id, round(m.distance, 5)) for m in b]
    assert other.people.get_person(emma.person.id).meta == {"team": "ops"}

    people, total = service.people.list_people("wen", 10, 0)
    assert total == 1 and people[0].id == wen.person.id

    service.people.delete_person(emma.person.id)
    with pytest.raises(NotFound):
        service.people.get_person(emma.person.id)
    with service.sessions() as s:
        assert s.query(Face).filter_by(person_id=emma.person.id).count() == 0  # cascaded
    assert service.gallery.entry(emma.person.id) is None
    # the other process notices the version move and drops the person too
    other.gallery_sync.sync(force=True)
    assert other.gallery.entry(emma.person.id) is None and len(other.gallery) == 1


def test_failed_writes_change_nothing(database_url, tmp_path, pipeline, prepared):
    service = make_service(database_url, tmp_path, pipeline)
    service.people.enroll("Emma Watson", prepared["Emma_Watson"][:1], external_id="E1")
    version, size = service.galleries.version, len(service.gallery)
    with pytest.raises(Conflict):
        service.people.enroll("Someone Else", prepared["Wen_Jiabao"], external_id="E1")
    assert (service.galleries.version, len(service.gallery)) == (version, size)
    assert service.people.list_people(None, 10, 0)[1] == 1
    assert list((tmp_path / "data" / "images").glob("*")).__len__() == 1  # the refused photos were removed

    def explode(session):
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        service.gallery_sync.write(explode)
    with service.sessions() as s:
        assert queries.gallery_version(s) == version


def test_embeddings_of_another_encoder_are_refused(database_url, tmp_path, pipeline, prepared):
    service = make_service(database_url, tmp_path, pipeline)
    service.people.enroll("Emma Watson", prepared["Emma_Watson"][:1])
    with service.sessions.begin() as s:
        s.execute(update(Face).values(encoder_hash="0123456789abcdef"))
    with pytest.raises(RuntimeError, match="another encoder"):
        service.gallery_sync.check_encoder_matches_stored()
