"""The Review page: suggested additions to people's support sets, unknown visitors to name, and recent "not this
person" corrections, within the page's collection; its buttons are forms posted here (a viewer sees none, and is
refused anyway), and admin.js drives the suggestions queue from the keyboard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse

from app.admin.auth import Admin, AdminRoute, AdminWrite, actor_of
from app.admin.render import render
from app.admin.scope import current_collection
from app.api.deps import EventsDep, ReviewDep, SettingsDep, SuggestionsDep, VisitorsDep
from app.core.config import Settings
from app.live.events import EventLog, event_dict
from app.live.review import EventReview
from app.live.suggestions import Suggestions
from app.live.visitors import VisitorGroups
from models.errors import FaceshotError

router = APIRouter(prefix="/admin", route_class=AdminRoute, include_in_schema=False)

RECENT_NAMED = 500  # the named events searched for "not this person" marks, newest first

VisitorNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


@dataclass
class ReviewPage:
    """Review shows the suggestions, the unknown visitors and the corrections, and acts on them."""

    events: EventLog
    review: EventReview
    suggestions: Suggestions
    visitors: VisitorGroups
    settings: Settings


def review_page(events: EventsDep, review: ReviewDep, suggestions: SuggestionsDep, visitors: VisitorsDep,
                settings: SettingsDep) -> ReviewPage:
    return ReviewPage(events, review, suggestions, visitors, settings)


ReviewPageDep = Annotated[ReviewPage, Depends(review_page)]


def _review_page(request: Request, page: ReviewPage, status_code: int = 200, **extra):
    collection = current_collection(request, request.state.admin)
    named, _ = page.events.list(collection=collection, unknown=False, limit=RECENT_NAMED)
    corrected = [event_dict(e) for e in named if e.corrected_at is not None][:50]
    return render(request, "review.html", status_code, section="review", collection=collection,
                  suggestions=page.suggestions.list(collection, 50),
                  visitors=page.visitors.list(collection), visitors_enabled=page.visitors.enabled,
                  corrections=page.events.corrections(collection), corrected=corrected,
                  keeps_faces=page.settings.event_faces, keeps_unknown=page.settings.event_unknown_faces, **extra)


def _act(request: Request, page: ReviewPage, done: str, work):
    """Do ``work`` (given the collection and the actor), then back to the page; a refusal is the page with why."""
    session = request.state.admin
    collection = current_collection(request, session, change=True)
    try:
        work(collection, actor_of(request, session))
    except FaceshotError as exc:
        if exc.status in (401, 403, 404):  # not theirs to change, or gone: the usual refusal
            raise
        return _review_page(request, page, exc.status if exc.status < 500 else 422, error=exc.message)
    return RedirectResponse(f"/admin/review?done={done}", status_code=303)


@router.get("/review")
def review(request: Request, page: ReviewPageDep, _s: Admin):
    return _review_page(request, page)


@router.post("/review/suggestions/{event_id}/accept")
def accept_suggestion(request: Request, page: ReviewPageDep, _s: AdminWrite, event_id: str,
                      person_id: Annotated[str, Form(max_length=64)] = ""):
    """The event's face added to the person it named (POST /events/{id}/enroll: the usual enrollment checks)."""
    return _act(request, page, "suggestion_accepted", lambda collection, actor: page.review.enroll(
        event_id, person_id=person_id, collection=collection, actor=actor))


@router.post("/review/suggestions/{event_id}/dismiss")
def dismiss_suggestion(request: Request, page: ReviewPageDep, _s: AdminWrite, event_id: str):
    return _act(request, page, "suggestion_dismissed", lambda collection, actor: page.suggestions.dismiss(
        event_id, actor, collection))


@router.post("/review/events/{event_id}/not-this-person")
def not_this_person(request: Request, page: ReviewPageDep, _s: AdminWrite, event_id: str,
                    undo: Annotated[bool, Form()] = False):
    """Say the event was not the person it named (``undo``: take that back)."""
    return _act(request, page, "correction_undone" if undo else "not_this_person",
                lambda collection, actor: page.events.correct(event_id, actor, collection, undo=undo))


@router.post("/review/visitors/{number}/name")
def name_visitor(request: Request, page: ReviewPageDep, _s: AdminWrite, number: VisitorNumber,
                 name: Annotated[str, Form(max_length=200)] = ""):
    """One new person enrolled from the group's best faces (POST /visitors/{id}/name)."""
    return _act(request, page, "visitor_named", lambda collection, actor: page.visitors.name(
        number, name.strip(), collection, actor))


@router.post("/review/visitors/{number}/dismiss")
def dismiss_visitor(request: Request, page: ReviewPageDep, _s: AdminWrite, number: VisitorNumber):
    return _act(request, page, "visitor_dismissed", lambda collection, actor: page.visitors.dismiss(
        number, collection, actor))


@router.post("/review/visitors/{number}/delete")
def delete_visitor(request: Request, page: ReviewPageDep, _s: AdminWrite, number: VisitorNumber):
    """The group and the faces kept of it go (DELETE /visitors/{id}); the events stay as unknown passings."""
    return _act(request, page, "visitor_deleted", lambda collection, actor: page.visitors.delete(
        number, collection, actor))
