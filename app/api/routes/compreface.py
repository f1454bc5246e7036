"""CompreFace's REST API (recognition, detection, verification), for clients written for CompreFace.

Its paths, parameters, JSON and errors (``{"message", "code"}`` with CompreFace's codes and statuses), on
faceshot: the ``x-api-key`` is a faceshot key, and the collection it works in is the CompreFace service. Reading
and recognising take any key; changing subjects and examples, and listing them, an admin key.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Body, File, Query, Request, Response, UploadFile, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.access.audit import Actor
from app.api.deps import (
    API_KEY_HEADER,
    CollectionDep,
    CompreFaceDep,
    InferenceSlot,
    ReadPhoto,
    ServiceAdminKey,
    ServiceRecognitionKey,
    SettingsDep,
)
from app.api.gate import GatedRoute
from app.core.errors import Unauthorized
from app.recognition.compreface import (
    CompreFaceDetectOut,
    CompreFaceExample,
    CompreFaceExamplesPage,
    CompreFaceRecognizeOut,
    CompreFaceVerificationOut,
    CompreFaceVerifyExampleOut,
    Options,
)
from models.errors import FaceshotError

log = logging.getLogger(__name__)

# faceshot's error code -> (HTTP status, CompreFace's code): CompreFace answers 400 to nearly every refusal
# (java/common/.../handler/CommonExceptionCode.java), 404 to what is not found
CODES = {
    "no_face": (400, 28), "no_face_in_box": (400, 28), "multiple_faces": (400, 31),
    "invalid_image": (400, 21), "decode_timeout": (400, 21), "invalid_multipart": (400, 0),
    "validation_error": (400, 26), "too_many_images": (400, 26), "encoder_mismatch": (400, 26),
    "subject_not_found": (404, 42), "example_not_found": (404, 44), "not_found": (404, 0),
    "subject_exists": (400, 43), "person_exists": (400, 43), "conflict": (400, 0), "forbidden": (403, 1),
}
FILES = ("file", "source_image", "target_image")


# what each operation answers, as faceshot answered it (the OpenAPI document's examples)
BOX = {"probability": 1.0, "x_max": 174, "y_max": 187, "x_min": 81, "y_min": 62}
LANDMARKS = [[104, 115], [149, 112], [127, 140], [106, 154], [152, 151]]
IMAGE_ID = "b651b53afb1e4a30bfa4878efd9296c0"
EXAMPLES = {
    "subject": {"subject": "Emma Watson"},
    "subjects": {"subjects": ["Emma Watson", "Wen Jiabao"]},
    "updated": {"updated": True},
    "deleted": {"deleted": 2},
    "example": {"image_id": IMAGE_ID, "subject": "Emma Watson"},
    "examples": [{"image_id": IMAGE_ID, "subject": "Emma Watson"}],
    "page": {"faces": [{"image_id": IMAGE_ID, "subject": "Emma Watson"}], "page_number": 0, "page_size": 20,
             "total_pages": 1, "total_elements": 1},
    "recognize": {"result": [{"box": BOX, "landmarks": LANDMARKS, "subjects": [
        {"subject": "Emma Watson", "similarity": 0.78142}, {"subject": "Wen Jiabao", "similarity": 0.34131}]}]},
    "detect": {"result": [{"box": BOX, "landmarks": LANDMARKS}]},
    "verify_example": {"result": [{"box": BOX, "landmarks": LANDMARKS, "subject": "Emma Watson",
                                   "similarity": 0.74982}]},
    "verify": {"result": [{"source_image_face": {"box": BOX, "landmarks": LANDMARKS},
                           "face_matches": [{"box": BOX, "landmarks": LANDMARKS, "similarity": 0.76839}]}]},
}


def example(name: str, status_code: int = 200) -> dict:
    return {status_code: {"content": {"application/json": {"example": EXAMPLES[name]}}}}


class CompreFaceError(BaseModel):
    """CompreFace's error shape (java/common/.../dto/ExceptionResponseDto.java)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"message": "No face is found in the given image",
                                                               "code": 28}]})
    message: str
    code: int = Field(description="CompreFace's: 20 no key, 10 no such service (key), 28 no face, 31 more than "
                                  "one face, 21 not an image, 26/33/34 invalid or missing input, 42 no such subject, "
                                  "43 subject exists, 44 no such example; 0 otherwise")


ERRORS = {
    "4XX": {"model": CompreFaceError, "description": "400: invalid input, no face (28), more than one (31), no key "
                                                      "(20); 403: a recognition key where an admin key is needed; "
                                                      "404: an unknown key (10), subject (42) or example (44); 408, "
                                                      "413, 415 as faceshot's"},
    429: {"model": CompreFaceError, "description": "too many requests for this key (with Retry-After)"},
    503: {"model": CompreFaceError, "description": "overloaded or unavailable (with Retry-After)"},
}


def compreface_error(request: Request, exc: Exception) -> JSONResponse:
    """Any refusal of these routes in CompreFace's shape, with its status and code where it has one."""
    headers = getattr(exc, "headers", None)
    if isinstance(exc, RequestValidationError):
        status_code, code, message = (400, *_invalid(exc))
    elif isinstance(exc, Unauthorized) and not request.headers.get(API_KEY_HEADER):
        status_code, code, message = 400, 20, "Missing header: x-api-key"
    elif isinstance(exc, Unauthorized):
        status_code, code, message = 404, 10, "Service with this API key not found"
    elif isinstance(exc, FaceshotError):
        status_code, code = CODES.get(exc.code, (exc.status if exc.status != 422 else 400, 0))
        message = exc.message
    elif isinstance(exc, StarletteHTTPException):
        status_code, code, message = exc.status_code, 0, str(exc.detail)
    else:
        log.exception("unhandled error")
        status_code, code, message = 500, 0, "Something went wrong, please try again"
    return JSONResponse({"message": message, "code": code}, status_code=status_code, headers=headers)


def _invalid(exc: RequestValidationError) -> tuple[int, str]:
    """CompreFace's code and message for the first invalid field: a missing parameter (33), a missing photo (34),
    a missing field (5), or a value it does not take (26)."""
    error = exc.errors()[0]
    where, name = (list(error.get("loc", ())) + ["", ""])[:2]
    if error.get("type") == "missing":
        if where == "query":
            return 33, f"Required parameter {name} is missing"
        if name in FILES:
            return 34, f"Required part {name} is missing"
        return 5, f"Field {name or where} cannot be empty"
    return 26, f"Validation for field {name or where} failed: {error.get('msg', '')}"


class CompreFaceRoute(GatedRoute):
    """A gated route that answers as CompreFace does: parameters it does not know are ignored (CompreFace's
    clients send some, e.g. Double Take's ``face_plugins=undefined``), refusals are CompreFace's."""

    refuse_unknown_query = False

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request):
            try:
                return await handler(request)
            except Exception as exc:
                return compreface_error(request, exc)

        return route


router = APIRouter(tags=["CompreFace-compatible"], route_class=CompreFaceRoute, responses=ERRORS)

LIMIT = Query(ge=0, le=1000, description="faces at most, largest first (0: every face)")
DET_PROB = Query(ge=0, le=1, description="the detector's least probability for a face (0.0-1.0)")
PLUGINS = Query(max_length=200, description="CompreFace's face plugins: accepted, none is run (landmarks are "
                                            "always answered; no age, gender, mask, pose or embedding)")
STATUS = Query(description="true: add execution_time (ms) and plugins_versions")
FILE = File(description="the photo")


def _options(limit: int, det_prob_threshold: float | None, status_: bool) -> Options:
    return Options(limit=limit, det_prob_threshold=det_prob_threshold, status=status_)


# -- subjects -----------------------------------------------------------------------------------------------------
class SubjectIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"subject": "Ada Lovelace"}]})
    subject: str = Field(min_length=1, max_length=200, description="the subject's name")


class SubjectOut(BaseModel):
    subject: str


class SubjectsOut(BaseModel):
    subjects: list[str]


class UpdatedOut(BaseModel):
    updated: bool


class DeletedOut(BaseModel):
    deleted: int


@router.post("/recognition/subjects", status_code=status.HTTP_201_CREATED, response_model=SubjectOut,
             responses=example("subject", 201), summary="Add a subject (a person without photos)")
def add_subject(compreface: CompreFaceDep, key: ServiceAdminKey, collection: CollectionDep, body: SubjectIn):
    """A subject of this name, without examples yet; 400 (code 43) when there is one."""
    return SubjectOut(subject=compreface.add_subject(body.subject, collection, Actor.of_key(key)))


@router.get("/recognition/subjects", response_model=SubjectsOut, responses=example("subjects"), summary="List subjects")
def list_subjects(compreface: CompreFaceDep, _key: ServiceAdminKey, collection: CollectionDep):
    """Every subject (person's name) of the key's collection."""
    return SubjectsOut(subjects=compreface.subjects(collection))


@router.put("/recognition/subjects/{subject}", response_model=UpdatedOut, responses=example("updated"),
            summary="Rename a subject")
def rename_subject(compreface: CompreFaceDep, key: ServiceAdminKey, collection: CollectionDep, subject: str,
                   body: SubjectIn):
    """Every person of the subject renamed; onto an existing subject, the two answer as one."""
    return UpdatedOut(updated=compreface.rename_subject(subject, body.subject, collection, Actor.of_key(key)))


@router.delete("/recognition/subjects/{subject}", response_model=SubjectOut, responses=example("subject"),
               summary="Delete a subject")
def delete_subject(compreface: CompreFaceDep, key: ServiceAdminKey, collection: CollectionDep, subject: str):
    """The subject's people with their faces and photos."""
    return SubjectOut(subject=compreface.delete_subject(subject, collection, Actor.of_key(key)))


@router.delete("/recognition/subjects", response_model=DeletedOut, responses=example("deleted"),
               summary="Delete every subject")
def delete_subjects(compreface: CompreFaceDep, key: ServiceAdminKey, collection: CollectionDep):
    """Every person of the key's collection, with their faces and photos; how many subjects went."""
    return DeletedOut(deleted=compreface.delete_all_subjects(collection, Actor.of_key(key)))


# -- examples -----------------------------------------------------------------------------------------------------
@router.post("/recognition/faces", status_code=status.HTTP_201_CREATED, response_model=CompreFaceExample,
             responses=example("example", 201), response_model_exclude_none=True,
             summary="Add an example of a subject (enroll, or add a photo)")
def add_example(
    compreface: CompreFaceDep,
    read: ReadPhoto,
    key: ServiceAdminKey,
    collection: CollectionDep,
    _slot: InferenceSlot,
    subject: Annotated[str, Query(min_length=1, max_length=200, description="the subject's name")],
    file: Annotated[UploadFile, FILE],
    det_prob_threshold: Annotated[float | None, DET_PROB] = None,
):
    """The photo's one face as an example of the subject: a new subject is enrolled as a person, an existing one
    gets the face (faceshot's enrollment checks; its warnings as `warnings`). `image_id` is the face's id."""
    return compreface.add_example(subject, read(file), det_prob_threshold, collection, Actor.of_key(key))


@router.get("/recognition/faces", response_model=CompreFaceExamplesPage, responses=example("page"),
            response_model_exclude_none=True, summary="List examples")
def list_examples(
    compreface: CompreFaceDep,
    _key: ServiceAdminKey,
    collection: CollectionDep,
    page: Annotated[int, Query(ge=0, le=2**31 - 1, description="the page, from 0")] = 0,
    size: Annotated[int, Query(ge=1, le=1000, description="examples per page")] = 20,
    subject: Annotated[str | None, Query(max_length=200, description="this subject's only")] = None,
):
    """The examples (faces) of the key's collection, or of one subject, oldest first, a page at a time."""
    return compreface.examples(subject, page, size, collection)


@router.delete("/recognition/faces", response_model=DeletedOut, responses=example("deleted"),
               summary="Delete a subject's examples")
def delete_examples(
    compreface: CompreFaceDep,
    key: ServiceAdminKey,
    collection: CollectionDep,
    subject: Annotated[str | None, Query(max_length=200, description="the subject (none: every subject)")] = None,
):
    """The subject with its examples (as CompreFace removes it), or every subject when none is named; how many
    examples went."""
    return DeletedOut(deleted=compreface.delete_examples(subject, collection, Actor.of_key(key)))


@router.post("/recognition/faces/delete", response_model=list[CompreFaceExample], responses=example("examples"),
             response_model_exclude_none=True, summary="Delete examples by id")
def delete_examples_by_id(
    compreface: CompreFaceDep,
    key: ServiceAdminKey,
    collection: CollectionDep,
    image_ids: Annotated[list[Annotated[str, Field(max_length=64)]],
                         Body(max_length=1000, examples=[["6b135f5b3a654522b1f14c9ac2dd0728"]])],
):
    """Each example named that exists (the others are passed over)."""
    return compreface.delete_examples_by_id(image_ids, collection, Actor.of_key(key))


@router.delete("/recognition/faces/{image_id}", response_model=CompreFaceExample, responses=example("example"),
               response_model_exclude_none=True, summary="Delete an example")
def delete_example(compreface: CompreFaceDep, key: ServiceAdminKey, collection: CollectionDep, image_id: str):
    """One example (face) with its photo."""
    return compreface.delete_example(image_id, collection, Actor.of_key(key))


@router.get("/recognition/faces/{image_id}/img", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}}, summary="Download an example's photo")
def example_image(compreface: CompreFaceDep, _key: ServiceAdminKey, collection: CollectionDep, image_id: str):
    """The example's photo as it was uploaded; empty when there is none (as CompreFace answers)."""
    data, media_type = compreface.example_image(image_id, collection)
    return Response(content=data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.post("/recognition/faces/{image_id}/verify", response_model=CompreFaceVerifyExampleOut,
             responses=example("verify_example"), response_model_exclude_none=True,
             summary="Is each face of a photo this example's person?")
def verify_example(
    compreface: CompreFaceDep,
    read: ReadPhoto,
    _key: ServiceRecognitionKey,
    collection: CollectionDep,
    _slot: InferenceSlot,
    image_id: str,
    file: Annotated[UploadFile, FILE],
    limit: Annotated[int, LIMIT] = 0,
    det_prob_threshold: Annotated[float | None, DET_PROB] = None,
    face_plugins: Annotated[str, PLUGINS] = "",
    status: Annotated[bool, STATUS] = False,
):
    """Every face of the photo against the example, each one comparison held to faceshot's threshold for a pair:
    `similarity` at or above 0.6 when it is the same person, below 0.4 when not."""
    return compreface.verify_example(image_id, read(file), _options(limit, det_prob_threshold, status), collection)


# -- recognition, detection, verification ---------------------------------------------------------------------------
@router.post("/recognition/recognize", response_model=CompreFaceRecognizeOut, responses=example("recognize"),
             response_model_exclude_none=True, summary="Recognize every face of a photo")
def recognize(
    compreface: CompreFaceDep,
    settings: SettingsDep,
    read: ReadPhoto,
    key: ServiceRecognitionKey,
    collection: CollectionDep,
    _slot: InferenceSlot,
    file: Annotated[UploadFile, FILE],
    limit: Annotated[int, LIMIT] = 0,
    prediction_count: Annotated[int, Query(ge=1, le=50, description="subjects per face, nearest first")] = 1,
    det_prob_threshold: Annotated[float | None, DET_PROB] = None,
    face_plugins: Annotated[str, PLUGINS] = "",
    status: Annotated[bool, STATUS] = False,
    detect_faces: Annotated[bool, Query(description="accepted; faceshot always finds the faces")] = True,
):
    """Each face with its nearest subjects. faceshot decides: the face's subject has a `similarity` of 0.6 or
    more when faceshot names the face (within its calibrated threshold for this gallery), below 0.4 when it is
    unknown, so CompreFace's 0.5 and Double Take's 60 % make faceshot's decision. No face: 400, code 28.
    Candidates are named for admin keys, for recognition keys only with FACESHOT_RECOGNITION_SEES_CANDIDATES."""
    reveal = key.role == "admin" or settings.recognition_sees_candidates
    return compreface.recognize(read(file), _options(limit, det_prob_threshold, status), prediction_count,
                                collection, reveal_candidates=reveal, admin=key.role == "admin")


@router.post("/detection/detect", response_model=CompreFaceDetectOut, responses=example("detect"),
             response_model_exclude_none=True, summary="Detect every face of a photo")
def detect(
    compreface: CompreFaceDep,
    read: ReadPhoto,
    _key: ServiceRecognitionKey,
    _slot: InferenceSlot,
    file: Annotated[UploadFile, FILE],
    limit: Annotated[int, LIMIT] = 0,
    det_prob_threshold: Annotated[float | None, DET_PROB] = None,
    face_plugins: Annotated[str, PLUGINS] = "",
    status: Annotated[bool, STATUS] = False,
):
    """Each face's box, detector probability and five landmarks, largest first. No face: 400, code 28."""
    return compreface.detect(read(file), _options(limit, det_prob_threshold, status))


@router.post("/verification/verify", response_model=CompreFaceVerificationOut, responses=example("verify"),
             response_model_exclude_none=True, summary="Is each face of the target photo the source photo's person?")
def verify(
    compreface: CompreFaceDep,
    read: ReadPhoto,
    _key: ServiceRecognitionKey,
    _slot: InferenceSlot,
    source_image: Annotated[UploadFile, File(description="the photo whose one face is compared")],
    target_image: Annotated[UploadFile, File(description="the photo whose faces it is compared with")],
    limit: Annotated[int, LIMIT] = 0,
    det_prob_threshold: Annotated[float | None, DET_PROB] = None,
    face_plugins: Annotated[str, PLUGINS] = "",
    status: Annotated[bool, STATUS] = False,
):
    """The source photo's one face against each face of the target photo, each one comparison held to faceshot's
    threshold for a pair: `similarity` at or above 0.6 when they are one person, below 0.4 when not."""
    return compreface.verify(read(source_image), read(target_image), _options(limit, det_prob_threshold, status))
