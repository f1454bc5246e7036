"""Identify, verify, detect (admin or recognition key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from ...schemas import DetectOut, IdentifyOut, VerifyOut, error_responses
from ..deps import InferenceSlot, RecognitionKey, ServiceDep, parse_box, read_upload
from ..gate import GatedRoute

router = APIRouter(tags=["recognition"], route_class=GatedRoute)
PHOTO_ERRORS = (400, 401, 408, 413, 422, 429, 503)


@router.post("/identify", response_model=IdentifyOut, responses=error_responses(*PHOTO_ERRORS),
             summary="Name every face in a photo, or say it is unknown (largest face first)",
             description="Every face is answered for; a photo without a face is 200 with `faces: []` (a camera "
                         "frame with nobody in it is not an error). "
                         "Candidates are named for admin keys; for recognition keys only when "
                         "FACESHOT_RECOGNITION_SEES_CANDIDATES=true (otherwise a non-matching candidate has "
                         "`person: null` and only its distance).")
def identify(
    service: ServiceDep,
    key: RecognitionKey,
    _slot: InferenceSlot,
    image: Annotated[UploadFile, File(description="the photo")],
    top_k: Annotated[int, Form(ge=1, le=50, description="nearest people listed per face")] = 3,
    threshold: Annotated[float | None, Form(gt=0, le=2, description="a distance threshold for this request")] = None,
):
    reveal = key.role == "admin" or service.settings.recognition_sees_candidates
    return service.identify(read_upload(image, service.settings.max_upload_bytes), top_k, threshold,
                            reveal_candidates=reveal)


@router.post("/verify", response_model=VerifyOut, responses=error_responses(*PHOTO_ERRORS, 404),
             summary="Is the face in this photo the given person?",
             description="The photo's one face is used: the only face, or the largest when it is at least twice "
                         "the area of the next, or the one `box` names. Several faces of similar size are refused "
                         "(422 `multiple_faces`, every box in `details.faces`); no face is 422 `no_face`.")
def verify(
    service: ServiceDep,
    _key: RecognitionKey,
    _slot: InferenceSlot,
    image: Annotated[UploadFile, File(description="the photo")],
    person_id: Annotated[str, Form(min_length=1, description="the enrolled person to compare with")],
    threshold: Annotated[float | None, Form(gt=0, le=2, description="a distance threshold for this request")] = None,
    box: Annotated[str | None, Form(description="x1,y1,x2,y2 of the face to use, when a photo has several")] = None,
):
    return service.verify(read_upload(image, service.settings.max_upload_bytes), person_id, threshold,
                          parse_box(box))


@router.post("/detect", response_model=DetectOut, responses=error_responses(*PHOTO_ERRORS),
             summary="Faces, landmarks and quality hints; no identification")
def detect(service: ServiceDep, _key: RecognitionKey, _slot: InferenceSlot,
           image: Annotated[UploadFile, File(description="the photo")]):
    return service.detect(read_upload(image, service.settings.max_upload_bytes))
