"""PostgreSQL goes away under a running service: /ready fails, writes answer 503 and store nothing,
and the service recovers by itself when the database is back (no restart)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from app.core.tables import StoredPhoto
from tests.api.conftest import ADMIN

from .conftest import TcpProxy


@pytest.mark.parametrize("store", ["folder", "database"])
def test_database_outage_and_recovery(make_client, postgres_url, tmp_path, photos, store):
    url = make_url(postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.restore()
    client = make_client(tmp_path / "data", database_url=url.set(host="127.0.0.1", port=proxy.port)
                         .render_as_string(hide_password=False), photo_store=store)
    photo = lambda name, i: ("images", (f"{name}{i}.jpg", photos[name][i].read_bytes(), "image/jpeg"))  # noqa: E731
    r = client.post("/api/v1/enroll", data={"name": "Emma Watson"}, files=[photo("Emma_Watson", 0)])
    assert r.status_code == 201, r.text
    emma = r.json()["person"]["id"]

    proxy.cut()
    r = client.get("/api/v1/ready")
    assert r.status_code == 503 and r.json()["checks"] == {"model_loaded": True, "database": False}
    assert client.get("/api/v1/health").status_code == 200  # alive, just not ready
    for method, path, kwargs in [
        ("post", "/api/v1/enroll", {"data": {"name": "Wen Jiabao"}, "files": [photo("Wen_Jiabao", 0)]}),
        ("post", "/api/v1/people", {"json": {"name": "Nobody"}}),
        ("delete", f"/api/v1/people/{emma}", {}),
        ("post", "/api/v1/identify", {"files": {"image": ("q.jpg", photos["Emma_Watson"][2].read_bytes())}}),
    ]:
        r = getattr(client, method)(path, **kwargs)
        assert r.status_code == 503, (path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "unavailable"
    assert not list((tmp_path / "data" / "images").glob("*.img"))[1:], "a refused write left a photo behind"

    proxy.restore()
    direct = create_engine(postgres_url)
    with direct.connect() as conn:  # the database store: Emma's photo, and nothing of the refused writes
        assert conn.execute(select(func.count()).select_from(StoredPhoto)).scalar_one() == (store == "database")
    direct.dispose()
    assert client.get("/api/v1/ready").status_code == 200
    r = client.post("/api/v1/enroll", data={"name": "Wen Jiabao"}, files=[photo("Wen_Jiabao", 0)])
    assert r.status_code == 201, r.text
    people = client.get("/api/v1/people").json()["items"]
    assert sorted(p["name"] for p in people) == ["Emma Watson", "Wen Jiabao"]  # Emma was not deleted, Nobody not made
    r = client.post("/api/v1/identify", files={"image": ("q.jpg", photos["Emma_Watson"][2].read_bytes())})
    assert r.json()["faces"][0]["person"]["name"] == "Emma Watson"
    assert client.headers["X-API-Key"] == ADMIN
    proxy.cut()
    proxy.restore()  # and a second, shorter outage heals too
    assert client.get("/api/v1/people").status_code == 200
