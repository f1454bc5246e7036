"""Embeddings sent by a client instead of a photo: accepted only when this service's encoder made them.

An embedding is a JSON array of numbers with the ``encoder_hash`` of the encoder that made it
(``POST /embed`` returns both). Another encoder's vectors, or vectors of another size, live in a
different space: comparing them would give confident nonsense, so they are refused with
``encoder_mismatch`` rather than compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.core.errors import EncoderMismatch, ValidationFailed
from app.core.inputs import strict_json


def parse_embeddings(raw: Any, field: str) -> list[Any]:
    """A form field's text (or a JSON body's value) as a list of vectors: one vector, or a list of them."""
    value = raw
    if isinstance(raw, str):
        try:
            value = strict_json(raw)
        except ValueError:
            raise ValidationFailed(f"`{field}` must be a JSON array of numbers.", {"field": field}) from None
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return value
    return [value]


def check_embedding(value: Any, encoder_hash: str | None, *, expected_hash: str, size: int,
                    field: str = "embedding") -> np.ndarray:
    """One client vector as this encoder's unit vector, or a refusal that says what is wrong with it."""
    if not encoder_hash:
        raise ValidationFailed(f"`{field}` needs `encoder_hash`: the content hash of the encoder that made it "
                               "(POST /embed returns it).", {"field": "encoder_hash"})
    if encoder_hash != expected_hash:
        raise EncoderMismatch("This embedding was made by another encoder; this service cannot compare it.",
                              {"field": "encoder_hash", "expected": expected_hash, "got": encoder_hash})
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise ValidationFailed(f"`{field}` must be an array of numbers.", {"field": field})
    if len(value) != size:
        raise EncoderMismatch(f"This encoder's embeddings have {size} numbers; this one has {len(value)}.",
                              {"field": field, "expected_size": size, "got_size": len(value)})
    vector = np.asarray(value, dtype=np.float32)
    norm = float(np.linalg.norm(vector)) if np.all(np.isfinite(vector)) else float("nan")
    if not abs(norm - 1.0) < 1e-3:  # NaN fails too
        raise ValidationFailed(f"`{field}` is not a unit vector (length {norm:.4g}); send it as /embed returned it.",
                               {"field": field})
    return vector / norm


def embedding_from_client(encoder, value, encoder_hash: str | None, field: str = "embedding") -> np.ndarray:
    """A vector a client sent (an edge device's), accepted only from ``encoder``: another's would be silently wrong."""
    return check_embedding(value, encoder_hash, expected_hash=encoder.content_hash,
                           size=encoder.metadata.embedding_size, field=field)
