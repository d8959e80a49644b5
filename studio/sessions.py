"""Sessions in the database, as django.contrib.sessions.backends.db keeps them, with the
read every request makes compiled once per process (jobs.compiled): a session's read
was one of the two queries in front of every page (settings.SESSION_ENGINE)."""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.utils import timezone

from jobs.compiled import Compiled

_unexpired = Compiled(
    lambda key, now: Session.objects.filter(session_key=key, expire_date__gt=now)[:1]
)


class SessionStore(db.SessionStore):
    def _get_session_from_db(self) -> Session | None:
        # Django's own reads exactly this (SessionStore.get_model_class() is Session here);
        # a session not found, or expired, is a new one, as there.
        session = _unexpired.first(key=self.session_key, now=timezone.now())
        if session is None:
            self._session_key = None
        return session
