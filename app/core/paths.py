"""Where the API lives: its prefix, the operations that work within one collection, and the scope key that carries
the collection. One definition for the server, its middleware, logs and metrics, and the clients (no torch here)."""

from __future__ import annotations

API_PREFIX = "/api/v1"
# the operations that work within one collection (keys, the audit log and collections are deployment-wide)
SCOPED = ("enroll", "people", "identify", "verify", "detect", "compare", "embed", "model", "events", "events.csv",
          "presence", "webhooks", "corrections", "suggestions", "visitors")
COLLECTION_SCOPE = "faceshot.collection"  # set by CollectionPaths for /api/v1/collections/{name}/...


def in_collection(path: str, collection: str | None) -> str:
    """An operation's path (``/enroll``, ``/people/{id}``, under the prefix) within ``collection``:
    ``/collections/{name}/enroll``; as it is for none, or for an operation that is deployment-wide."""
    if collection and path.lstrip("/").split("/")[0] in SCOPED:
        return f"/collections/{collection}{path}"
    return path


def api_base(collection: str | None) -> str:
    """Where a collection's operations live (today's paths, under the prefix alone, are `default`'s)."""
    return API_PREFIX if collection in (None, "default") else f"{API_PREFIX}/collections/{collection}"
