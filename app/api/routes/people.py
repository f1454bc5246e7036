"""People and their support faces (admin key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status

from app.access.audit import Actor
from app.api.deps import AdminKey, CollectionDep, InferenceSlot, PeopleDep, ReadPhoto, collect_uploads, parse_box
from app.api.gate import GatedRoute
from app.core.errors import ValidationFailed
from app.core.inputs import parse_metadata
from app.core.schemas import EnrollOut, FaceOut, PeoplePage, PersonCreate, PersonOut, PersonUpdate, error_responses
from app.gallery.embeddings import parse_embeddings
from app.gallery.people import EnrollResult, People

# every route here: an admin key, a person that may not exist, a body that may be refused
router = APIRouter(tags=["people"], route_class=GatedRoute, responses=error_responses(401, 403, 404, 422, 429, 503))
PHOTO_ERRORS = error_responses(400, 408, 409, 413, 507)

EMBEDDINGS_HELP = ("instead of photos: a JSON array of embeddings made by this service's encoder (POST /embed), "
                   "for devices that never upload photos; no photo is kept, so `faceshot reembed` cannot re-make them")


def enroll_out(people: People, result: EnrollResult) -> EnrollOut:
    person = people.get_person(result.person.id, None)
    return EnrollOut(person=PersonOut.of(person), faces=[FaceOut.of(f) for f in result.faces],
                     warnings=result.warnings)


@router.post("/enroll", status_code=status.HTTP_201_CREATED, response_model=EnrollOut, responses=PHOTO_ERRORS,
             summary="Create a person from 1-2 photos in one call (all or nothing)")
def enroll(
    people: PeopleDep,
    read: ReadPhoto,
    key: AdminKey,
    collection: CollectionDep,
    _slot: InferenceSlot,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    images: Annotated[list[UploadFile] | None, File(description="one or more photos of the person")] = None,
    image: Annotated[UploadFile | None, File(description="a single photo (instead of `images`)")] = None,
    external_id: Annotated[str | None, Form(max_length=200)] = None,
    metadata: Annotated[str | None, Form(description="a JSON object stored with the person")] = None,
    box: Annotated[str | None, Form(description="x1,y1,x2,y2 of the face to use, when a photo has several")] = None,
    embeddings: Annotated[str | None, Form(description=EMBEDDINGS_HELP)] = None,
    encoder_hash: Annotated[str | None, Form(max_length=64, description="with `embeddings`: the encoder that "
                                                                        "made them")] = None,
    new_person: Annotated[bool, Form(description="true: another person of a name already enrolled, whose face a "
                                                 "photo matches (refused as person_exists otherwise)")] = False,
):
    """A person from one or two photos (or embeddings from POST /embed): every photo is checked and the person
    is stored with all of them, or nothing is stored. Someone already enrolled under this name whose face a photo
    matches is refused (409 person_exists, with their id) unless `new_person` is true. Warnings (not refusals) say
    when a photo looks like someone else, repeats a photo already enrolled, or is of poor quality. Multipart, or
    JSON with base64 photos."""
    meta = parse_metadata(metadata)
    prepared = _prepared(people, read, images, image, box, embeddings, encoder_hash)
    return enroll_out(people, people.enroll(name, prepared, external_id=external_id, metadata=meta,
                                              collection=collection, actor=Actor.of_key(key), new_person=new_person))


def _prepared(people: People, read, images, image, box, embeddings, encoder_hash):
    """Photos, or embeddings instead of photos (one or the other)."""
    if embeddings is not None:
        if images or image:
            raise ValidationFailed("Send photos or `embeddings`, not both.", {"field": "embeddings"})
        return people.prepared_from_embeddings(parse_embeddings(embeddings, "embeddings"), encoder_hash)
    return people.prepare_many([read(f) for f in collect_uploads(images, image)], parse_box(box))


@router.post("/people", status_code=status.HTTP_201_CREATED, response_model=PersonOut,
             responses=error_responses(409, 413))
def create_person(people: PeopleDep, key: AdminKey, collection: CollectionDep, body: PersonCreate):
    """A person without photos yet (add them with POST /people/{id}/faces); `external_id` must be unique."""
    person = people.create_person(body.name, body.external_id, body.metadata, collection, Actor.of_key(key))
    return PersonOut.of(people.get_person(person.id, collection))


@router.get("/people", response_model=PeoplePage)
def list_people(
    people: PeopleDep,
    key: AdminKey,
    collection: CollectionDep,
    search: Annotated[str | None, Query(description="part of a name or external id")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="people per page")] = 50,
    # bounded: databases store 32/64-bit integers
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="people to skip (limit × page)")] = 0,
):
    """People by name, a page at a time; `search` matches the name or external id (literally, case-insensitive)."""
    people, total = people.list_people(search, limit, offset, collection)
    return PeoplePage(items=[PersonOut.of(p) for p in people], total=total, limit=limit, offset=offset)


@router.get("/people/{person_id}", response_model=PersonOut)
def get_person(people: PeopleDep, _key: AdminKey, collection: CollectionDep, person_id: str):
    """One person with their face count and metadata."""
    return PersonOut.of(people.get_person(person_id, collection))


@router.patch("/people/{person_id}", response_model=PersonOut, responses=error_responses(409, 413))
def update_person(people: PeopleDep, key: AdminKey, collection: CollectionDep, person_id: str,
                  body: PersonUpdate):
    """Change the fields sent: `name`, `external_id` (null clears it), `metadata` (replaced whole). An unknown
    field is refused (422)."""
    people.update_person(person_id, body.name, body.external_id, body.metadata, body.model_fields_set, collection,
                          Actor.of_key(key))
    return PersonOut.of(people.get_person(person_id, collection))


@router.delete("/people/{person_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Delete a person with their faces, embeddings and stored photos")
def delete_person(people: PeopleDep, key: AdminKey, collection: CollectionDep, person_id: str):
    """The person with their faces, embeddings and stored photos; the gallery forgets them at once (every
    worker)."""
    people.delete_person(person_id, collection, Actor.of_key(key))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/people/{person_id}/faces", status_code=status.HTTP_201_CREATED, response_model=EnrollOut,
             responses=PHOTO_ERRORS,
             summary="Add support photos to a person (all or nothing)")
def add_faces(
    people: PeopleDep,
    read: ReadPhoto,
    key: AdminKey,
    collection: CollectionDep,
    _slot: InferenceSlot,
    person_id: str,
    images: Annotated[list[UploadFile] | None, File()] = None,
    image: Annotated[UploadFile | None, File(description="a single photo (instead of `images`)")] = None,
    box: Annotated[str | None, Form(description="x1,y1,x2,y2 of the face to use, when a photo has several")] = None,
    embeddings: Annotated[str | None, Form(description=EMBEDDINGS_HELP)] = None,
    encoder_hash: Annotated[str | None, Form(max_length=64, description="with `embeddings`: the encoder that "
                                                                        "made them")] = None,
):
    """More photos (or embeddings) for a person, all or nothing, with the same checks and warnings as enroll."""
    people.get_person(person_id, collection)  # 404 before any work on the photos
    prepared = _prepared(people, read, images, image, box, embeddings, encoder_hash)
    return enroll_out(people, people.add_faces(person_id, prepared, collection, Actor.of_key(key)))


@router.get("/people/{person_id}/faces", response_model=list[FaceOut])
def list_faces(people: PeopleDep, _key: AdminKey, collection: CollectionDep, person_id: str):
    """A person's support faces: box, detector score, the encoder that embedded them, whether the photo is kept."""
    return [FaceOut.of(f) for f in people.get_person(person_id, collection).faces]


@router.delete("/people/{person_id}/faces/{face_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_face(people: PeopleDep, key: AdminKey, collection: CollectionDep, person_id: str, face_id: str):
    """One support face, its embedding and its stored photo."""
    people.delete_face(person_id, face_id, collection, Actor.of_key(key))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/people/{person_id}/faces/{face_id}/image", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
def face_image(people: PeopleDep, _key: AdminKey, collection: CollectionDep, person_id: str, face_id: str):
    """A support face's stored photo, as it was uploaded (404 when photos are not kept)."""
    data, media_type = people.face_image(person_id, face_id, collection)
    return Response(content=data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})
