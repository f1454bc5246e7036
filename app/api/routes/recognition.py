"""Identify, verify, detect (admin or recognition key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from app.api.deps import CollectionDep, InferenceSlot, ReadPhoto, RecognitionDep, RecognitionKey, SettingsDep, parse_box
from app.api.gate import GatedRoute
from app.core.errors import ValidationFailed
from app.core.schemas import CompareOut, DetectOut, EmbedOut, IdentifyOut, VerifyOut, error_responses
from app.gallery.embeddings import parse_embeddings
from app.recognition.service import Recognition

router = APIRouter(tags=["recognition"], route_class=GatedRoute)
PHOTO_ERRORS = (400, 401, 408, 413, 422, 429, 503)
TIGHTEN_ONLY = ("a distance threshold for this request (a recognition key's may only tighten the usual ones, never "
                "loosen them)")


@router.post("/identify", response_model=IdentifyOut, responses=error_responses(*PHOTO_ERRORS),
             summary="Name every face in a photo, or say it is unknown (largest face first)",
             description="Every face is answered for; a photo without a face is 200 with `faces: []` (a camera "
                         "frame with nobody in it is not an error). "
                         "Candidates are named for admin keys; for recognition keys only when "
                         "FACESHOT_RECOGNITION_SEES_CANDIDATES=true (otherwise a non-matching candidate has "
                         "`person: null` and only its distance).")
def identify(
    recognition: RecognitionDep,
    settings: SettingsDep,
    read: ReadPhoto,
    key: RecognitionKey,
    collection: CollectionDep,
    _slot: InferenceSlot,
    image: Annotated[UploadFile | None, File(description="the photo")] = None,
    top_k: Annotated[int, Form(ge=1, le=50, description="nearest people listed per face")] = 3,
    threshold: Annotated[float | None, Form(gt=0, le=2, description=TIGHTEN_ONLY)] = None,
    embedding: Annotated[str | None, Form(description="instead of a photo: an embedding from POST /embed "
                                                      "(a JSON array), with `encoder_hash`")] = None,
    encoder_hash: Annotated[str | None, Form(max_length=64, description="with `embedding`: the content hash of "
                                                                        "the encoder that made it")] = None,
):
    reveal = key.role == "admin" or settings.recognition_sees_candidates
    vector = _one_of(recognition, image, embedding, encoder_hash, "image")
    data = read(image) if vector is None else None
    return recognition.identify(data, top_k, threshold, reveal_candidates=reveal, embedding=vector,
                                collection=collection, loosen=key.role == "admin")


def _one_of(recognition: Recognition, image, embedding, encoder_hash, photo_field: str):
    """The client's embedding (checked against this encoder), or None when a photo was sent: one of the two."""
    if (image is None) == (embedding is None):
        raise ValidationFailed(f"Send a photo as `{photo_field}` or an embedding as `embedding{photo_field[5:]}`, "
                               "one of the two.", {"field": photo_field})
    if embedding is None:
        return None
    values = parse_embeddings(embedding, "embedding")
    if len(values) != 1:
        raise ValidationFailed("Send one embedding.", {"field": "embedding"})
    return recognition.embedding_from_client(values[0], encoder_hash)


@router.post("/compare", response_model=CompareOut, responses=error_responses(*PHOTO_ERRORS),
             summary="Are the faces of two photos (or a photo and an embedding) one person?",
             description="Each photo's one face is used (the only one, the largest when twice the next, or the one "
                         "`box_a`/`box_b` names; several similar faces: 422 `multiple_faces`). The pair is one "
                         "comparison: `threshold` holds strangers to FACESHOT_TARGET_FAR per comparison "
                         "(`stranger_accept_rate` says what it stands for), unless FACESHOT_THRESHOLD or a "
                         "request `threshold` fixes it.")
def compare(
    recognition: RecognitionDep,
    read: ReadPhoto,
    _key: RecognitionKey,
    _slot: InferenceSlot,
    image_a: Annotated[UploadFile, File(description="the first photo")],
    image_b: Annotated[UploadFile | None, File(description="the second photo")] = None,
    box_a: Annotated[str | None, Form(description="x1,y1,x2,y2 of the face to use in image_a")] = None,
    box_b: Annotated[str | None, Form(description="x1,y1,x2,y2 of the face to use in image_b")] = None,
    embedding_b: Annotated[str | None, Form(description="instead of image_b: an embedding from POST /embed "
                                                        "(a JSON array), with `encoder_hash`")] = None,
    encoder_hash: Annotated[str | None, Form(max_length=64, description="with `embedding_b`")] = None,
    threshold: Annotated[float | None, Form(gt=0, le=2, description="a distance threshold for this request")] = None,
):
    vector = _one_of(recognition, image_b, embedding_b, encoder_hash, "image_b")
    return recognition.compare(read(image_a), read(image_b) if vector is None else None, vector, parse_box(box_a),
                               parse_box(box_b), threshold)


@router.post("/embed", response_model=EmbedOut, responses=error_responses(*PHOTO_ERRORS),
             summary="Every face's embedding, with the encoder's name and content hash",
             description="Send an embedding back to identify, compare or enroll with `encoder_hash`; one made by "
                         "another encoder (or of another size) is refused with 422 `encoder_mismatch`. A photo "
                         "without a face is 200 with `faces: []`.")
def embed(recognition: RecognitionDep, read: ReadPhoto, _key: RecognitionKey, _slot: InferenceSlot,
          image: Annotated[UploadFile, File(description="the photo")]):
    return recognition.embed(read(image))


@router.post("/verify", response_model=VerifyOut, responses=error_responses(*PHOTO_ERRORS, 404),
             summary="Is the face in this photo the given person?",
             description="The photo's one face is used: the only face, or the largest when it is at least twice "
                         "the area of the next, or the one `box` names. Several faces of similar size are refused "
                         "(422 `multiple_faces`, every box in `details.faces`); no face is 422 `no_face`.")
def verify(
    recognition: RecognitionDep,
    read: ReadPhoto,
    key: RecognitionKey,
    collection: CollectionDep,
    _slot: InferenceSlot,
    image: Annotated[UploadFile, File(description="the photo")],
    person_id: Annotated[str, Form(min_length=1, description="the enrolled person to compare with")],
    threshold: Annotated[float | None, Form(gt=0, le=2, description=TIGHTEN_ONLY)] = None,
    box: Annotated[str | None, Form(description="x1,y1,x2,y2 of the face to use, when a photo has several")] = None,
):
    return recognition.verify(read(image), person_id, threshold, parse_box(box), collection,
                              loosen=key.role == "admin")


@router.post("/detect", response_model=DetectOut, responses=error_responses(*PHOTO_ERRORS),
             summary="Faces, landmarks and quality hints; no identification")
def detect(recognition: RecognitionDep, read: ReadPhoto, _key: RecognitionKey, _slot: InferenceSlot,
           image: Annotated[UploadFile, File(description="the photo")]):
    """Every face's box, landmarks and quality hints (too small, blurry, low confidence), largest first; no
    identification. A photo without a face is 200 with `faces: []`."""
    return recognition.detect(read(image))
