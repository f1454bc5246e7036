"""The read-only queries: small keyword-only functions that take a session (after the FastAPI template's crud.py)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.core.db import page
from app.core.errors import NotFound
from app.core.inputs import like_pattern
from app.core.tables import Collection, Face, GalleryChange, GalleryState, Person

CHUNK = 500  # ids per IN (...) list: well under every database's parameter limit


def gallery_version(session: Session) -> int:
    return session.execute(select(GalleryState.version).where(GalleryState.id == 1)).scalar_one()


def get_person(session: Session, *, person_id: str, collection: str | None = None) -> Person:
    """The person with their faces, or NotFound (also when they are in another ``collection``: its callers are
    not told whether a person exists elsewhere)."""
    person = session.get(Person, person_id, options=[selectinload(Person.faces)])
    if person is None or (collection is not None and person.collection != collection):
        raise NotFound(f"No person with id {person_id}.", {"person_id": person_id})
    return person


def list_people(session: Session, *, search: str | None, limit: int, offset: int,
                collection: str | None = None) -> tuple[list[Person], int]:
    """A page of people by name (``search`` matches name or external id, literally), and how many match;
    ``collection``: its people only."""
    q = select(Person)
    if collection is not None:
        q = q.where(Person.collection == collection)
    if search:
        like = like_pattern(search)
        q = q.where(or_(func.lower(Person.name).like(like, escape="\\"),
                        func.lower(Person.external_id).like(like, escape="\\")))
    return page(session, q.options(selectinload(Person.faces)), Person.name, Person.id, limit=limit, offset=offset)


def support_of_people_named(session: Session, *, name: str, collection: str,
                            encoder_hash: str) -> dict[str, np.ndarray]:
    """Each person of the collection called ``name`` (case aside) who has faces of this encoder: their (N, D)
    support embeddings, by id."""
    people = session.scalars(select(Person).where(Person.collection == collection,
                                                  func.lower(Person.name) == name.lower())
                             .options(selectinload(Person.faces))).all()
    out = {}
    for person in people:
        vectors = [f.vector for f in person.faces if f.encoder_hash == encoder_hash]
        if person.name.casefold() == name.casefold() and vectors:
            out[person.id] = np.stack(vectors)
    return out


def face_photo(session: Session, *, person_id: str, face_id: str) -> tuple[str, str]:
    """The stored photo's file name and media type of one of a person's faces, or NotFound."""
    face = session.get(Face, face_id)
    if face is None or face.person_id != person_id:
        raise NotFound(f"Person {person_id} has no face {face_id}.", {"face_id": face_id})
    if not face.image_file:
        raise NotFound("This face's photo was not kept (store_images is off).", {"face_id": face_id})
    return face.image_file, face.image_type or "application/octet-stream"


def counts(session: Session, collection: str | None = None) -> tuple[int, int]:
    """(people, faces) in the database, or in one collection."""
    people_q, faces_q = select(func.count()).select_from(Person), select(func.count()).select_from(Face).join(Person)
    if collection is not None:
        people_q, faces_q = people_q.where(Person.collection == collection), faces_q.where(
            Person.collection == collection)
    return int(session.execute(people_q).scalar_one()), int(session.execute(faces_q).scalar_one())


def all_support(session: Session, *, encoder_hash: str):
    """Every face's person, embedding and person name under ``encoder_hash`` (the gallery at start-up)."""
    return session.execute(select(Face.person_id, Face.embedding, Person.name, Person.collection, Face.origin)
                           .join(Person).where(Face.encoder_hash == encoder_hash)).all()


def support_sets(session: Session, *, person_ids, encoder_hash: str,
                 dim: int) -> dict[str, tuple[str, np.ndarray, str, int] | None]:
    """Each person's name, (S, dim) support embeddings under ``encoder_hash``, collection, and how many of those
    faces a camera captured (None: deleted)."""
    person_ids = list(person_ids)
    found: dict[str, list | None] = dict.fromkeys(person_ids)
    for start in range(0, len(person_ids), CHUNK):
        chunk = person_ids[start:start + CHUNK]
        for pid, name, collection in session.execute(select(Person.id, Person.name, Person.collection)
                                                     .where(Person.id.in_(chunk))):
            found[pid] = [name, [], collection, 0]
        for pid, emb, origin in session.execute(select(Face.person_id, Face.embedding, Face.origin).where(
                Face.person_id.in_(chunk), Face.encoder_hash == encoder_hash).order_by(Face.created_at)):
            if found.get(pid) is not None:
                found[pid][1].append(np.frombuffer(emb, dtype="<f4"))
                found[pid][3] += origin == "camera"
    return {pid: None if v is None else (v[0], np.stack(v[1]) if v[1] else np.zeros((0, dim), np.float32), v[2],
                                         v[3]) for pid, v in found.items()}


def touched_since(session: Session, *, after: int, up_to: int) -> list[str]:
    """The people whose faces gallery versions ``after`` (exclusive) to ``up_to`` changed."""
    return list(session.execute(select(GalleryChange.person_id).where(
        GalleryChange.version > after, GalleryChange.version <= up_to).distinct()).scalars())


def other_encoders(session: Session, *, encoder_hash: str) -> list[tuple[str, int]]:
    """Encoders other than ``encoder_hash`` that stored embeddings were made by, with their face counts."""
    return [(h, int(n)) for h, n in session.execute(
        select(Face.encoder_hash, func.count()).where(Face.encoder_hash != encoder_hash).group_by(Face.encoder_hash))]


def stale_faces(session: Session, *, encoder_hash: str):
    """(face id, person id, box, photo file) of every face another encoder embedded."""
    return session.execute(select(Face.id, Face.person_id, Face.box, Face.image_file)
                           .where(Face.encoder_hash != encoder_hash)).all()


def collections_with_counts(session: Session) -> list[tuple[Collection, int]]:
    people = dict(session.execute(select(Person.collection, func.count()).group_by(Person.collection)).all())
    return [(c, int(people.get(c.name, 0))) for c in session.scalars(select(Collection).order_by(Collection.name))]


def people_named(session: Session, *, name: str, collection: str) -> list[Person]:
    """Every person of the collection called ``name`` (case aside), with their faces, oldest first."""
    people = session.scalars(select(Person).where(Person.collection == collection,
                                                  func.lower(Person.name) == name.lower())
                             .options(selectinload(Person.faces)).order_by(Person.created_at, Person.id)).all()
    return [p for p in people if p.name.casefold() == name.casefold()]


def person_names(session: Session, *, collection: str) -> list[str]:
    """The collection's distinct names (one spelling of each, case aside), alphabetically."""
    names: dict[str, str] = {}
    for name in session.scalars(select(Person.name).where(Person.collection == collection).order_by(Person.name)):
        names.setdefault(name.casefold(), name)
    return sorted(names.values(), key=str.casefold)


def face_in_collection(session: Session, *, face_id: str, collection: str) -> Face:
    """One face (with its person) of the collection, or NotFound (also when it is another collection's)."""
    face = session.get(Face, face_id, options=[selectinload(Face.person)])
    if face is None or face.person.collection != collection:
        raise NotFound(f"No face with id {face_id}.", {"face_id": face_id})
    return face


def faces_page(session: Session, *, collection: str, person_ids: list[str] | None, limit: int,
               offset: int) -> tuple[list[Face], int]:
    """A page of the collection's faces (of ``person_ids`` only, when given) with their people, oldest first."""
    q = select(Face).join(Person).where(Person.collection == collection).options(selectinload(Face.person))
    if person_ids is not None:
        q = q.where(Face.person_id.in_(person_ids))
    return page(session, q, Face.created_at, Face.id, limit=limit, offset=offset)
