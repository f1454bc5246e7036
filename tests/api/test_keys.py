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
