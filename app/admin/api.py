"""JSON endpoints the admin page's script calls: session cookie + X-CSRF-Token, never X-API-Key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile, status
from fastapi.responses import JSONResponse

from app.admin.auth import AdminRoute, AdminWrite, actor_of
from app.admin.scope import current_collection, person_collection
from app.api.deps import InferenceSlot, PeopleDep, ReadPhoto, RecognitionDep, parse_box
from app.core.errors import ValidationFailed
from app.core.inputs import parse_metadata
from app.gallery.people import People
from app.inference.runner import MAX_FACES_PER_ENROLL

router = APIRouter(prefix="/admin/api", route_class=AdminRoute, include_in_schema=False)


def _prepare(people: People, read, images: list[UploadFile], boxes: list[str]):
    """Each photo's chosen face (``boxes[i]`` as x1,y1,x2,y2, or empty for the only/dominant face)."""
    if not images:
        raise ValidationFailed("Add at least one photo.", {"field": "images"})
    if len(images) > MAX_FACES_PER_ENROLL:
        raise ValidationFailed(f"At most {MAX_FACES_PER_ENROLL} photos at once.", {"field": "images"})
    if boxes and len(boxes) != len(images):
        raise ValidationFailed("Send one box (or an empty one) per photo.", {"field": "boxes"})
    prepared = []
    for i, upload in enumerate(images):
        try:
            prepared.append(people.prepare(read(upload), parse_box(boxes[i]) if boxes else None))
        except Exception as exc:
            if hasattr(exc, "details"):
                exc.details = {**exc.details, "image_index": i}
            raise
    return prepared


@router.post("/detect")
def detect(recognition: RecognitionDep, read: ReadPhoto, _s: AdminWrite, _slot: InferenceSlot,
           image: Annotated[UploadFile, File()]):
    """Boxes and quality hints for one photo, before it is used for anything."""
    return recognition.detect(read(image))


@router.post("/check")
def check(request: Request, people: PeopleDep, read: ReadPhoto, session: AdminWrite, _slot: InferenceSlot,
          images: Annotated[list[UploadFile], File()], boxes: Annotated[list[str], Form()] = [],  # noqa: B006
          person_id: Annotated[str | None, Form()] = None):
    """What enrolling these photos would warn about (someone else's face in the collection, a near-duplicate);
    stores nothing."""
    collection = (person_collection(request, session, person_id, change=True) if person_id
                  else current_collection(request, session, change=True))
    prepared = _prepare(people, read, images, boxes)
    return {"warnings": people.enrollment_warnings(prepared, person_id or None, collection),
            "faces": [{"box": p.box, "quality": p.quality} for p in prepared]}


@router.post("/enroll", status_code=status.HTTP_201_CREATED)
def enroll(request: Request, people: PeopleDep, read: ReadPhoto, session: AdminWrite, _slot: InferenceSlot,
           name: Annotated[str, Form()],
           images: Annotated[list[UploadFile], File()], boxes: Annotated[list[str], Form()] = [],  # noqa: B006
           external_id: Annotated[str | None, Form(max_length=200)] = None,
           metadata: Annotated[str | None, Form()] = None, new_person: Annotated[bool, Form()] = False):
    collection = current_collection(request, session, change=True)  # the page's, sent by its script
    meta = parse_metadata(metadata)  # refused before any photo is read
    result = people.enroll(name, _prepare(people, read, images, boxes), external_id=(external_id or "").strip() or None,
                            metadata=meta, collection=collection, actor=actor_of(request, session),
                            new_person=new_person)
    return JSONResponse({"person": {"id": result.person.id, "name": result.person.name},
                         "faces": len(result.faces), "warnings": result.warnings,
                         "url": f"/admin/people/{result.person.id}?done=enrolled"}, status_code=201)


@router.post("/people/{person_id}/faces", status_code=status.HTTP_201_CREATED)
def add_faces(request: Request, people: PeopleDep, read: ReadPhoto, session: AdminWrite, _slot: InferenceSlot,
              person_id: str,
              images: Annotated[list[UploadFile], File()], boxes: Annotated[list[str], Form()] = []):  # noqa: B006
    """More photos for a person, with the faces chosen on the page (the enroll page's "add to them instead" too)."""
    collection = person_collection(request, session, person_id, change=True)  # 404 before any photo is read
    result = people.add_faces(person_id, _prepare(people, read, images, boxes), collection=collection,
                               actor=actor_of(request, session))
    return JSONResponse({"faces": len(result.faces), "warnings": result.warnings,
                         "url": f"/admin/people/{person_id}?done=faces_added"}, status_code=201)


@router.post("/identify")
def identify(request: Request, recognition: RecognitionDep, read: ReadPhoto, session: AdminWrite,
             _slot: InferenceSlot,
             image: Annotated[UploadFile, File()]):
    """Try it and Live: who this is in the page's collection (never another's)."""
    collection = current_collection(request, session)
    return recognition.identify(read(image), top_k=3, collection=collection)
