"""Deliberate crashes at named points of a write, for the crash-recovery tests.

``FACESHOT_CRASH_AT=<point>`` (``before_commit`` or ``after_commit``, see
``GallerySync.write``) makes the process SIGKILL itself when a write reaches
that point: exactly what ``kill -9`` in the middle of an enrollment does, at a
moment a test can name instead of race for. Unset (always, outside tests), a
crash point costs one comparison.
"""

from __future__ import annotations

import os
import signal


def crash_point(name: str, armed: str | None) -> None:
    """SIGKILL this process if ``armed`` (the configured crash point) is ``name``."""
    if armed == name:
        os.kill(os.getpid(), signal.SIGKILL)
