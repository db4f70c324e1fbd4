"""The REST API, health and metrics endpoints, and the server that runs them
beside the scheduler loop (with the dashboard) on one port."""

from __future__ import annotations

from clocktower.api.app import create_app
from clocktower.api.auth import check_bind_safety, is_loopback
from clocktower.api.server import serve_http

__all__ = ["check_bind_safety", "create_app", "is_loopback", "serve_http"]
