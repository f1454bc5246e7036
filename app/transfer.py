"""A gallery as one portable file: ``faceshot export`` writes it, ``faceshot import --from-export`` reads it.

The file is a plain tar (photos are JPEGs already; compressing them again gains nothing):

- ``people.jsonl``: one person a line: id, name, external id, metadata, created_at, and their
  faces (id, box, detector score, the embedding as base64 little-endian float32 with the
  content hash of the encoder that made it, the stored photo's sha256 and media type);
- ``photos/<face id>.img``: the kept photos;
- ``manifest.json`` (last, when everything above is written): format and version, the
  encoder, counts.

It moves a gallery between hosts, databases (SQLite ↔ PostgreSQL) and encoders: ids are kept,
so importing twice adds nothing; faces whose encoder differs from the importing service's are
re-embedded from their photo (and refused, by name, when no photo was kept). An export is
written to ``<out>.partial`` and renamed when whole, so a full disk never leaves a file that
looks complete. A hand-made or damaged file is refused with the line and reason.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pydantic import Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from models.errors import FaceshotError

from .audit import CLI
from .errors import ValidationFailed
from .inference import PreparedFace
from .models import COLLECTION_PATTERN, DEFAULT_COLLECTION, Person
from .schemas import Metadata, _Strict

FORMAT = "faceshot-export"
VERSION = 1
PEOPLE = "people.jsonl"
MANIFEST = "manifest.json"
ID = r"^[0-9a-f]{32}$"


class BadExport(FaceshotError):
    code = "invalid_export"
    status = 400


class ExportedFace(_Strict):
    id: str = Field(pattern=ID)
    box: list[float] = Field(min_length=4, max_length=4)
    det_score: float
    encoder_hash: str = Field(min_length=1, max_length=64)
    embedding: str  # base64 of little-endian float32
    photo_sha256: str | None = None
    image_type: str | None = Field(default=None, max_length=50)
    created_at: datetime | None = None


class ExportedPerson(_Strict):
    id: str = Field(pattern=ID)
    name: str = Field(min_length=1, max_length=200)  # cleaned as enroll cleans it (restore_person)
    external_id: str | None = Field(default=None, max_length=200)
    metadata: Metadata = Field(default_factory=dict)
    created_at: datetime | None = None
    collection: str = Field(default=DEFAULT_COLLECTION, max_length=64, pattern=COLLECTION_PATTERN)
    faces: list[ExportedFace] = Field(max_length=1000)


@dataclass
class ImportSummary:
    imported_people: int = 0
    imported_faces: int = 0
    reembedded_faces: int = 0
    skipped_existing: list[str] = field(default_factory=list)  # ids (or external ids) already here
    refused: list[dict] = field(default_factory=list)


def _photo_member(face_id: str) -> str:
    return f"photos/{face_id}.img"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(datetime.now(timezone.utc).timestamp()), 0o600
    tar.addfile(info, io.BytesIO(data))


def _person_record(person: Person, photos: dict[str, bytes | None]) -> dict:
    faces = []
    for f in person.faces:
        data = photos.get(f.id)
        faces.append({"id": f.id, "box": [float(v) for v in f.box], "det_score": float(f.det_score),
                      "encoder_hash": f.encoder_hash, "embedding": base64.b64encode(f.embedding).decode(),
                      "photo_sha256": hashlib.sha256(data).hexdigest() if data is not None else None,
                      "image_type": f.image_type if data is not None else None,
                      "created_at": f.created_at.isoformat() if f.created_at else None})
    return {"id": person.id, "name": person.name, "external_id": person.external_id, "metadata": person.meta or {},
            "created_at": person.created_at.isoformat() if person.created_at else None,
            "collection": person.collection, "faces": faces}


def export_gallery(service, out: Path, *, photos: bool = True, page: int = 500, collection: str | None = None) -> dict:
    """Write every person (of ``collection``, or of every one), face, embedding and (``photos``) kept photo to
    ``out``; the manifest is returned."""
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    counts = {"people": 0, "faces": 0, "photos": 0, "photos_missing": 0}
    lines = io.BytesIO()
    try:
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            after = ""
            while True:  # by id, a page at a time: a write meanwhile neither repeats nor skips anyone else
                with service.sessions() as session:
                    q = select(Person).where(Person.id > after)
                    if collection is not None:
                        q = q.where(Person.collection == collection)
                    people = session.scalars(q.order_by(Person.id).limit(page)
                                             .options(selectinload(Person.faces))).all()
                if not people:
                    break
                after = people[-1].id
                for person in people:
                    kept: dict[str, bytes | None] = {}
                    for f in person.faces:
                        data = service.photos.read(f.image_file) if (photos and f.image_file) else None
                        if photos and f.image_file and data is None:
                            counts["photos_missing"] += 1
                        if data is not None:
                            _add(tar, _photo_member(f.id), data)
                            counts["photos"] += 1
                        kept[f.id] = data
                    lines.write(json.dumps(_person_record(person, kept), ensure_ascii=False).encode() + b"\n")
                    counts["people"] += 1
                    counts["faces"] += len(person.faces)
            _add(tar, PEOPLE, lines.getvalue())
            encoder = service.pipeline.encoder
            manifest = {"format": FORMAT, "version": VERSION,
                        "exported_at": datetime.now(timezone.utc).isoformat(),
                        "encoder": {"name": encoder.metadata.name, "content_hash": encoder.content_hash,
                                    "embedding_size": encoder.metadata.embedding_size},
                        "counts": counts, "collection": collection}
            _add(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
        with open(partial, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return manifest


def _read(tar: tarfile.TarFile, name: str) -> bytes | None:
    """A member's bytes (None: not in the file); a file cut short or damaged is a BadExport."""
    try:
        member = tar.getmember(name)
        if not member.isfile():
            raise BadExport(f"{name} in the export is not a file.", {"member": name})
        handle = tar.extractfile(member)
        return handle.read() if handle else None
    except KeyError:
        return None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BadExport(f"The export is damaged or cut short: {exc}.") from None


def _manifest(tar: tarfile.TarFile) -> dict:
    raw = _read(tar, MANIFEST)
    if raw is None:
        raise BadExport("The file has no manifest.json: it is not a faceshot export, or it was cut short.")
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise BadExport("manifest.json is not JSON.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadExport("manifest.json does not describe a faceshot export.")
    if manifest.get("version") != VERSION:
        raise BadExport(f"This export is format version {manifest.get('version')!r}; this faceshot reads "
                        f"version {VERSION}.", {"version": manifest.get("version")})
    return manifest


def _embedding(face: ExportedFace, size: int) -> np.ndarray:
    try:
        vector = np.frombuffer(base64.b64decode(face.embedding, validate=True), dtype="<f4")
    except ValueError:
        raise ValidationFailed("the embedding is not base64 float32.") from None
    if vector.size != size or not np.all(np.isfinite(vector)):
        raise ValidationFailed(f"the embedding has {vector.size} finite values, not {size}.")
    return vector


def _faces(service, tar, person: ExportedPerson, summary: ImportSummary):
    """(face id, prepared face, created_at) for each face, or the reason the person cannot be imported."""
    encoder = service.pipeline.encoder
    out = []
    for face in person.faces:
        photo = _read(tar, _photo_member(face.id)) if face.photo_sha256 else None
        if photo is not None and hashlib.sha256(photo).hexdigest() != face.photo_sha256:
            raise ValidationFailed(f"face {face.id}'s photo does not match its checksum.")
        if face.photo_sha256 and photo is None:
            raise ValidationFailed(f"face {face.id}'s photo is missing from the file.")
        if face.encoder_hash == encoder.content_hash:
            prepared = PreparedFace(embedding=_embedding(face, encoder.metadata.embedding_size),
                                    box=[round(v, 1) for v in face.box], det_score=face.det_score, quality={},
                                    image_bytes=photo, image_type=face.image_type)
        elif photo is not None:  # another encoder made it: make it again from the photo, the same face
            prepared = service.prepare(photo, face.box)
            summary.reembedded_faces += 1
        else:
            raise ValidationFailed(f"face {face.id} was embedded by another encoder ({face.encoder_hash[:12]}…) "
                                   "and its photo was not kept, so this service cannot use it.")
        out.append((face.id, prepared, face.created_at))
    return out


def import_export(service, path: Path, collection: str | None = None) -> ImportSummary:
    """Add every person of the export not already here (by id or external id), each all or nothing, into their
    own collection (made here if missing) or, with ``collection``, into that one."""
    summary = ImportSummary()
    try:
        tar = tarfile.open(path, "r:")
    except (OSError, tarfile.TarError) as exc:
        raise BadExport(f"Cannot read {path} as a faceshot export: {exc}") from None
    with tar:
        _manifest(tar)
        raw = _read(tar, PEOPLE)
        if raw is None:
            raise BadExport(f"The export has no {PEOPLE}.")
        with service.sessions() as session:
            ids = set(session.scalars(select(Person.id)))
            external = set(session.scalars(select(Person.external_id).where(Person.external_id.is_not(None))))
        known_collections = {c.name for c, _ in service.list_collections()}
        for line_no, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                person = ExportedPerson.model_validate_json(line)
            except ValidationError as exc:
                raise BadExport(f"{PEOPLE} line {line_no}: {exc.errors()[0]['msg']} at "
                                f"{'.'.join(map(str, exc.errors()[0]['loc']))}.", {"line": line_no}) from None
            if person.id in ids or (person.external_id and person.external_id in external):
                summary.skipped_existing.append(person.external_id or person.id)
                continue
            target = collection or person.collection
            try:
                if target not in known_collections:
                    service.ensure_collection(target, CLI)
                    known_collections.add(target)
                faces = _faces(service, tar, person, summary)
                service.restore_person(person.id, person.name, person.external_id, person.metadata,
                                       person.created_at, faces, collection=target)
            except FaceshotError as exc:
                summary.refused.append({"person": person.name, "id": person.id, "code": exc.code,
                                        "reason": exc.message})
                continue
            ids.add(person.id)
            if person.external_id:
                external.add(person.external_id)
            summary.imported_people += 1
            summary.imported_faces += len(faces)
    return summary
