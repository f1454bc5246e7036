"""Gallery changes announced by PostgreSQL (issue 30, point 3): a listening process searches without a database
round trip while nothing changed, catches a write as soon as its notification arrives, and falls back to the
version check before every search while it is not listening."""

import threading

import pytest
from sqlalchemy import event

from tests.data.conftest import make_service

pytestmark = pytest.mark.postgres


def statements(service) -> list[str]:
    """Every SQL statement ``service``'s engine runs from now on."""
    seen: list[str] = []
    event.listen(service.db.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def wait_for(condition, timeout=10.0) -> bool:
    """Until ``condition()`` holds: woken by nothing but its own checks, each 5 ms apart (no fixed sleep)."""
    done = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if condition():
            return True
        done.wait(0.005)
    return condition()


def test_a_listening_process_asks_the_database_only_after_a_write(postgres_url, tmp_path, pipeline, prepared):
    a = make_service(postgres_url, tmp_path, pipeline)
    b = make_service(postgres_url, tmp_path, pipeline)
    try:
        b.notifications.start()
        assert wait_for(lambda: b.notifications.listening)
        probe = prepared["Emma_Watson"][1].embedding
        b.recognition.identify(None, embedding=probe)  # the check the listener's start asks for
        sql = statements(b)
        for _ in range(5):
            assert b.recognition.identify(None, embedding=probe).faces[0].person is None
        assert sql == []  # five searches, no round trip

        emma = a.people.enroll("Emma Watson", prepared["Emma_Watson"][:1])
        assert wait_for(lambda: b.notifications._changed.is_set())  # the commit's notification arrived
        found = b.recognition.identify(None, embedding=probe).faces[0]
        assert found.person is not None and found.person.id == emma.person.id
        assert any("gallery_state" in s for s in sql)  # one version check, then quiet again
        sql.clear()
        b.recognition.identify(None, embedding=probe)
        assert sql == []

        # the listener gone (the database restarted, say): every search checks the version again
        b.notifications.stop()
        b.recognition.identify(None, embedding=probe)
        assert any("gallery_state" in s for s in sql)
    finally:
        b.notifications.stop()
        a.close()
        b.close()


def test_two_deployments_in_one_database_listen_on_channels_of_their_own(postgres_url, tmp_path, pipeline):
    from tests.conftest import fresh_postgres_schema

    a = make_service(postgres_url, tmp_path / "a", pipeline)
    with fresh_postgres_schema() as other_url:
        c = make_service(other_url, tmp_path / "c", pipeline)
        try:
            assert a.notifications.channel != c.notifications.channel  # each its instance id's
        finally:
            c.close()
    a.close()
