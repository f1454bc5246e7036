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
looks complete.

An import trusts nothing in the file. Every member's header is checked before anything is read or
written: only plain files and folders, no links, devices or sparse files, no absolute path or
``..``, the manifest within 1 MB and each photo within the photo limit; one that fails refuses the
whole file. ``people.jsonl`` is read a line at a time, each line within :data:`MAX_LINE_BYTES`
(what one person at the schema's limits takes), since the member grows with the gallery. Each
person is imported whole or refused whole, with their line and a machine-readable code, after
their ids (none on an earlier line, none of their faces stored or with a photo file already),
text (as the API checks it) and embeddings are checked; the others go on.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import re
import tarfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.access.audit import CLI
from app.core.errors import Conflict, ValidationFailed
from app.core.inputs import check_metadata, check_text, clean_name
from app.core.schemas import _Strict
from app.core.tables import COLLECTION_PATTERN, DEFAULT_COLLECTION, Face, Person
from app.inference.runner import PreparedFace, image_type
from models.errors import FaceshotError

FORMAT = "faceshot-export"
VERSION = 1
PEOPLE = "people.jsonl"
MANIFEST = "manifest.json"
ID = r"^[0-9a-f]{32}$"
PHOTO_MEMBER = re.compile(r"^photos/[0-9a-f]{32}\.img$")

MAX_FACES_PER_PERSON = 1000
MAX_EMBEDDING_VALUES = 2048  # wider than any encoder here, ensembles included (512 + 1024 at most)
EMBEDDING_CHARS = 4 * math.ceil(4 * MAX_EMBEDDING_VALUES / 3)  # its base64
MAX_MANIFEST_BYTES = 1024 * 1024  # a written manifest is under 1 KB
# One line is one person: every face at its widest (the embedding, and ids, box, hashes and dates well within
# 1 KB) plus 64 KB for name, external id and metadata (16 KB as JSON). About 12 MB: the most one line may hold.
MAX_LINE_BYTES = MAX_FACES_PER_PERSON * (EMBEDDING_CHARS + 1024) + 64 * 1024


class BadExport(FaceshotError):
    code = "invalid_export"
    status = 400


class RepeatedInExport(BadExport):
    """An id on two lines of one file: an export never holds a person, external id or face twice."""

    code = "duplicate_in_export"


class FaceExists(Conflict):
    """A face id of the file that a stored face already has: the file's person is not written."""

    code = "face_exists"


class PhotoExists(Conflict):
    """A photo file already at a face's name, no face of this service's naming it: it is kept, the person not."""

    code = "photo_exists"


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class ExportedFace(_Strict):
    id: str = Field(pattern=ID)
    box: list[FiniteFloat] = Field(min_length=4, max_length=4)
    det_score: FiniteFloat
    encoder_hash: str = Field(min_length=1, max_length=64)
    embedding: str = Field(max_length=EMBEDDING_CHARS)  # base64 of little-endian float32
    photo_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    image_type: str | None = Field(default=None, max_length=50)  # not trusted: the stored type is the photo's own
    created_at: datetime | None = None
    origin: Literal["upload", "camera"] = "upload"  # a file from before origins: uploaded photos


class ExportedPerson(_Strict):
    id: str = Field(pattern=ID)
    name: str = Field(min_length=1, max_length=200)  # cleaned as enroll cleans it (_check_text)
    external_id: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)  # checked as the API checks it (_check_text)
    created_at: datetime | None = None
    collection: str = Field(default=DEFAULT_COLLECTION, max_length=64, pattern=COLLECTION_PATTERN)
    faces: list[ExportedFace] = Field(max_length=MAX_FACES_PER_PERSON)


@dataclass
class ImportSummary:
    imported_people: int = 0
    imported_faces: int = 0
    reembedded_faces: int = 0
    skipped_existing: list[str] = field(default_factory=list)  # ids (or external ids) already here
    refused: list[dict] = field(default_factory=list)  # {line, id, name, code, reason}: each person not imported


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
                      "created_at": f.created_at.isoformat() if f.created_at else None, "origin": f.origin})
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


def _unsafe(member: tarfile.TarInfo, problem: str, what: str) -> BadExport:
    return BadExport(f"{member.name} in the export is {what}; a faceshot export holds only its manifest, "
                     f"{PEOPLE} and photos, as plain files, so nothing was imported.",
                     {"member": member.name, "problem": problem})


def _checked_name(member: tarfile.TarInfo, max_photo_bytes: int) -> str | None:
    """The name an import reads ``member`` under (None: a folder or a file it never reads), or why the file is
    refused: a member no export holds could make a reader follow a link, fill holes or leave the archive."""
    if hasattr(tarfile, "data_filter"):  # Python 3.10.12+/3.11.4+: the stdlib's own checks first
        try:
            tarfile.data_filter(member, "/nonexistent-faceshot-export")
        except tarfile.SpecialFileError:
            raise _unsafe(member, "special", "a device or pipe") from None
        except (tarfile.AbsoluteLinkError, tarfile.LinkOutsideDestinationError):
            raise _unsafe(member, "link", "a link out of the archive") from None
        except tarfile.FilterError as exc:
            raise _unsafe(member, "path", f"outside the archive ({exc})") from None
    parts = member.name.split("/")
    if member.name.startswith("/") or ".." in parts:
        raise _unsafe(member, "path", "outside the archive (an absolute path or ..)")
    if member.issym() or member.islnk():
        raise _unsafe(member, "link", f"a link (to {member.linkname})")
    if member.isdir():
        return None
    if not member.isreg():
        raise _unsafe(member, "special", "a device or pipe")
    if member.issparse():  # reading one fills its holes: a few bytes in the file, any size in memory
        raise _unsafe(member, "sparse", f"a sparse file ({member.size} bytes when read)")
    name = "/".join(p for p in parts if p not in ("", "."))  # a hand-made tar's ./people.jsonl
    bound = MAX_MANIFEST_BYTES if name == MANIFEST else max_photo_bytes if PHOTO_MEMBER.match(name) else None
    if bound is not None and member.size > bound:
        raise _unsafe(member, "too_large", f"{member.size} bytes, over the {bound} an import reads")
    return name if name in (PEOPLE, MANIFEST) or PHOTO_MEMBER.match(name) else None


def _index(tar: tarfile.TarFile, max_photo_bytes: int) -> dict[str, tarfile.TarInfo]:
    """The members an import reads, by name, after every header was checked (nothing read or written yet)."""
    index: dict[str, tarfile.TarInfo] = {}
    try:
        for member in tar:
            name = _checked_name(member, max_photo_bytes)
            if name is None:
                continue
            if name in index:
                raise _unsafe(member, "duplicate", f"there twice ({index[name].name} came first)")
            index[name] = member
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BadExport(f"The export is damaged or cut short: {exc}.") from None
    return index


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo | None) -> bytes | None:
    """A checked member's bytes (None: not in the file); a file cut short or damaged is a BadExport."""
    if member is None:
        return None
    try:
        handle = tar.extractfile(member)
        return handle.read() if handle else None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BadExport(f"The export is damaged or cut short: {exc}.") from None


def _manifest(tar: tarfile.TarFile, index: dict[str, tarfile.TarInfo]) -> dict:
    raw = _read(tar, index.get(MANIFEST))
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


def _lines(handle):
    """(line number, line) of people.jsonl, one line in memory at a time; instead of a line, the reason it
    cannot be read: longer than any person can be (skipped to its end, unkept), or the file breaking off there."""
    line_no = 0
    while True:
        line_no += 1
        try:
            line = handle.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            if len(line) <= MAX_LINE_BYTES:
                yield line_no, line
                continue
            while line and not line.endswith(b"\n"):
                line = handle.readline(1024 * 1024)
        except (tarfile.TarError, OSError, EOFError) as exc:
            yield line_no, (f"The export is damaged or cut short here ({exc}); nothing from this line on was read. "
                            "The lines before it were.")
            return
        yield line_no, f"The line is longer than the {MAX_LINE_BYTES} bytes a person can take; it was skipped."


def _person(line: bytes) -> ExportedPerson:
    try:
        return ExportedPerson.model_validate_json(line)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise BadExport(f"{first['msg']}" + (f" at {where}." if where else "."), {"field": where}) from None


def _check_text(person: ExportedPerson) -> None:
    """The API's rules for what is stored and shown (a NUL is not "the database is unreachable" on PostgreSQL)."""
    person.name = clean_name(person.name)
    if person.external_id is not None:
        check_text(person.external_id, "external_id")
    check_metadata(person.metadata)


def _check_ids(service, person: ExportedPerson, seen: dict[tuple[str, str], int], line_no: int) -> None:
    """Refuse ids met on an earlier line, face ids a stored face has, and photo names a file already has; then
    remember this line's."""
    mine = [("person id", person.id), *([("external_id", person.external_id)] if person.external_id else []),
            *(("face id", f.id) for f in person.faces)]
    for n, key in enumerate(mine):
        if key in seen or key in mine[:n]:
            where = f"line {seen[key]}" if key in seen else "this line"
            raise RepeatedInExport(f"{key[0]} {key[1]} is on {where} too; an export holds each once.",
                                   {"field": key[0].replace(" ", "_"), "value": key[1]})
    face_ids = [f.id for f in person.faces]
    with service.sessions() as session:
        taken = session.execute(select(Face.id, Face.person_id).where(Face.id.in_(face_ids))).first() \
            if face_ids else None
    if taken is not None:
        raise FaceExists(f"Face {taken.id} is already stored, as a face of person {taken.person_id}; this person was "
                         "not imported.", {"face_id": taken.id, "person_id": taken.person_id})
    if service.settings.store_images:
        for face in person.faces:
            if face.photo_sha256 and service.photos.exists(service.photos.file_name(face.id)):
                raise PhotoExists(f"A photo file for face {face.id} is already stored (no face names it); it was left "
                                  "as it is and this person not imported.", {"face_id": face.id})
    seen.update((key, line_no) for key in mine)


def _embedding(face: ExportedFace, size: int) -> np.ndarray:
    try:
        raw = base64.b64decode(face.embedding, validate=True)
    except ValueError:
        raise ValidationFailed(f"Face {face.id}'s embedding is not base64.", {"face_id": face.id}) from None
    if len(raw) % 4:
        raise ValidationFailed(f"Face {face.id}'s embedding is {len(raw)} bytes, not whole float32 values.",
                               {"face_id": face.id})
    vector = np.frombuffer(raw, dtype="<f4")
    if vector.size != size:
        raise ValidationFailed(f"Face {face.id}'s embedding has {vector.size} values, not {size} as this encoder's "
                               "have.", {"face_id": face.id})
    bad = np.flatnonzero(~np.isfinite(vector))
    if bad.size:
        what = "NaN" if np.isnan(vector[bad[0]]) else "Infinity"
        raise ValidationFailed(f"Face {face.id}'s embedding holds {what} at position {int(bad[0])}.",
                               {"face_id": face.id, "position": int(bad[0])})
    return vector


def _faces(service, tar, index, person: ExportedPerson) -> tuple[list, int]:
    """(face id, prepared face, created_at) for each face and how many were re-embedded, or the reason the person
    cannot be imported."""
    encoder = service.pipeline.encoder
    out, reembedded = [], 0
    for face in person.faces:
        photo = _read(tar, index.get(_photo_member(face.id))) if face.photo_sha256 else None
        if face.photo_sha256 and photo is None:
            raise ValidationFailed(f"Face {face.id}'s photo is missing from the file.", {"face_id": face.id})
        if photo is not None and hashlib.sha256(photo).hexdigest() != face.photo_sha256:
            raise ValidationFailed(f"Face {face.id}'s photo does not match its checksum.", {"face_id": face.id})
        if face.encoder_hash == encoder.content_hash:
            prepared = PreparedFace(embedding=_embedding(face, encoder.metadata.embedding_size),
                                    box=[round(v, 1) for v in face.box], det_score=face.det_score, quality={},
                                    image_bytes=photo, image_type=image_type(photo) if photo is not None else None,
                                    origin=face.origin)
        elif photo is not None:  # another encoder made it: make it again from the photo, the same face
            prepared = service.people.prepare(photo, face.box)
            prepared.origin = face.origin
            reembedded += 1
        else:
            raise ValidationFailed(f"Face {face.id} was embedded by another encoder ({face.encoder_hash[:12]}…) "
                                   "and its photo was not kept, so this service cannot use it.", {"face_id": face.id})
        out.append((face.id, prepared, face.created_at))
    return out, reembedded


def _open(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:")
    except (OSError, tarfile.TarError) as exc:
        raise BadExport(f"Cannot read {path} as a faceshot export: {exc}") from None


def _checked(tar: tarfile.TarFile, max_photo_bytes: int) -> dict[str, tarfile.TarInfo]:
    index = _index(tar, max_photo_bytes)
    _manifest(tar, index)
    if PEOPLE not in index:
        raise BadExport(f"The export has no {PEOPLE}.")
    return index


def check_export(path: Path, max_photo_bytes: int) -> None:
    """What :func:`import_export` refuses a whole file for, told without a service (before a model loads)."""
    with _open(path) as tar:
        _checked(tar, max_photo_bytes)


def import_export(service, path: Path, collection: str | None = None) -> ImportSummary:
    """Add every person of the export not already here (by id or external id), each all or nothing, into their
    own collection (made here if missing) or, with ``collection``, into that one. A file that is no export, or
    holds a member no export holds, is refused whole (:class:`BadExport`) before anything is written; a person
    that cannot be imported is refused with their line in the summary, and the others go on."""
    summary = ImportSummary()
    with _open(path) as tar:
        index = _checked(tar, service.settings.max_upload_bytes)
        with service.sessions() as session:
            ids = set(session.scalars(select(Person.id)))
            external = set(session.scalars(select(Person.external_id).where(Person.external_id.is_not(None))))
        known_collections = {c.name for c, _ in service.collections.list_collections()}
        seen: dict[tuple[str, str], int] = {}
        for line_no, line in _lines(tar.extractfile(index[PEOPLE])):
            if isinstance(line, bytes) and not line.strip():
                continue
            person = None
            try:
                if isinstance(line, str):
                    raise BadExport(line)
                person = _person(line)
                if person.id in ids or (person.external_id and person.external_id in external):
                    summary.skipped_existing.append(person.external_id or person.id)
                    continue
                _check_ids(service, person, seen, line_no)
                _check_text(person)
                faces, reembedded = _faces(service, tar, index, person)
                target = collection or person.collection
                if target not in known_collections:
                    service.collections.ensure_collection(target, CLI)
                    known_collections.add(target)
                service.people.restore_person(person.id, person.name, person.external_id, person.metadata,
                                       person.created_at, faces, collection=target)
            except FaceshotError as exc:
                summary.refused.append({"line": line_no, "id": person.id if person else None,
                                        "name": person.name if person else None, "code": exc.code,
                                        "reason": exc.message})
                continue
            ids.add(person.id)
            if person.external_id:
                external.add(person.external_id)
            summary.imported_people += 1
            summary.imported_faces += len(faces)
            summary.reembedded_faces += reembedded
    return summary
