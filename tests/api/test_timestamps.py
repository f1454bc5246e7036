"""Times in responses say they are UTC, on SQLite (which stores them naive) as on PostgreSQL."""

from datetime import datetime, timedelta


def utc(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.utcoffset() == timedelta(0), text
    return value


def test_people_faces_and_keys_carry_utc_times(client, photos):
    created = client.post("/api/v1/people", json={"name": "Emma"}).json()
    person = client.get(f"/api/v1/people/{created['id']}").json()  # read back from the database
    assert utc(created["created_at"]) == utc(person["created_at"])
    utc(person["updated_at"])
    with photos["Emma_Watson"][0].open("rb") as f:
        added = client.post(f"/api/v1/people/{person['id']}/faces", files=[("images", ("e.jpg", f.read()))]).json()
    listed = client.get(f"/api/v1/people/{person['id']}/faces").json()
    assert utc(added["faces"][0]["created_at"]) == utc(listed[0]["created_at"])
    assert all(utc(k["created_at"]) for k in client.get("/api/v1/keys").json())
