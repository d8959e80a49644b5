"""Periodic housekeeping for the studio."""

from __future__ import annotations

from celery import shared_task
from django.core.management import call_command


@shared_task
def clear_expired_sessions() -> None:
    """Delete expired login sessions (run by beat every six hours)."""
    call_command("clearsessions")
