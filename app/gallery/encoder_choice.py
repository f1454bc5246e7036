"""Which encoder a deployment's gallery uses: decided once, stored with the gallery, never flipped by the hardware.

Embeddings of two encoders cannot be compared, so the encoder belongs to the gallery, not to the machine that happens
to serve it. The first start of a new gallery decides: on a GPU host with FaceNet's weights present, the
dlib+FaceNet fusion (the most accurate licence-clean encoder; its 5.5x cost per face is small on a GPU); otherwise
dlib's ResNet. That decision, and why, is written to the ``deployment_identity`` row, and every later start uses it,
on any hardware, until FACESHOT_ENCODER names another (which `faceshot reembed` makes the gallery's, or which a start
over a gallery with no embeddings of another encoder records). A gallery from before this record keeps dlib, the
default it was made with; its stored embeddings are checked against it as ever (:mod:`app.gallery.sync`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from app.core.tables import DeploymentIdentity, Face, utcnow
from models.encoders.spec import DEFAULT_ENCODER, WeightSources, check_weights
from models.errors import CheckpointError, WeightsUnavailable

log = logging.getLogger(__name__)

GPU_DEFAULT = "dlib+facenet-20180408"
EXPLICIT = "FACESHOT_ENCODER"
STORED = "stored with the gallery"


@dataclass(frozen=True)
class EncoderChoice:
    """The spec a process builds, where it came from (FACESHOT_ENCODER, or the gallery's record) and why it was
    made: what /model shows."""

    spec: str
    source: str
    reason: str | None
    decided_at: datetime | None

    def describe(self) -> dict:
        return {"spec": self.spec, "source": self.source, "reason": self.reason,
                "decided_at": self.decided_at.isoformat() if self.decided_at else None}


def explicit_encoder(settings) -> str | None:
    """FACESHOT_ENCODER when the operator set it (empty, as compose passes an unset one: not set)."""
    return settings.encoder if "encoder" in settings.model_fields_set and settings.encoder else None


def default_for_host(gpu: bool, sources: WeightSources) -> tuple[str, str]:
    """A new gallery's encoder on this host, and why: the fusion only where it is cheap and its weights are here."""
    if not gpu:
        return DEFAULT_ENCODER, ("a new gallery on a CPU host: dlib's ResNet (the dlib+FaceNet fusion is more accurate "
                                 "but 5.5x dearer per face on a CPU; set FACESHOT_ENCODER to choose it)")
    try:
        check_weights(GPU_DEFAULT, sources)
    except (WeightsUnavailable, CheckpointError) as exc:
        return DEFAULT_ENCODER, (f"a new gallery on a GPU host, but FaceNet's weights are not here ({exc.code}): "
                                 f"dlib's ResNet; `faceshot fetch-weights facenet-20180408`, then "
                                 f"`FACESHOT_ENCODER={GPU_DEFAULT} faceshot reembed` switches")[:300]
    return GPU_DEFAULT, "a new gallery on a GPU host with FaceNet's weights: the dlib+FaceNet fusion"


def _record(sessions: sessionmaker) -> tuple[str | None, str | None, datetime | None]:
    with sessions() as session:
        row = session.execute(select(DeploymentIdentity.encoder, DeploymentIdentity.encoder_reason,
                                     DeploymentIdentity.encoder_decided_at).where(DeploymentIdentity.id == 1)).first()
    return tuple(row) if row is not None else (None, None, None)


def _has_faces(sessions: sessionmaker) -> bool:
    with sessions() as session:
        return session.execute(select(Face.id).limit(1)).first() is not None


def _write(sessions: sessionmaker, spec: str, reason: str, *, only_if_unset: bool) -> None:
    """One conditional UPDATE: workers starting together decide once (the first writer wins; the rest read it)."""
    condition = [DeploymentIdentity.id == 1]
    if only_if_unset:
        condition.append(DeploymentIdentity.encoder.is_(None))
    with sessions.begin() as session:
        session.execute(update(DeploymentIdentity).where(*condition)
                        .values(encoder=spec, encoder_reason=reason, encoder_decided_at=utcnow()))


def stored_encoder(sessions: sessionmaker) -> str | None:
    """The gallery's recorded encoder (None: not decided yet). Torch-free, for the supervisor's weight check."""
    return _record(sessions)[0]


def choose_encoder(explicit: str | None, sessions: sessionmaker, *, gpu, sources: WeightSources) -> EncoderChoice:
    """The encoder this process builds. ``explicit``: FACESHOT_ENCODER when the operator set it; ``gpu``: a callable
    saying whether this process has a GPU (asked only when a new gallery is decided)."""
    spec, reason, decided_at = _record(sessions)
    if explicit is not None:
        return EncoderChoice(explicit, EXPLICIT, reason if spec == explicit else None,
                             decided_at if spec == explicit else None)
    if spec is None:
        if _has_faces(sessions):  # a gallery from before the record: the default it was made with
            spec, reason = DEFAULT_ENCODER, "a gallery made before encoders were recorded: dlib, its default then"
        else:
            spec, reason = default_for_host(bool(gpu()), sources)
        _write(sessions, spec, reason, only_if_unset=True)
        spec, reason, decided_at = _record(sessions)
        log.info("this gallery's encoder is now %s (%s)", spec, reason)
    return EncoderChoice(spec, STORED, reason, decided_at)


def adopt(sessions: sessionmaker, choice: EncoderChoice) -> EncoderChoice:
    """Make an explicit FACESHOT_ENCODER the gallery's own, once the stored embeddings were found to agree with it
    (or re-made by it): a later start without the variable keeps it."""
    if choice.source != EXPLICIT:
        return choice
    spec, reason, decided_at = _record(sessions)
    if spec != choice.spec:
        _write(sessions, choice.spec, f"set by {EXPLICIT}", only_if_unset=False)
        spec, reason, decided_at = _record(sessions)
    return EncoderChoice(choice.spec, EXPLICIT, reason, decided_at)
