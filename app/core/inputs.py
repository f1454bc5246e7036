"""What the API accepts as text and as metadata: rules every route shares, so nothing stored can fail to read back.

A string with a NUL byte cannot be stored by PostgreSQL, a lone surrogate cannot be encoded
as the UTF-8 of a JSON answer, and NaN is not JSON: each used to be accepted and then turned
every page that showed it into a 500. They are refused at the door instead.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from app.core.errors import ValidationFailed

MAX_NAME_LENGTH = 200
MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 8
MAX_JSON_DEPTH = 32


def text_problem(value: str) -> str | None:
    """Why a string may not be stored or sent back (None: it may)."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    return None


def check_text(value: str, field: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValidationFailed(f"`{field}` {problem}.", {"field": field})
    return value


# Characters that change how the text around them is shown, not what it says: bidirectional embeddings, overrides
# and isolates ("Ann\u202egnp.exe" shows as "Annexe.png"), invisible tag characters, and line/paragraph separators
# that break a log line or a CSV row.
_BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def display_problem(value: str) -> str | None:
    """Why text shown to people (a name, a camera) could mislead or break what shows it (None: it cannot)."""
    for c in value:
        if unicodedata.category(c) in ("Cc", "Zl", "Zp"):
            return "contains control characters or line breaks"
        if c in _BIDI_CONTROLS:
            return f"contains a bidirectional override or isolate (U+{ord(c):04X})"
        if 0xE0000 <= ord(c) <= 0xE007F:
            return f"contains an invisible tag character (U+{ord(c):04X})"
    return None


def clean_label(value: str | None, field: str, max_length: int) -> str:
    """A name or label people read: 1 to ``max_length`` characters, at least one of them visible, nothing that
    changes how it or the text around it is shown."""
    value = check_text(value or "", field).strip()
    if not value or len(value) > max_length:
        raise ValidationFailed(f"A {field} of 1 to {max_length} characters is needed.", {"field": field})
    if problem := display_problem(value):
        raise ValidationFailed(f"`{field}` {problem}.", {"field": field})
    if all(unicodedata.category(c)[0] in "CZ" or unicodedata.category(c) == "Mn" for c in value):
        raise ValidationFailed(f"`{field}` has no visible character.", {"field": field})  # format, spaces, marks
    return value


def clean_name(name: str | None, field: str = "name") -> str:
    """A person's name: 1 to 200 characters (:func:`clean_label`)."""
    return clean_label(name, field, MAX_NAME_LENGTH)


def walk_problem(value: Any, depth: int = 0, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """The first thing in a decoded JSON value that cannot be stored and sent back as JSON."""
    if depth > max_depth:
        return f"is nested more than {max_depth} levels deep"
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "holds NaN or Infinity, which JSON cannot carry"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = (text_problem(key) if isinstance(key, str) else None) or walk_problem(item, depth + 1, max_depth)
            if problem:
                return problem
    elif isinstance(value, list):
        for item in value:
            if problem := walk_problem(item, depth + 1, max_depth):
                return problem
    return None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def strict_json(raw: bytes | str) -> Any:
    """JSON as RFC 8259 has it: NaN, Infinity and numbers beyond a float's range are refused."""
    value = json.loads(raw, parse_constant=_reject_constant)
    problem = walk_problem(value)
    if problem:
        raise ValueError(f"the JSON {problem}")
    return value


def check_metadata(value: dict[str, Any] | None, field: str = "metadata") -> dict[str, Any] | None:
    """A person's metadata: a JSON object of at most 16 KB and 8 levels that reads back as it was stored."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationFailed("metadata must be a JSON object.", {"field": field})
    problem = walk_problem(value, max_depth=MAX_METADATA_DEPTH)
    if problem:
        raise ValidationFailed(f"`{field}` {problem}.", {"field": field})
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise ValidationFailed(f"`{field}` is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are kept.",
                               {"field": field, "max_bytes": MAX_METADATA_BYTES})
    return value


def parse_metadata(raw: str | None) -> dict | None:
    """``metadata`` sent as a form field: a JSON object, checked like a JSON body's."""
    if raw is None or raw.strip() == "":
        return None
    try:
        value = strict_json(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ValidationFailed("metadata must be a JSON object (no NaN or Infinity).", {"field": "metadata"})
    return check_metadata(value)


def like_pattern(search: str) -> str:
    """``search`` as a LIKE pattern that matches it literally (escape character: backslash)."""
    escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
