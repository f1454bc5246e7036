"""The admin web page at /admin: sign-in, people, enroll, try it, live, settings (no build step, no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.admin import api, pages, review

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "admin"


def mount_admin(app: FastAPI) -> None:
    app.include_router(pages.router)
    app.include_router(review.router)
    app.include_router(api.router)
    app.mount("/admin/static", StaticFiles(directory=STATIC_DIR), name="admin-static")
    app.include_router(pages.fallback)  # last: it answers every /admin address the others do not
