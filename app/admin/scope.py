"""Which collection an admin page works in, and whether the signed-in admin may see or change it.

The collection being looked at is remembered in a cookie (the header's switcher sets it) and
checked against the session's rights with every request; a page that acts on one thing (a
person, a photo) works in that thing's own collection. A collection the admin has no right in
is answered as if it did not exist (404), so its name, and its people's, never show.
"""

from __future__ import annotations

from fastapi import Request

from app.access.admin_sessions import AdminSession
from app.api.deps import collections_of, people_of
from app.core.errors import Forbidden, NotFound
from app.core.tables import DEFAULT_COLLECTION

COLLECTION_COOKIE = "faceshot_admin_collection"
COLLECTION_HEADER = "X-Faceshot-Collection"  # what the page's script sends: the collection the page showed


def all_collections(request: Request) -> list:
    """Every collection with its size, read once per request (the header, the switcher and Settings all ask)."""
    if not hasattr(request.state, "all_collections"):
        request.state.all_collections = collections_of(request).list_collections()
    return request.state.all_collections


def visible_collections(request: Request, session: AdminSession) -> list[str]:
    """The collections this admin may see (that exist), `default` first."""
    names = [c.name for c, _ in all_collections(request)] if session.rights is None else list(session.rights)
    return sorted(names, key=lambda n: (n != DEFAULT_COLLECTION, n))


def require(session: AdminSession, collection: str, change: bool = False) -> str:
    """``collection``, if this admin may see it (and change it, with ``change``)."""
    if not session.may_see(collection):
        raise NotFound(f"No collection named {collection!r}.", {"collection": collection})
    if change and not session.may_change(collection):
        raise Forbidden("You may look at this collection but not change it (a viewer's right).",
                        {"collection": collection, "right": "viewer"})
    return collection


def current_collection(request: Request, session: AdminSession, change: bool = False) -> str:
    """The collection a page works in: the script's header (the collection its page showed), else the switcher's
    choice, else the first this admin may see."""
    asked = request.headers.get(COLLECTION_HEADER)
    if asked is not None:
        require(session, asked, change)
        collections_of(request).check_collection(asked)  # a deployment admin may see every one that exists
        return asked
    visible = visible_collections(request, session)
    chosen = request.cookies.get(COLLECTION_COOKIE)
    if chosen not in visible:  # none chosen, or one it has no right in, or one deleted since
        chosen = visible[0] if visible else DEFAULT_COLLECTION
    return require(session, chosen, change)


def person_in_reach(request: Request, session: AdminSession, person_id: str, change: bool = False):
    """The person a page acts on (with their faces), in whichever collection this admin may see (and change,
    with ``change``); another collection's person is not found."""
    person = people_of(request).get_person(person_id, collection=None)
    if not session.may_see(person.collection):
        raise NotFound(f"No person with id {person_id}.", {"person_id": person_id})
    require(session, person.collection, change)
    return person


def person_collection(request: Request, session: AdminSession, person_id: str, change: bool = False) -> str:
    """The collection of the person a page acts on (:func:`person_in_reach`)."""
    return person_in_reach(request, session, person_id, change).collection
