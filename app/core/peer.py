"""The connection's own peer: the address a request really came from, whatever X-Forwarded-For says.

A trusted proxy's X-Forwarded-For rewrites the ASGI scope's ``client`` (uvicorn, FORWARDED_ALLOW_IPS), which is
right for rate limits and logs; what must be the proxy itself (proxy sign-in, app/access/proxy_sign_in.py) is read
from here. The HTTP protocol (app/api/edge.py) records it; where nothing did (a test client), it is ``client``.
"""

from __future__ import annotations

PEER = "faceshot.peer"


def peer_of(scope) -> str | None:
    peer = scope.get(PEER) or scope.get("client")
    return peer[0] if peer else None
