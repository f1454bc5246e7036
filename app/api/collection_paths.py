"""`/api/v1/collections/{collection}/…`: every operation of one collection, served by the same routes as today's.

Today's routes are the `default` collection's, so no client breaks. Rather than declare every
route twice, this middleware maps a collection's path onto the route it names and records the
collection in the request's scope; the key check (app/api/deps.py) reads it before the body,
refuses a key bound to another collection (403) and an unknown collection (404, after the key),
and every operation works within it. The OpenAPI document lists the collection paths too
(:func:`with_collection_paths`), so clients and schemathesis see them.
"""

from __future__ import annotations

import copy
import re
from urllib.parse import urlsplit, urlunsplit

from app.core.errors import error_response
from app.core.observability import ROUTE_PREFIX_SCOPE
from app.core.paths import API_PREFIX as PREFIX
from app.core.paths import COLLECTION_SCOPE, SCOPED
from app.core.tables import COLLECTION_PATTERN

_PATH = re.compile(rf"^{PREFIX}/collections/([^/]+)/({'|'.join(SCOPED)})(/.*)?$")


class CollectionPaths:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            match = _PATH.match(scope.get("path", ""))
            if match:
                name, operation, rest = match.group(1), match.group(2), match.group(3) or ""
                if not re.fullmatch(COLLECTION_PATTERN, name):  # a NUL or 3,000 characters never reach a query
                    await error_response(422, "validation_error", "A collection's name is 1-64 lowercase letters, "
                                         "digits, '-' or '_', starting with a letter or digit.",
                                         {"field": "collection"})(scope, receive, send)
                    return
                path = f"{PREFIX}/{operation}{rest}"
                # in place: the access log and metrics, outside, label it with the route it reached (within the
                # collection), not `unmatched`
                scope.update({"path": path, "raw_path": path.encode(), COLLECTION_SCOPE: name,
                              ROUTE_PREFIX_SCOPE: (PREFIX, f"{PREFIX}/collections/{{collection}}")})
                send = _redirects_within(name, send)
        await self.app(scope, receive, send)


def _redirects_within(name: str, send):
    """A redirect the router answers for a rewritten path (a trailing slash) points at today's route, which is
    `default`'s: put it back under this collection, or a client that follows it works in another collection."""

    async def sending(message):
        if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
            headers = []
            for key, value in message.get("headers", []):
                if key.lower() == b"location":
                    url = urlsplit(value.decode("latin-1"))
                    if url.path.startswith(PREFIX + "/"):
                        path = f"{PREFIX}/collections/{name}/{url.path[len(PREFIX) + 1:]}"
                        value = urlunsplit(url._replace(path=path)).encode("latin-1")
                headers.append((key, value))
            message = {**message, "headers": headers}
        await send(message)

    return sending


def with_collection_paths(spec: dict) -> dict:
    """The document with each collection-scoped path also under /collections/{collection}/."""
    paths = spec.get("paths", {})
    parameter = {"name": "collection", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": COLLECTION_PATTERN},
                 "description": "the collection (today's paths are `default`'s)"}
    error = next((op["responses"]["404"] for item in paths.values() for op in item.values()
                  if "404" in op.get("responses", {})), None)
    added = {}
    for path, item in paths.items():
        rest = path[len(PREFIX) + 1:] if path.startswith(PREFIX + "/") else ""
        if rest.split("/")[0] not in SCOPED:
            continue
        twin = copy.deepcopy(item)
        for method, op in twin.items():
            op["operationId"] = f"{op.get('operationId', method + path)}_in_collection"
            op["parameters"] = [parameter, *op.get("parameters", [])]
            op["tags"] = [*op.get("tags", []), "collections"]
            if error is not None:  # an unknown collection (404) or a malformed name (422)
                for status, text in (("404", "not_found: no such collection (or person)"),
                                     ("422", "validation_error")):
                    op["responses"].setdefault(status, {**error, "description": text})
        added[f"{PREFIX}/collections/{{collection}}/{rest}"] = twin
    spec["paths"] = {**paths, **added}
    return spec
