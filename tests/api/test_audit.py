"""The audit log: every change with who made it, written in the change's own transaction."""

from __future__ import annotations

import numpy as np

from .conftest import png_bytes, upload


def test_who_enrolled_renamed_moved_and_deleted_whom_and_when(client, photos):
    r = client.post("/api/v1/keys", json={"name": "reception admin", "role": "admin"})
    reception = {"X-API-Key": r.json()["key"]}
    emma = client.post("/api/v1/enroll", data={"name": "Emma Watson"}, headers=reception,
                       files=[upload(p, "images") for p in photos["Emma_Watson"][:2]]).json()["person"]["id"]
    assert client.patch(f"/api/v1/people/{emma}", json={"name": "Emma C. Watson"}, headers=reception).status_code == 200
    assert client.post("/api/v1/collections", json={"name": "north"}).status_code == 201
    assert client.post(f"/api/v1/people/{emma}/move", json={"to": "north"}, headers=reception).status_code == 200
    assert client.delete(f"/api/v1/collections/north/people/{emma}", headers=reception).status_code == 204
    # a refused change leaves no entry: the entry is in the change's transaction
    grey = ("images", ("grey.png", png_bytes(np.full((200, 200, 3), 128, np.uint8)), "image/png"))
    assert client.post("/api/v1/enroll", data={"name": "Nobody"}, files=[grey]).status_code == 422

    log = client.get("/api/v1/audit").json()
    actions = [(e["action"], e["actor"]["name"], e["collection"]) for e in reversed(log["items"])]
    assert actions == [
        ("key.create", "admin (FACESHOT_ADMIN_KEY)", None),
        ("person.enroll", "reception admin", "default"),
        ("person.update", "reception admin", "default"),
        ("collection.create", "admin (FACESHOT_ADMIN_KEY)", "north"),
        ("person.move", "reception admin", "default"),
        ("person.delete", "reception admin", "north"),
    ]
    deleted = log["items"][0]
    assert deleted["target"] == emma and deleted["details"]["name"] == "Emma C. Watson"
    assert [e["action"] for e in client.get("/api/v1/audit", params={"collection": "north"}).json()["items"]] == [
        "person.delete", "collection.create"]
    csv_text = client.get("/api/v1/audit.csv", params={"action": "person.delete"}).text
    assert csv_text.count("\n") == 2 and "reception admin" in csv_text and "Emma C. Watson" in csv_text

    scoped = client.post("/api/v1/keys", json={"name": "north admin", "role": "admin", "collection": "north"})
    assert client.get("/api/v1/audit", headers={"X-API-Key": scoped.json()["key"]}).status_code == 403
