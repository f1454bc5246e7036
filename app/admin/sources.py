"""What the admin pages that show several services at once receive, as one typed dependency each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from app.access.accounts import Accounts
from app.access.audit import AuditLog
from app.access.keys import Keys
from app.api.deps import AccountsDep, AuditDep, EventsDep, KeysDep, RecognitionDep, SettingsDep, WebhooksDep
from app.core.config import Settings
from app.live.events import EventLog
from app.live.webhooks import Webhooks
from app.recognition.service import Recognition


@dataclass
class SettingsPage:
    """Settings shows the model and thresholds, the keys, the audit log and the accounts."""

    recognition: Recognition
    keys: Keys
    audit: AuditLog
    accounts: Accounts


def settings_page(recognition: RecognitionDep, keys: KeysDep, audit: AuditDep, accounts: AccountsDep) -> SettingsPage:
    return SettingsPage(recognition, keys, audit, accounts)


@dataclass
class EventsPage:
    """Events shows the log, the webhooks and what is kept of each event."""

    events: EventLog
    webhooks: Webhooks
    settings: Settings


def events_page(events: EventsDep, webhooks: WebhooksDep, settings: SettingsDep) -> EventsPage:
    return EventsPage(events, webhooks, settings)


SettingsPageDep = Annotated[SettingsPage, Depends(settings_page)]
EventsPageDep = Annotated[EventsPage, Depends(events_page)]
