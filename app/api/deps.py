"""Route dependencies: the service, and who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security, UploadFile
from fastapi.security import APIKeyHeader

from models.errors import ImageTooLarge, InvalidImage

from ..keys import authenticate
from ..models import ApiKey
from ..service import FaceService

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An admin or recognition key")


def get_service(request: Request) -> FaceService:
    return request.app.state.service


ServiceDep = Annotated[FaceService, Depends(get_service)]


def recognition_key(service: ServiceDep, key: Annotated[str | None, Security(api_key_header)]) -> ApiKey:
    return authenticate(service.sessions, key, need_admin=False)


def admin_key(service: ServiceDep, key: Annotated[str | None, Security(api_key_header)]) -> ApiKey:
    return authenticate(service.sessions, key, need_admin=True)


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
