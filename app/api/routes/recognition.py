"""Identify, verify, detect (admin or recognition key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from ..deps import InferenceSlot, RecognitionKey, ServiceDep, read_upload
from ..gate import GatedRoute

router = APIRouter(tags=["recognition"], route_class=GatedRoute)


@router.post("/identify", summary="Name every face in a photo, or say it is unknown (largest face first)",
             description="Candidates are named for admin keys; for recognition keys only when "
                         "FACESHOT_RECOGNITION_SEES_CANDIDATES=true (otherwise a non-matching candidate has "
                         "`person: null` and only its distance).")
def identify(
    service: ServiceDep,
    key: RecognitionKey,
    _slot: InferenceSlot,
    image: Annotated[UploadFile, File()],
    top_k: Annotated[int, Form(ge=1, le=50)] = 3,
    threshold: Annotated[float | None, Form(gt=0, le=2)] = None,
):
    reveal = key.role == "admin" or service.settings.recognition_sees_candidates
    result = service.identify(read_upload(image, service.settings.max_upload_bytes), top_k, threshold,
                              reveal_candidates=reveal)
    result["encoder"] = service.pipeline.encoder.describe()
    return result


@router.post("/verify", summary="Is the main face in this photo the given person?")
def verify(
    service: ServiceDep,
    _key: RecognitionKey,
    _slot: InferenceSlot,
    image: Annotated[UploadFile, File()],
    person_id: Annotated[str, Form(min_length=1)],
    threshold: Annotated[float | None, Form(gt=0, le=2)] = None,
):
    return service.verify(read_upload(image, service.settings.max_upload_bytes), person_id, threshold)


@router.post("/detect", summary="Faces, landmarks and quality hints; no identification")
def detect(service: ServiceDep, _key: RecognitionKey, _slot: InferenceSlot, image: Annotated[UploadFile, File()]):
    return service.detect(read_upload(image, service.settings.max_upload_bytes))
