"""Processes sharing one database catch up on each other's writes person by person, not by a full reload."""

from app.gallery import queries
from tests.data.conftest import make_service


def view(service, probe):
    """What identify would see: every indexed person's name and support count, and the distance to ``probe``."""
    matches = service.gallery.forward(probe, k=max(1, len(service.gallery)))[0]
    return sorted((m.person_id, m.name, m.n_support, round(m.distance, 5)) for m in matches)


def count_full_reloads(service) -> list:
    calls = []
    full_reload = service.gallery_sync.reload

    def counted():
        calls.append(1)
        full_reload()

    service.gallery_sync.reload = counted
    return calls


def test_other_process_writes_arrive_incrementally(database_url, tmp_path, pipeline, prepared):  # noqa: F811
    a = make_service(database_url, tmp_path, pipeline)
    b = make_service(database_url, tmp_path, pipeline)
    reloads = count_full_reloads(b)
    probe = prepared["Emma_Watson"][1].embedding

    emma = a.people.enroll("Emma Watson", prepared["Emma_Watson"][:1])
    wen = a.people.enroll("Wen Jiabao", prepared["Wen_Jiabao"])
    b.gallery_sync.sync(force=True)
    assert view(b, probe) == view(a, probe) and len(b.gallery) == 2

    # several kinds of write while b is not looking, one of them through b itself
    a.people.add_faces(emma.person.id, prepared["Emma_Watson"][1:2])
    a.people.update_person(wen.person.id, "Wen J.", None, None, {"name"})
    b.people.delete_face(wen.person.id, wen.faces[0].id)
    a.gallery_sync.sync(force=True)
    b.gallery_sync.sync(force=True)
    assert view(b, probe) == view(a, probe)
    assert b.gallery.entry(emma.person.id).n_support == 2
    assert b.gallery.entry(wen.person.id).name == "Wen J." and b.gallery.entry(wen.person.id).n_support == 1

    a.people.delete_person(emma.person.id)
    b.gallery_sync.sync(force=True)
    assert b.gallery.entry(emma.person.id) is None and view(b, probe) == view(a, probe)
    with b.sessions() as s:
        assert a.galleries.version == b.galleries.version == queries.gallery_version(s)
    assert reloads == []  # every catch-up above refreshed only the people touched

    fresh = make_service(database_url, tmp_path, pipeline)  # and it agrees with a full rebuild
    assert view(fresh, probe) == view(b, probe)


def test_own_write_after_unseen_foreign_write_is_caught_up(database_url, tmp_path, pipeline, prepared):  # noqa: F811
    a = make_service(database_url, tmp_path, pipeline)
    b = make_service(database_url, tmp_path, pipeline)
    probe = prepared["Wen_Jiabao"][0].embedding
    wen = a.people.enroll("Wen Jiabao", prepared["Wen_Jiabao"][:1])
    b.gallery_sync.sync(force=True)
    emma = a.people.enroll("Emma Watson", prepared["Emma_Watson"][:1])  # b has not looked since
    b.people.update_person(wen.person.id, "Wen J.", None, None, {"name"})
    # b's own write shows at once; the foreign one, skipped over by b's version, at the next check
    assert b.gallery.entry(wen.person.id).name == "Wen J." and b.gallery.entry(emma.person.id) is None
    b.gallery_sync.sync(force=True)
    assert b.gallery.entry(emma.person.id) is not None
    assert view(b, probe) == view(make_service(database_url, tmp_path, pipeline), probe)
    with b.sessions() as s:
        assert b.galleries.version == queries.gallery_version(s)
