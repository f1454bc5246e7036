"""Route dependencies: the service, and who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security, UploadFile
from fastapi.security import APIKeyHeader

from models.errors import ImageTooLarge, InvalidImage, Unauthorized

from ..keys import authenticate
from ..models import ApiKey
from ..service import FaceService

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An admin or recognition key")


def get_service(request: Request) -> FaceService:
    return request.app.state.service


ServiceDep = Annotated[FaceService, Depends(get_service)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def checked_key(request: Request, service: FaceService, secret: str | None, need_admin: bool) -> ApiKey:
    """Authenticate and count the request against its key's rate limit.

    Wrong or missing keys count against the caller's address, so keys cannot be guessed at speed.
    """
    limiter = request.app.state.limiter
    client = client_address(request)
    limiter.check_failures(client)
    try:
        key = authenticate(service.sessions, secret, need_admin=need_admin)
    except Unauthorized:
        limiter.record_failure(client)
        raise
    limiter.hit_key(key.id)
    return key


def recognition_key(request: Request, service: ServiceDep,
                    key: Annotated[str | None, Security(api_key_header)]) -> ApiKey:
    return checked_key(request, service, key, need_admin=False)


def admin_key(request: Request, service: ServiceDep, key: Annotated[str | None, Security(api_key_header)]) -> ApiKey:
    return checked_key(request, service, key, need_admin=True)


RecognitionKey = Annotated[ApiKey, Depends(recognition_key)]
AdminKey = Annotated[ApiKey, Depends(admin_key)]


def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, refusing more than ``limit`` without reading them all."""
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(f"The upload is over the limit of {limit} bytes.", {"max_bytes": limit,
                                                                                  "filename": upload.filename})
    if not data:
        raise InvalidImage("The uploaded file is empty.", {"filename": upload.filename})
    return data


def parse_box(box: str | None) -> list[float] | None:
    """``box`` as "x1,y1,x2,y2" (or a JSON list) in the photo's pixels."""
    if box is None or box.strip() == "":
        return None
    from models.errors import ValidationFailed

    try:
        values = [float(v) for v in box.strip("[] ").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or values[2] <= values[0] or values[3] <= values[1]:
        raise ValidationFailed("box must be x1,y1,x2,y2 with x2 > x1 and y2 > y1.", {"field": "box"})
    return values


def collect_uploads(images: list[UploadFile] | None, image: UploadFile | None) -> list[UploadFile]:
    """Photos sent as repeated `images`, or one `image`."""
    from models.errors import ValidationFailed

    uploads = list(images or []) + ([image] if image is not None else [])
    if not uploads:
        raise ValidationFailed("Send one photo as `image` or several as `images`.", {"field": "images"})
    return uploads


def parse_metadata(raw: str | None) -> dict | None:
    import json

    from models.errors import ValidationFailed

    if raw is None or raw.strip() == "":
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ValidationFailed("metadata must be a JSON object.", {"field": "metadata"})
    return value
