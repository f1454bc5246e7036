"""CompreFace's own Python SDK (PyPI `compreface-sdk`) against a real `faceshot serve`: subjects, examples,
recognition, verification and detection, as a CompreFace user's script runs them.

The SDK decides nothing; its users compare `similarity` with CompreFace's documented threshold, 0.5
(docs/Face-Recognition-Similarity-Threshold.md). That comparison must make faceshot's own decision: the enrolled
are named, a stranger is not.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from compreface import CompreFace

from app.testing.server import ADMIN

COMPREFACE_THRESHOLD = 0.5  # CompreFace's documented default similarity threshold
STRANGERS = ("Yasar_Yakis", "John_Travolta", "Carlos_Menem")


def say(call: str, answer) -> None:
    """The session's transcript (pytest -s shows it)."""
    print(f"{call} -> {json.dumps(answer)[:400]}")


def accepted(answer: dict) -> str | None:
    """The subject a CompreFace user's script names: the most similar one, at or above the default threshold."""
    subjects = sorted(answer["result"][0]["subjects"], key=lambda s: s["similarity"], reverse=True)
    return subjects[0]["subject"] if subjects and subjects[0]["similarity"] >= COMPREFACE_THRESHOLD else None


@pytest.mark.slow  # a faceshot serve process
def test_the_compreface_sdk_enrolls_recognizes_verifies_detects_and_deletes(server, photos):
    url = urlsplit(server.url)
    compre_face = CompreFace(f"{url.scheme}://{url.hostname}", str(url.port), {"det_prob_threshold": 0.8})
    recognition = compre_face.init_face_recognition(ADMIN)
    subjects, faces = recognition.get_subjects(), recognition.get_face_collection()
    emma, wen = photos["Emma_Watson"], photos["Wen_Jiabao"]

    answer = subjects.add("Emma Watson")
    say('subjects.add("Emma Watson")', answer)
    assert answer == {"subject": "Emma Watson"}
    added = []
    for path, name in ((emma[0], "Emma Watson"), (emma[1], "Emma Watson"), (wen[0], "Wen Jiabao")):
        answer = faces.add(str(path), name)
        say(f"face_collection.add({path.name}, {name!r})", answer)
        assert answer["subject"] == name and len(answer["image_id"]) == 32
        added.append(answer["image_id"])
    answer = subjects.list()
    say("subjects.list()", answer)
    assert answer == {"subjects": ["Emma Watson", "Wen Jiabao"]}
    answer = faces.list()
    say("face_collection.list()", answer)
    assert [f["image_id"] for f in answer["faces"]] == added and answer["total_elements"] == 3
    assert [f["subject"] for f in answer["faces"]] == ["Emma Watson", "Emma Watson", "Wen Jiabao"]

    with server.client() as native:  # faceshot's own decision, to hold the SDK's reading to
        def faceshot_names(path):
            face = native.post("/identify", files={"image": (path.name, path.read_bytes())}).json()["faces"][0]
            return face["person"]["name"] if face["person"] else None

        for path, who in ((emma[2], "Emma Watson"), (wen[1], "Wen Jiabao"),
                          *((photos[s][0], None) for s in STRANGERS)):
            answer = recognition.recognize(str(path), {"limit": 0, "prediction_count": 2, "status": True})
            say(f"recognition.recognize({path.name})", answer)
            face = answer["result"][0]
            assert set(face["box"]) == {"probability", "x_max", "y_max", "x_min", "y_min"}
            assert len(face["landmarks"]) == 5 and "total" in face["execution_time"]
            assert answer["plugins_versions"]["calculator"].startswith("faceshot.")
            assert accepted(answer) == faceshot_names(path) == who, (path.name, answer)

    answer = faces.verify(str(emma[2]), added[0])
    say(f"face_collection.verify({emma[2].name}, <Emma's example>)", answer)
    assert answer["result"][0]["subject"] == "Emma Watson"
    assert answer["result"][0]["similarity"] >= COMPREFACE_THRESHOLD
    answer = faces.verify(str(photos[STRANGERS[0]][0]), added[0])
    say(f"face_collection.verify({photos[STRANGERS[0]][0].name}, <Emma's example>)", answer)
    assert answer["result"][0]["similarity"] < COMPREFACE_THRESHOLD

    verification = compre_face.init_face_verification(ADMIN)
    answer = verification.verify(str(wen[1]), str(wen[2]))
    say(f"verification.verify({wen[1].name}, {wen[2].name})", answer)
    assert answer["result"][0]["face_matches"][0]["similarity"] >= COMPREFACE_THRESHOLD
    answer = verification.verify(str(wen[1]), str(emma[0]))
    say(f"verification.verify({wen[1].name}, {emma[0].name})", answer)
    assert answer["result"][0]["face_matches"][0]["similarity"] < COMPREFACE_THRESHOLD

    detection = compre_face.init_face_detection(ADMIN)
    answer = detection.detect(str(emma[2]), {"limit": 1, "det_prob_threshold": 0.8, "status": False})
    say(f"detection.detect({emma[2].name})", answer)
    assert len(answer["result"]) == 1 and answer["result"][0]["box"]["probability"] >= 0.8
    assert "plugins_versions" not in answer and "execution_time" not in answer["result"][0]

    answer = subjects.update("Wen Jiabao", "Wen")
    say('subjects.update("Wen Jiabao", "Wen")', answer)
    assert answer == {"updated": True}
    answer = faces.delete(added[1])
    say("face_collection.delete(<Emma's second example>)", answer)
    assert answer == {"image_id": added[1], "subject": "Emma Watson"}
    answer = faces.delete(added[1])
    say("face_collection.delete(<the same, again>)", answer)
    assert answer["code"] == 44
    answer = faces.delete_all("Wen")
    say('face_collection.delete_all("Wen")', answer)
    assert answer == {"deleted": 1}
    answer = subjects.delete("Emma Watson")
    say('subjects.delete("Emma Watson")', answer)
    assert answer == {"subject": "Emma Watson"}
    answer = subjects.delete_all()
    say("subjects.delete_all()", answer)
    assert answer == {"deleted": 0}
    assert subjects.list() == {"subjects": []}


@pytest.mark.slow
def test_the_sdk_hears_compreface_errors(server, photos):
    url = urlsplit(server.url)
    compre_face = CompreFace(f"{url.scheme}://{url.hostname}", str(url.port))
    recognition = compre_face.init_face_recognition(ADMIN)
    answer = recognition.get_subjects().delete("Nobody")
    say('subjects.delete("Nobody")', answer)
    assert answer == {"message": "Subject Nobody not found", "code": 42}
    answer = compre_face.init_face_recognition("fs_not_a_key").recognize(str(photos["Emma_Watson"][0]))
    say("recognize with a wrong key", answer)
    assert answer["code"] == 10
