"""Collections: create, list, delete (deployment admin key); move or copy a person into another collection."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Response, status
from pydantic import ConfigDict, Field

from app.access.audit import Actor
from app.api.deps import AdminKey, CollectionDep, CollectionsDep, DeploymentAdminKey, PeopleDep
from app.api.gate import GatedRoute
from app.core.errors import Forbidden
from app.core.schemas import CollectionIn, CollectionOut, PersonOut, _Strict, error_responses

router = APIRouter(tags=["collections"], route_class=GatedRoute, responses=error_responses(401, 403, 422, 429, 503))


class MoveIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"to": "warehouse", "mode": "move"}]})
    to: Annotated[str, Field(min_length=1, max_length=64, description="the collection to move (or copy) into")]
    mode: Literal["move", "copy"] = Field(default="move", description="move: the same person and id; copy: a new "
                                                                      "person with copies of the faces and photos")


@router.post("/collections", status_code=status.HTTP_201_CREATED, response_model=CollectionOut,
             responses=error_responses(409, 413), summary="Create an empty collection (a gallery of its own)")
def create_collection(collections: CollectionsDep, key: DeploymentAdminKey, body: CollectionIn):
    """Its operations are under /api/v1/collections/{name}/…; a key made with `collection` works there only."""
    collection = collections.create_collection(body.name, Actor.of_key(key))
    return {"name": collection.name, "created_at": collection.created_at, "people": 0}


@router.get("/collections", response_model=list[CollectionOut], summary="Every collection with its size")
def list_collections(collections: CollectionsDep, _key: DeploymentAdminKey):
    """Deployment admin keys only: a camera's recognition key, or a key bound to one collection, does not learn the
    collections' names and sizes."""
    return [{"name": c.name, "created_at": c.created_at, "people": n} for c, n in collections.list_collections()]


@router.delete("/collections/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 409),
               summary="Delete a collection with exactly its people, faces, photos, keys and index")
def delete_collection(collections: CollectionsDep, key: DeploymentAdminKey, name: str):
    """`default` cannot be deleted."""
    collections.delete_collection(name, Actor.of_key(key))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/people/{person_id}/move", response_model=PersonOut, responses=error_responses(404, 409, 413),
             summary="Move (or copy) a person into another collection")
def move_person(people: PeopleDep, key: AdminKey, collection: CollectionDep, person_id: str, body: MoveIn):
    """From the path's collection into `to`. A key bound to one collection cannot move people out of it."""
    if key.collection is not None and body.to != key.collection:
        raise Forbidden(f"This key works in collection {key.collection!r} only.", {"key_collection": key.collection})
    person = people.move_person(person_id, collection, body.to, copy=body.mode == "copy", actor=Actor.of_key(key))
    return PersonOut.of(people.get_person(person.id, body.to))
