"""A collection's path never leads into another collection, and a malformed name never reaches the database
(issue 26, points 5 and 8)."""

import pytest

from .conftest import upload


@pytest.fixture
def db_client(make_client, database_url, tmp_path):
    return make_client(tmp_path / "data", database_url=database_url)


def test_a_trailing_slash_redirects_within_the_collection_never_to_default(client, photos):
    """`…/collections/alpha/enroll/` answered 307 to the default collection's route: clients that follow redirects
    (httpx, requests, curl -L) enrolled into, and identified against, `default`."""
    assert client.post("/api/v1/collections", json={"name": "alpha"}).status_code == 201
    r = client.post("/api/v1/collections/alpha/enroll/", data={"name": "Emma Watson"},
                    files=[upload(photos["Emma_Watson"][0], "images")], follow_redirects=False)
    assert r.status_code in (307, 308) and r.headers["location"].endswith("/api/v1/collections/alpha/enroll")
    r = client.post("/api/v1/collections/alpha/enroll/", data={"name": "Emma Watson"},
                    files=[upload(photos["Emma_Watson"][0], "images")], follow_redirects=True)
    assert r.status_code == 201, r.text
    assert client.get("/api/v1/collections/alpha/people").json()["total"] == 1
    assert client.get("/api/v1/people").json()["total"] == 0  # nothing landed in default
    r = client.get("/api/v1/collections/alpha/people/?limit=5", follow_redirects=False)
    assert r.headers["location"].endswith("/api/v1/collections/alpha/people?limit=5")


def test_a_malformed_collection_name_is_422_before_any_query(db_client):
    """A NUL in the segment answered 500 on PostgreSQL and reset the connection; 3,000 characters were looked up."""
    for name in ("a%00", "a" * 3000, "UPPER", "-leading"):
        r = db_client.get(f"/api/v1/collections/{name}/people")
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", (name[:20], r.text)
    # and without a key too: nothing about the name is looked up
    r = db_client.get("/api/v1/collections/a%00/people", headers={"X-API-Key": ""})
    assert r.status_code == 422


def test_collection_paths_are_counted_and_logged_under_their_route(client):
    """Issue 26, point 14: they were all `unmatched` in the metrics and the access log."""
    assert client.post("/api/v1/collections", json={"name": "alpha"}).status_code == 201
    assert client.get("/api/v1/collections/alpha/people").status_code == 200
    metrics = client.get("/metrics").text
    assert 'route="/api/v1/collections/{collection}/people",status="200"' in metrics
