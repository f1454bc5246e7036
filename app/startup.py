"""What a process does before it serves, in one order: data directory, schema, the binding of the two, an admin path;
then, for a process that recognises faces, its service (:func:`build_service`).

``faceshot serve`` runs it once before its workers start (so they never race for the
schema or the first key), each worker and each CLI command runs it again (it is
idempotent), and nothing else creates these things.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from app.access.keys import ensure_admin_key
from app.core.config import Settings
from app.core.db import Database, upgrade_database
from app.core.instance import bind_data_dir
from app.gallery.encoder_choice import adopt, choose_encoder, explicit_encoder

if TYPE_CHECKING:
    from app.service import FaceService

log = logging.getLogger("faceshot")


def make_private_dir(path) -> None:
    """Create the data directory owner-only (0700), and tighten an existing one we own."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError:
        pass  # a mount we may not change; the files inside are owner-only anyway


def prepare_deployment(settings: Settings) -> tuple[Database, str | None]:
    """The open database, and where the admin key can be read (for the start-up message; never the key)."""
    make_private_dir(settings.data_dir)
    upgrade_database(settings.sqlalchemy_url)
    db = Database(settings.sqlalchemy_url)
    try:
        bind_data_dir(settings.data_dir, settings.images_dir, db.sessions, settings.database_label)
        where = ensure_admin_key(settings, db.sessions)
    except BaseException:
        db.close()
        raise
    return db, where


def _has_gpu(device: str, torch) -> bool:
    """Whether this process runs the encoder on a GPU: FACESHOT_DEVICE says so, or (auto) torch sees one."""
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def build_service(settings: Settings, pipeline=None, *, check_encoder: bool = True) -> FaceService:
    """Everything a process needs before its first request: schema, binding, keys, model, gallery.

    ``check_encoder=False`` is for ``faceshot reembed`` only: the one caller that
    must open a gallery another encoder made.
    """
    import torch

    from app.service import FaceService
    from models.pipeline import FacePipeline

    torch.set_num_threads(settings.effective_torch_threads())
    db, where = prepare_deployment(settings)
    if where:
        log.info("admin API key: %s", where)
    try:
        choice = None
        if pipeline is None:
            device = None if settings.device == "auto" else settings.device
            choice = choose_encoder(explicit_encoder(settings),
                                    db.sessions, gpu=lambda: _has_gpu(settings.device, torch),
                                    sources=settings.weight_sources())
            pipeline = FacePipeline.from_spec(choice.spec, device, sources=settings.weight_sources())
        service = FaceService(settings, pipeline, db, encoder_choice=choice)
        if check_encoder:
            service.gallery_sync.check_encoder_matches_stored()
            if choice is not None:  # the stored embeddings agree with it: FACESHOT_ENCODER becomes the gallery's own
                service.recognition.encoder_choice = adopt(db.sessions, choice)
        service.gallery_sync.reload()
        service.photos.sweep(settings.data_dir)
    except BaseException:
        db.close()
        raise
    log.info("faceshot ready: encoder %s on %s, %d people indexed",
             pipeline.encoder.metadata.name, pipeline.encoder.device, len(service.galleries))
    return service
