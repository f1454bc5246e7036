"""Replicas with data folders of their own, on one database and one Redis (issue 30, points 2 and 4): what one
changes, the other honours at once: admin sign-ins and sign-outs, revoked keys, deleted people, a key's rate limit
and the brake on guessed keys."""

from __future__ import annotations

import re

import pytest

from app.access.admin_sessions import COOKIE

from .conftest import ADMIN, upload

API = "/api/v1"
REDIS_DB = "redis://127.0.0.1:6379/14"  # this file's alone: emptied at the start of each test


@pytest.fixture
def redis_url():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_DB)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    yield REDIS_DB
    client.flushdb()


@pytest.fixture
def replicas(make_client, tmp_path, postgres_url, redis_url):
    def replica(name, **overrides):
        return make_client(tmp_path / name, database_url=postgres_url, photo_store="database",
                           rate_limit_storage=redis_url, **overrides)

    return replica


def sign_in(client, secret: str, account: str = "") -> tuple[str, str]:
    page = client.get("/admin/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/admin/login", data={"secret": secret, "login_token": token, "account": account},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/settings").text).group(1)
    return client.cookies.get(COOKIE), csrf


def page_with(client, cookie: str):
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie, path="/admin")
    return client.get("/admin/settings", follow_redirects=False)


def test_a_change_on_one_replica_holds_on_the_other(replicas, photos):
    a, b = replicas("a"), replicas("b")
    # an admin signed in through A is signed in on B (one signing secret, in the database) ...
    cookie, csrf = sign_in(a, ADMIN)
    assert page_with(b, cookie).status_code == 200
    # ... and signed out through A, out on B too
    page_with(a, cookie)
    assert a.post("/admin/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert page_with(b, cookie).status_code == 303
    a.cookies.clear()
    b.cookies.clear()

    camera = a.post(f"{API}/keys", json={"name": "door", "role": "recognition"}).json()
    assert b.get(f"{API}/model", headers={"X-API-Key": camera["key"]}).status_code == 200
    assert a.delete(f"{API}/keys/{camera['id']}").status_code == 200
    assert b.get(f"{API}/model", headers={"X-API-Key": camera["key"]}).status_code == 401

    emma = a.post(f"{API}/enroll", data={"name": "Emma Watson"},
                  files=[upload(photos["Emma_Watson"][0], "images")]).json()["person"]
    named = b.post(f"{API}/identify", files=[upload(photos["Emma_Watson"][1])]).json()["faces"][0]["person"]
    assert named["id"] == emma["id"]
    assert b.get(f"{API}/people/{emma['id']}/faces").json()[0]["has_image"]
    assert a.delete(f"{API}/people/{emma['id']}").status_code == 204
    assert b.post(f"{API}/identify", files=[upload(photos["Emma_Watson"][1])]).json()["faces"][0]["person"] is None

    # a collection deleted through A is gone on B, with its people
    assert a.post(f"{API}/collections", json={"name": "annex"}).status_code == 201
    wen = b.post(f"{API}/collections/annex/enroll", data={"name": "Wen Jiabao"},
                 files=[upload(photos["Wen_Jiabao"][0], "images")])
    assert wen.status_code == 201, wen.text
    assert a.delete(f"{API}/collections/annex").status_code == 204
    assert b.post(f"{API}/collections/annex/identify", files=[upload(photos["Wen_Jiabao"][1])]).status_code == 404

    # an account disabled through A is signed out on B
    made = a.post(f"{API}/admin-accounts", json={"name": "ann", "password": "a long password 1",
                                                  "deployment_admin": True}).json()
    cookie, _ = sign_in(b, "a long password 1", account="ann")
    assert page_with(b, cookie).status_code == 200
    b.cookies.clear()
    assert a.patch(f"{API}/admin-accounts/{made['id']}", json={"disabled": True}).status_code == 200
    assert page_with(b, cookie).status_code == 303


def test_rate_limits_and_the_guessing_brake_count_across_replicas(replicas):
    a = replicas("a", rate_limit="4/minute", auth_failure_limit="3/minute")
    b = replicas("b", rate_limit="4/minute", auth_failure_limit="3/minute")
    camera = a.post(f"{API}/keys", json={"name": "door", "role": "recognition"}).json()
    key = {"X-API-Key": camera["key"]}
    answers = [(a if i % 2 else b).get(f"{API}/model", headers=key).status_code for i in range(5)]
    assert answers == [200, 200, 200, 200, 429]  # four between them, not four each

    wrong = {"X-API-Key": "fs_" + "x" * 40}
    assert [a.get(f"{API}/model", headers=wrong).status_code for _ in range(3)] == [401] * 3
    assert b.get(f"{API}/model", headers=wrong).status_code == 429  # B counts A's failures


def test_a_rate_limit_store_that_is_gone_does_not_stop_the_door(make_client, tmp_path, caplog):
    """Redis down (nothing listens on port 1): each check counts in the process instead of failing the request."""
    client = make_client(tmp_path / "data", rate_limit_storage="redis://127.0.0.1:1/0", rate_limit="3/minute")
    camera = client.post(f"{API}/keys", json={"name": "door", "role": "recognition"}).json()
    answers = [client.get(f"{API}/model", headers={"X-API-Key": camera["key"]}).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]  # still limited: in this process's count
    assert any("rate-limit store unavailable" in r.message for r in caplog.records)
