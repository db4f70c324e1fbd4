"""The dashboard: server-rendered pages (Jinja2), a stylesheet and a few lines
of plain JavaScript for the live parts. No build step."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")


def mount(app: FastAPI) -> None:
    """Add the dashboard's pages, forms and static files to `app`."""
    from clocktower.web import actions, pages

    app.include_router(pages.router)
    app.include_router(actions.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


__all__ = ["mount"]
