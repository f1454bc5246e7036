"""Where the API lives: its prefix, the operations that work within one collection, and the scope key that carries
the collection. One definition for the server, its middleware, logs and metrics, and the clients (no torch here)."""

from __future__ import annotations

API_PREFIX = "/api/v1"
# the operations that work within one collection (keys, the audit log and collections are deployment-wide)
SCOPED = ("enroll", "people", "identify", "verify", "detect", "compare", "embed", "model", "events", "events.csv",
          "presence", "webhooks")
COLLECTION_SCOPE = "faceshot.collection"  # set by CollectionPaths for /api/v1/collections/{name}/...
