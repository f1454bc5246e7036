"""Example answers for the OpenAPI document (one per response model), shaped as the server sends them.

Kept apart from app/core/schemas.py so the models stay readable; tests/api/test_openapi_schema.py checks
that every example validates against its own model, so an example cannot drift from the API.
"""

from __future__ import annotations

PERSON_ID = "9f1c2a7e5b4d4c0e8a6f3b2d1c0e9f8a"
FACE_ID = "3b2d1c0e9f8a9f1c2a7e5b4d4c0e8a6f"
KEY_ID = "0e8a6f3b2d1c0e9f8a9f1c2a7e5b4d4c"
WHEN = "2026-12-02T09:30:00Z"
BOX = {"box": [88.4, 71.2, 162.9, 167.5], "landmarks": [[108.1, 109.4], [143.2, 108.7], [126.0, 128.3],
                                                        [111.5, 147.9], [140.8, 147.2]],
       "det_score": 0.9998, "quality": {"face_size": 74.5, "sharpness": 312.4, "eye_distance": 35.1,
                                        "too_small": False, "blurry": False, "low_confidence": False}}
ENCODER = {"name": "dlib", "architecture": "dlib_resnet_v1", "embedding_size": 128, "device": "cpu",
           "content_hash": "5f0e0a0c2d8b6f2e9f1a7c3d4b5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70"}
OPERATING_POINT = {"source": "FACESHOT_TARGET_FAR", "target_far": 0.01, "gallery_size": 50,
                   "thresholds": {"1": 0.3908, "2": 0.4213, "3": 0.4402}, "stranger_accept_rate": 0.01,
                   "per_person_rate": 0.000212, "expected_recognition": {"1": 0.88, "2": 0.95, "3": 0.97},
                   "warnings": []}
PERSON = {"id": PERSON_ID, "name": "Ada Lovelace", "external_id": "hr-1815", "metadata": {"team": "analytics"},
          "face_count": 2, "created_at": WHEN, "updated_at": WHEN}
FACE = {"id": FACE_ID, "person_id": PERSON_ID, "box": BOX["box"], "det_score": 0.9998,
        "encoder_hash": ENCODER["content_hash"], "has_image": True, "created_at": WHEN, "origin": "upload"}
KEY = {"id": KEY_ID, "name": "front door camera", "role": "recognition", "prefix": "fs_k3Jd9", "created_at": WHEN,
       "revoked_at": None}

EVENT = {"id": "6f3b2d1c0e9f8a9f1c2a7e5b4d4c0e8a", "time": WHEN, "source": "door-1",
         "person": {"id": PERSON_ID, "name": "Ada Lovelace"}, "distance": 0.2412, "threshold": 0.4213,
         "stranger_accept_rate": 0.01,
         "box": BOX["box"], "quality": {"score": 0.82, "face_size": 74.5}, "frames": 14, "duration_s": 2.6,
         "collection": "default", "embedding_kept": False, "corrected": None, "face_url": None}
WEBHOOK = {"id": "1c0e9f8a9f1c2a7e5b4d4c0e8a6f3b2d", "url": "https://hr.example.com/faceshot", "created_at": WHEN,
           "collection": "default", "signature_format": "standard",
           "deliveries": {"pending": 0, "delivered": 41, "failed": 1}}

EXAMPLES = {
    "PersonOut": PERSON,
    "PeoplePage": {"items": [PERSON], "total": 1, "limit": 50, "offset": 0},
    "FaceOut": FACE,
    "EnrollOut": {"person": PERSON, "faces": [FACE, {**FACE, "id": "8a6f3b2d1c0e9f8a9f1c2a7e5b4d4c0e"}],
                  "warnings": []},
    "KeyOut": KEY,
    "KeyCreated": {**KEY, "key": "fs_k3Jd9Qm2xV7pL0aZrT5yWc8nB4hE1uGf"},
    "IdentifyOut": {"faces": [{**BOX, "person": {"id": PERSON_ID, "name": "Ada Lovelace"}, "distance": 0.2137,
                               "similarity": 0.9772, "threshold": 0.4213, "stranger_accept_rate": 0.01,
                               "candidates": [{"person": {"id": PERSON_ID, "name": "Ada Lovelace"},
                                               "distance": 0.2137, "similarity": 0.9772, "match": True}]}],
                    "took_ms": 96.4, "encoder": ENCODER, "operating_point": OPERATING_POINT},
    "VerifyOut": {"match": True, "distance": 0.2137, "similarity": 0.9772, "threshold": 0.4213,
                  "person": {"id": PERSON_ID, "name": "Ada Lovelace"}, "face": BOX, "stranger_accept_rate": 0.000212},
    "CompareOut": {"match": False, "distance": 0.8123, "similarity": 0.6701, "threshold": 0.4871,
                   "threshold_source": "FACESHOT_TARGET_FAR", "stranger_accept_rate": 0.01, "face_a": BOX,
                   "face_b": BOX, "encoder": ENCODER},
    "EmbedOut": {"faces": [{**BOX, "embedding": [-0.0912, 0.1377, 0.0441, 0.0023]}],
                 "encoder": ENCODER, "took_ms": 88.0},
    "DetectOut": {"faces": [BOX], "image": {"width": 250, "height": 250}, "took_ms": 41.7},
    "ModelOut": {"encoder": ENCODER, "threshold": 0.3908, "threshold_by_support": OPERATING_POINT["thresholds"],
                 "threshold_source": "FACESHOT_TARGET_FAR",
                 "gallery": {"people": 50, "faces": 100, "indexed_people": 50, "index_device": "cpu"},
                 "store_images": True, "operating_point": OPERATING_POINT,
                 "encoder_choice": {"spec": "dlib", "source": "stored with the gallery",
                                    "reason": "a new gallery on a CPU host: dlib's ResNet (the dlib+FaceNet fusion is "
                                              "more accurate but 5.5x dearer per face on a CPU; set FACESHOT_ENCODER "
                                              "to choose it)", "decided_at": "2026-12-07T09:30:00Z"}},
    "EventOut": EVENT,
    "CorrectionsOut": {"items": [{"person": {"id": PERSON_ID, "name": "Ada Lovelace"}, "corrections": 3,
                                  "last_corrected_at": WHEN}]},
    "SupportDistancesOut": {"event_id": EVENT["id"], "person": {"id": PERSON_ID, "name": "Ada Lovelace"},
                            "event_distance": 0.4102, "corrected": True, "faces": [
                                {"face_id": FACE_ID, "distance": 0.3871, "has_image": True, "created_at": WHEN},
                                {"face_id": "8a6f3b2d1c0e9f8a9f1c2a7e5b4d4c0e", "distance": 0.5523,
                                 "has_image": True, "created_at": WHEN}]},
    "EventsPage": {"items": [EVENT], "total": 1, "limit": 100, "offset": 0},
    "SuggestionsOut": {"items": [
        {"event_id": EVENT["id"], "person": {"id": PERSON_ID, "name": "Ada Lovelace"}, "source": "door-1",
         "time": WHEN, "distance": 0.3512, "threshold": 0.4245, "quality": 0.71,
         "face_url": f"/api/v1/events/{EVENT['id']}/face"}],
        "rule": {"min_distance_fraction": 0.65, "min_quality": 0.4, "per_person": 3}},
    "PresenceOut": {"since": "2026-12-02", "until": "2026-12-02", "rows": [
        {"day": "2026-12-02", "person": {"id": PERSON_ID, "name": "Ada Lovelace"}, "first_seen": WHEN,
         "last_seen": "2026-12-02T17:41:09Z", "events": 4, "sources": ["door-1"]}]},
    "WebhookOut": WEBHOOK,
    "WebhookCreated": {**WEBHOOK, "deliveries": {"pending": 0, "delivered": 0, "failed": 0},
                       "secret": "whsec_AMpfhkC+a6ruP/36Sj6WQ59nvlahGntYlFkvuZDid6U="},
    "DeliveryOut": {"id": "e9f8a9f1c2a7e5b4d4c0e8a6f3b2d1c0", "event_id": EVENT["id"], "state": "delivered",
                    "attempts": 1, "next_attempt_at": WHEN, "last_status": 204, "last_error": None,
                    "delivered_at": WHEN},
    "AuditPage": {"items": [{"time": WHEN, "actor": {"kind": "key", "id": KEY_ID, "name": "reception admin"},
                             "collection": "default", "action": "person.delete", "target": PERSON_ID,
                             "details": {"name": "Ada Lovelace", "faces": 2}}], "total": 1, "limit": 100, "offset": 0},
    "AccountOut": {"id": "a7e5b4d4c0e8a6f3b2d1c0e9f8a9f1c2", "name": "ann@example.com", "deployment_admin": False,
                   "rights": {"warehouse": "admin", "default": "viewer"}, "created_at": WHEN, "disabled": False},
    "ErrorOut": {"error": {"code": "multiple_faces", "message": "The image holds 2 faces of similar size; say which "
                           "one with `box`.", "details": {"faces": [BOX, BOX], "image_index": 0}}},
}

VISITOR = {"id": 7, "label": "Unknown #7", "status": "active", "seen": 5, "cameras": ["door-1", "gate"],
           "first_seen": WHEN, "last_seen": "2026-12-04T17:12:40Z", "best_event_ids": [EVENT["id"]],
           "best_face_urls": [f"/api/v1/events/{EVENT['id']}/face"], "cannot_link": [9]}
EXAMPLES.update({
    "VisitorOut": VISITOR,
    "VisitorsOut": {"items": [VISITOR]},
    "VisitorNamed": {"person": {**PERSON, "face_count": 1}, "faces": [FACE], "warnings": [], "visitor": 7,
                     "event_ids": [EVENT["id"]]},
    "VisitorDeleted": {"id": 7, "events": 5},
    "VisitorNameIn": {"name": "Ada Lovelace"},
    "VisitorMergeIn": {"other": 9},
    "VisitorSplitIn": {"event_id": EVENT["id"]},
})

# request bodies
EXAMPLES.update({
    "PersonCreate": {"name": "Ada Lovelace", "external_id": "hr-1815", "metadata": {"team": "analytics"}},
    "PersonUpdate": {"name": "Ada King", "metadata": {"team": "analytics", "desk": 12}},
    "KeyCreate": {"name": "front door camera", "role": "recognition"},
    "EventIn": {"time": WHEN, "source": "door-1", "person_id": PERSON_ID, "distance": 0.2412, "threshold": 0.4213,
                "box": BOX["box"], "quality": {"score": 0.82}, "frames": 14, "duration_s": 2.6},
    "EventEnrollIn": {"person_id": PERSON_ID},
    "WebhookIn": {"url": "https://hr.example.com/faceshot"},
    "AccountIn": {"name": "ann@example.com", "password": "correct horse battery staple",
                  "rights": {"warehouse": "admin", "default": "viewer"}},
    "AccountPatch": {"rights": {"warehouse": "admin"}, "disabled": False},
})
