"""The Python client (app/client.py), sync and async, against a real `faceshot serve`: every method, no mocks."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from app.client import AsyncFaceshotClient, FaceshotAPIError, FaceshotClient
from app.testing.server import ADMIN, Server


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("client") / "data")
    # webhooks to this host; events keep their faces (and embeddings) for review
    server.start(env={"FACESHOT_WEBHOOK_ALLOW_PRIVATE": "127.0.0.1/32", "FACESHOT_EVENT_FACES": "true"})
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


@pytest.mark.slow  # starts a server process
def test_every_sync_method_against_the_server(served, photos):
    emma, wen = photos["Emma_Watson"], photos["Wen_Jiabao"]
    with FaceshotClient(served, ADMIN) as fs:
        enrolled = fs.enroll("Emma Watson", [emma[0], emma[1].read_bytes()], external_id="hr-1",
                             metadata={"team": "film"})
        person = enrolled.person
        assert (person.name, person.external_id, person.face_count) == ("Emma Watson", "hr-1", 2)
        assert fs.get_person(person.id).metadata == {"team": "film"}
        assert [p.name for p in fs.list_people("emma").items] == ["Emma Watson"]
        assert fs.update_person(person.id, name="Emma C. Watson").name == "Emma C. Watson"

        face = fs.identify(emma[2]).faces[0]
        assert face.person.id == person.id and face.candidates[0].match is True
        assert fs.verify(emma[2], person.id).match is True
        assert fs.compare(emma[0], wen[0]).match is False
        assert len(fs.detect(open(emma[2], "rb")).faces) == 1

        embedded = fs.embed(wen[0])
        vector, encoder_hash = embedded.faces[0].embedding, embedded.encoder["content_hash"]
        assert fs.compare(wen[1], embedding_b=vector, encoder_hash=encoder_hash).match is True
        other = fs.enroll("Wen Jiabao", embeddings=[vector], encoder_hash=encoder_hash).person
        assert fs.identify(embedding=vector, encoder_hash=encoder_hash).faces[0].person.id == other.id
        added = fs.add_faces(other.id, [wen[1]])
        assert len(added.faces) == 1
        faces = fs.list_faces(other.id)
        assert [f.has_image for f in faces] == [False, True]
        assert fs.face_image(other.id, faces[1].id) == wen[1].read_bytes()
        fs.delete_face(other.id, faces[0].id)
        assert len(fs.list_faces(other.id)) == 1

        bare = fs.create_person("No Photo Yet", metadata={"desk": 3})
        assert bare.face_count == 0
        fs.delete_person(bare.id)
        with pytest.raises(FaceshotAPIError) as refused:
            fs.get_person(bare.id)
        assert (refused.value.status, refused.value.code) == (404, "not_found")
        with pytest.raises(FaceshotAPIError) as refused:
            fs.identify(embedding=vector, encoder_hash="0" * 64)
        assert refused.value.code == "encoder_mismatch" and refused.value.details["expected"] == encoder_hash

        assert fs.model().gallery.people == 2 and fs.ready()["ready"] is True
        key = fs.create_key("door", "recognition")
        assert key.key.startswith("fs_") and any(k.id == key.id for k in fs.list_keys())
        with FaceshotClient(served, key.key) as door:
            assert door.identify(emma[2]).faces[0].person.name == "Emma C. Watson"
            with pytest.raises(FaceshotAPIError) as refused:
                door.list_people()
            assert (refused.value.status, refused.value.code) == (403, "forbidden")
        assert fs.revoke_key(key.id).revoked_at is not None

        # events and webhooks, as a watcher and an HR system use them
        hook = fs.create_webhook("http://127.0.0.1:9/unreachable")
        assert hook.secret.startswith("whsec_") and hook.signature_format == "standard"
        assert [(h.id, h.signature_format) for h in fs.list_webhooks()] == [(hook.id, "standard")]
        seen = datetime.now(timezone.utc) - timedelta(minutes=5)  # within FACESHOT_EVENT_MAX_AGE_H of the clock
        event = fs.post_event({"source": "door-1", "person_id": person.id, "distance": 0.2, "threshold": 0.4,
                               "time": seen.isoformat()})
        assert event.person["name"] == "Emma C. Watson" and event.source == "door-1"
        assert [e.id for e in fs.list_events(source="door-1", unknown=False).items] == [event.id]
        assert fs.list_events(unknown=True).total == 0
        rows = fs.presence(seen.date().isoformat()).rows
        assert [(r.person["name"], r.events) for r in rows] == [("Emma C. Watson", 1)]
        assert [d.event_id for d in fs.deliveries(hook.id)] == [event.id]
        fs.delete_webhook(hook.id)
        assert fs.list_webhooks() == []
        assert fs.forget_camera("door-1").deleted == 1 and fs.list_events().total == 0

        # collections: a client bound to one works there; its key reaches nothing else
        assert fs.create_collection("annex").name == "annex"
        assert {c.name for c in fs.list_collections()} == {"default", "annex"}
        annex_key = fs.create_key("annex door", "admin", collection="annex").key
        with FaceshotClient(served, annex_key, collection="annex") as annex:
            moved = fs.move_person(other.id, "annex")
            assert moved.id == other.id and annex.get_person(other.id).name == "Wen Jiabao"
            assert annex.identify(wen[2]).faces[0].person.id == other.id
            assert [p.id for p in annex.list_people().items] == [other.id]
            with pytest.raises(FaceshotAPIError) as refused:
                annex.list_collections()
            assert refused.value.status == 403
        with FaceshotClient(served, annex_key) as outside:  # today's paths are default's
            with pytest.raises(FaceshotAPIError) as refused:
                outside.identify(wen[2])
            assert refused.value.code == "forbidden"
        assert fs.identify(wen[2]).faces[0].person is None  # gone from default
        assert [e.action for e in fs.audit(action="person.move").items] == ["person.move"]

        # admin-page accounts: made, changed and removed by a deployment admin key, never a password shown
        ann = fs.create_account("Ann", "a long enough password", rights={"annex": "viewer"})
        assert (ann.name, ann.rights, ann.deployment_admin, ann.disabled) == ("ann", {"annex": "viewer"}, False, False)
        changed = fs.update_account(ann.id, rights={"annex": "admin", "default": "viewer"}, disabled=True)
        assert (changed.rights, changed.disabled) == ({"annex": "admin", "default": "viewer"}, True)
        assert [a.name for a in fs.list_accounts()] == ["ann"]
        with pytest.raises(FaceshotAPIError) as refused:
            fs.create_account("ann", "another long password", deployment_admin=True)
        assert (refused.value.status, refused.value.code) == (409, "conflict")
        with FaceshotClient(served, annex_key, collection="annex") as annex:
            with pytest.raises(FaceshotAPIError) as refused:
                annex.list_accounts()
            assert refused.value.status == 403
        fs.delete_account(ann.id)
        assert fs.list_accounts() == []
        fs.delete_collection("annex")
        assert [c.name for c in fs.list_collections()] == ["default"]


@pytest.mark.slow
def test_the_async_client_gives_the_same_answers(served, photos):
    probe = photos["Emma_Watson"][2]

    async def run():
        async with AsyncFaceshotClient(served, ADMIN) as fs:
            answers = await asyncio.gather(fs.identify(probe), fs.identify(probe.read_bytes()))
            with pytest.raises(FaceshotAPIError) as refused:
                await fs.enroll("Nobody", [b"not a photo"])
            return answers, refused.value.code

    (a, b), code = asyncio.run(run())
    assert a.faces[0].distance == b.faces[0].distance and code == "invalid_image"
    with FaceshotClient(served, ADMIN) as fs:
        assert fs.identify(probe).faces[0].distance == a.faces[0].distance


@pytest.mark.slow
def test_event_review_methods(served, photos):
    """Issue 29: enroll from an event, not this person, the support photo that pulled it, corrections."""
    import base64

    javier = photos["Javier_Solana"]
    with FaceshotClient(served, ADMIN) as fs:
        person = fs.enroll("Javier Solana", [javier[0]]).person
        embedded = fs.embed(javier[1])
        event = fs.post_event({"source": "door-2", "person_id": person.id, "distance": 0.3, "threshold": 0.4,
                               "face": base64.b64encode(javier[1].read_bytes()).decode(),
                               "embedding": embedded.faces[0].embedding,
                               "encoder_hash": embedded.encoder["content_hash"]})
        assert event.embedding_kept and event.corrected is None
        added = fs.enroll_from_event(event.id, person_id=person.id)
        assert added.person.face_count == 2 and len(added.faces) == 1
        corrected = fs.not_this_person(event.id)
        assert corrected.corrected.kind == "not_this_person" and corrected.corrected.by["kind"] == "key"
        distances = fs.support_distances(event.id)
        # the added face is the event's own (re-encoded): nearest, almost nil
        assert distances.faces[0].face_id == added.faces[0].id and distances.faces[0].distance < 0.05
        assert [(c.person["id"], c.corrections) for c in fs.corrections().items] == [(person.id, 1)]
        assert fs.undo_not_this_person(event.id).corrected is None and fs.corrections(person.id).items == []
        with pytest.raises(FaceshotAPIError) as refused:
            fs.enroll_from_event("0" * 32, person_id=person.id)
        assert refused.value.status == 404 and refused.value.details["reason"] == "event_not_found"

    async def run():
        async with AsyncFaceshotClient(served, ADMIN) as fs:
            return await fs.support_distances(event.id)

    assert asyncio.run(run()).faces[0].face_id == added.faces[0].id


@pytest.mark.slow
def test_suggestion_methods(served, photos):
    """Issue 29, point 5: a far, well-seen named event is suggested; dismissed, it is not."""
    import base64

    padraig = photos["Padraig_Harrington"]
    with FaceshotClient(served, ADMIN) as fs:
        person = fs.enroll("Padraig Harrington", [padraig[0]]).person
        embedded = fs.embed(padraig[2])
        event = fs.post_event({"source": "door-3", "person_id": person.id, "distance": 0.36, "threshold": 0.4,
                               "quality": {"score": 0.7}, "face": base64.b64encode(padraig[2].read_bytes()).decode(),
                               "embedding": embedded.faces[0].embedding,
                               "encoder_hash": embedded.encoder["content_hash"]})
        offered = fs.suggestions()
        assert event.id in [s.event_id for s in offered.items] and offered.rule.per_person >= 1
        row = next(s for s in offered.items if s.event_id == event.id)
        assert (row.person["id"], row.source, row.distance, row.quality) == (person.id, "door-3", 0.36, 0.7)

    async def run():
        async with AsyncFaceshotClient(served, ADMIN) as fs:
            await fs.dismiss_suggestion(event.id)
            return await fs.suggestions(limit=500)

    assert event.id not in [s.event_id for s in asyncio.run(run()).items]
