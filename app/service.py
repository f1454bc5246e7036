"""The container: builds the domain services of one process, wires them together, starts and closes them.

Routes and pages never reach through it: each receives the one service it uses as a typed dependency
(app/api/deps.py). The jobs live in their packages: the face pipeline as requests run it (:mod:`app.inference`),
people, collections, photos, the index and thresholds (:mod:`app.gallery`), the verbs of recognition
(:mod:`app.recognition`), events and their sinks (:mod:`app.live`), keys, accounts and the audit log
(:mod:`app.access`).
"""

from __future__ import annotations

import logging
from typing import Any

from app.access.accounts import Accounts
from app.access.admin_sessions import SessionSigner
from app.access.audit import AuditLog
from app.access.group_rights import parse_group_rights
from app.access.keys import Keys
from app.access.oidc import OidcSignIn
from app.access.proxy_sign_in import ProxySignIn
from app.core.config import Settings
from app.core.db import Database
from app.core.tables import DEFAULT_COLLECTION
from app.gallery.collections import Collections
from app.gallery.encoder_choice import EncoderChoice
from app.gallery.index import Galleries
from app.gallery.notify import GalleryNotifications
from app.gallery.people import People
from app.gallery.photo_store import photo_store
from app.gallery.sync import GallerySync
from app.gallery.thresholds import Thresholds
from app.inference.admission import InferenceQueue
from app.inference.runner import Inference
from app.live.events import EventLog
from app.live.mqtt import MqttEvents
from app.live.review import EventReview
from app.live.sinks import EventSink
from app.live.suggestions import Suggestions
from app.live.visitors import VisitorGroups
from app.live.webhooks import Webhooks
from app.recognition.compreface import CompreFace
from app.recognition.face_checks import FACE_CHECKS
from app.recognition.service import Recognition
from models.pipeline import FacePipeline

log = logging.getLogger(__name__)


class FaceService:
    def __init__(self, settings: Settings, pipeline: FacePipeline, db: Database | None, *,
                 encoder_choice: EncoderChoice | None = None):
        self.settings, self.pipeline, self.db = settings, pipeline, db
        self.sessions = db.sessions if db is not None else None
        encoder = pipeline.encoder
        self.inference = Inference(settings, pipeline, checks=FACE_CHECKS)
        self.queue = InferenceQueue(settings.inference_queue)
        self.photos = photo_store(settings.photo_store, settings.images_dir, self.sessions)
        self.galleries = Galleries(encoder.metadata.embedding_size)
        self.notifications = (GalleryNotifications(db.engine) if db is not None and settings.gallery_notify
                              and GalleryNotifications.available(db.engine) else None)
        self.gallery_sync = GallerySync(self.galleries, db, self.photos, encoder.content_hash,
                                        settings.gallery_sync_interval_s, settings.crash_at, self.notifications)
        self.thresholds = Thresholds(settings, encoder, self.galleries)
        self.people = People(settings, encoder, self.inference, self.photos, self.galleries, self.gallery_sync,
                             self.thresholds)
        self.collections = Collections(self.gallery_sync, self.galleries, self.photos, self.thresholds)
        self.recognition = Recognition(settings, encoder, self.inference, self.galleries, self.gallery_sync,
                                       self.thresholds, encoder_choice=encoder_choice)
        self.compreface = CompreFace(self.people, self.recognition)  # CompreFace's API over the two
        self.suggestions = None
        self.events = self.review = self.webhooks = self.audit = self.accounts = self.keys = self.admin_sessions = None
        self.proxy_sign_in = self.oidc = None
        self.sinks: list[EventSink] = []
        self.visitors = None
        if db is not None:
            self.audit = AuditLog(self.sessions)
            self.accounts = Accounts(self.sessions)
            self.keys = Keys(self.sessions)
            self.admin_sessions = SessionSigner(settings, self.sessions)
            # a company's sign-in, by a signing-in reverse proxy's headers or OpenID Connect: one rights mapping for
            # both, parsed here so a typo stops the start
            group_rights = parse_group_rights(settings.admin_group_rights)
            self.proxy_sign_in = ProxySignIn(settings, self.accounts, group_rights)
            self.oidc = OidcSignIn(settings, self.accounts, group_rights, lambda: self.admin_sessions.secret)
            # retention is enforced on the delivery thread, hourly, even when no event arrives
            self.webhooks = Webhooks(settings, self.sessions,
                                     housekeeping=lambda: self.events.purge_expired(at_most_hourly=True))
            self.sinks = [self.webhooks]  # every output of an event: one line each
            if settings.mqtt_url is not None:
                self.sinks.append(MqttEvents(settings, self.sessions))
            self.visitors = VisitorGroups(settings, self.sessions, self.people)  # unknown faces grouped as they come
            self.sinks.append(self.visitors)
            self.events = EventLog(settings, db, self.sinks, stated_rate=self._stated_rate, encoder=encoder)
            self.review = EventReview(self.events, self.people)  # an event's kept face, enrolled or corrected
            self.suggestions = Suggestions(self.events)  # events worth adding to their person's support set
            self.collections.cleanups.append(self.events.delete_collection)

    def _stated_rate(self, collection: str) -> float | None:
        """The stranger-accept rate a collection's thresholds stand for now (None: the encoder cannot say)."""
        rate = self.thresholds.operating_point(collection=collection).stranger_accept_rate
        return None if rate is None or rate != rate else round(rate, 6)

    @property
    def gallery(self):
        """The default collection's index (what a deployment without collections searches)."""
        return self.galleries.get(DEFAULT_COLLECTION)

    def start(self) -> None:
        """What a serving process runs beside its requests: the event sinks, after the retention the log is due."""
        self.events.purge_expired()
        if self.notifications is not None:
            self.notifications.start()
        for sink in self.sinks:
            sink.start()

    def close(self) -> None:
        if self.notifications is not None:
            self.notifications.stop()
        for sink in self.sinks:
            sink.stop()
        self.inference.close()
        if self.db is not None:
            self.db.close()

    def readiness(self) -> dict[str, Any]:
        """What /ready reports: the database reachable (and still its file); whether photos can be stored now."""
        file_problem = self.db.file_problem()
        problems = {"database": file_problem} if file_problem else {}
        checks = {"model_loaded": True, "database": file_problem is None and self.db.reachable()}
        storage = (self.photos.problem(min_free_bytes=self.settings.max_upload_bytes)
                   if self.settings.store_images else None)
        if storage:
            problems["storage"] = storage
        return {"checks": checks, "storage": {"writable": storage is None, "problem": storage}, "problems": problems}
