"""API-key management cannot lock the admin out: the last active admin key is not revocable."""

from .test_errors import assert_error


def test_the_last_admin_key_cannot_be_revoked(client):
    (first,) = [k for k in client.get("/api/v1/keys").json() if k["role"] == "admin"]
    err = assert_error(client.delete(f"/api/v1/keys/{first['id']}"), 409, "conflict")
    assert err["details"]["key_id"] == first["id"]
    assert client.get("/api/v1/keys").status_code == 200  # still signed in

    second = client.post("/api/v1/keys", json={"name": "second admin", "role": "admin"}).json()
    revoked = client.delete(f"/api/v1/keys/{first['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert_error(client.get("/api/v1/keys"), 401, "unauthorized")  # the client still sends the first key

    other = {"X-API-Key": second["key"]}
    assert_error(client.delete(f"/api/v1/keys/{second['id']}", headers=other), 409, "conflict")
    # recognition keys never count as admins, and revoking one is always allowed
    camera = client.post("/api/v1/keys", json={"name": "camera", "role": "recognition"}, headers=other).json()
    assert client.delete(f"/api/v1/keys/{camera['id']}", headers=other).status_code == 200


def test_two_concurrent_revocations_cannot_remove_the_last_admin(database_url, tmp_path):
    """Both transactions read "two admins left" before either writes: only one may win (issue 11, point 5)."""
    import threading

    from sqlalchemy import event, select

    from app.access import keys
    from app.core.config import Settings
    from app.core.errors import Conflict
    from app.core.tables import ApiKey
    from app.startup import prepare_deployment

    db, _ = prepare_deployment(Settings(data_dir=tmp_path / "data", database_url=database_url))
    first, _ = keys.create_key(db.sessions, "first admin", "admin")
    second, _ = keys.create_key(db.sessions, "second admin", "admin")
    with db.sessions() as s:
        active = s.execute(select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None))).all()
    assert len(active) == 3  # the generated key as well: revoke it first, directly
    keys.revoke_key(db.sessions, next(i for (i,) in active if i not in (first.id, second.id)))

    # Hold each transaction at its first UPDATE until the other has reached its own: the interleaving
    # under which a read-then-write guard lets both through.
    barrier, reached = threading.Barrier(2), threading.local()

    @event.listens_for(db.engine, "before_cursor_execute")
    def meet(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE API_KEYS") and not getattr(reached, "done", False):
            reached.done = True
            barrier.wait(timeout=30)

    outcomes = []

    def revoke(key_id):
        try:
            keys.revoke_key(db.sessions, key_id)
            outcomes.append("revoked")
        except Conflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=revoke, args=(k.id,)) for k in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    event.remove(db.engine, "before_cursor_execute", meet)
    assert sorted(outcomes) == ["refused", "revoked"]
    with db.sessions() as s:
        assert s.execute(select(ApiKey).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None))).first()
    db.close()


def test_a_restart_recovers_an_admin_path_when_every_admin_key_is_revoked(pipeline, tmp_path):
    from datetime import datetime, timezone

    from fastapi.testclient import TestClient
    from sqlalchemy import update

    from app.core.config import Settings
    from app.core.tables import ApiKey
    from app.main import create_app

    from .conftest import ADMIN

    def revoke_every_admin_key(client):
        with client.app.state.service.sessions.begin() as s:
            s.execute(update(ApiKey).values(revoked_at=datetime.now(timezone.utc)))

    # a generated key: a restart writes a new one into <data dir>/admin_key
    data = tmp_path / "generated"
    with TestClient(create_app(Settings(data_dir=data, torch_threads=1), pipeline)) as client:
        old = (data / "admin_key").read_text().strip()
        revoke_every_admin_key(client)
        assert client.get("/api/v1/keys", headers={"X-API-Key": old}).status_code == 401
    with TestClient(create_app(Settings(data_dir=data, torch_threads=1), pipeline)) as client:
        new = (data / "admin_key").read_text().strip()
        assert new != old and (data / "admin_key").stat().st_mode & 0o077 == 0
        assert client.get("/api/v1/keys", headers={"X-API-Key": new}).status_code == 200

    # FACESHOT_ADMIN_KEY: a restart makes it active again
    data = tmp_path / "configured"
    with TestClient(create_app(Settings(data_dir=data, admin_key=ADMIN, torch_threads=1), pipeline)) as client:
        revoke_every_admin_key(client)
        assert client.get("/api/v1/keys", headers={"X-API-Key": ADMIN}).status_code == 401
    with TestClient(create_app(Settings(data_dir=data, admin_key=ADMIN, torch_threads=1), pipeline)) as client:
        assert client.get("/api/v1/keys", headers={"X-API-Key": ADMIN}).status_code == 200
