"""Cuts (REST API). Being written; registered in studio.api.app."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["Cuts"])
