"""The two reads in front of every page, compiled once per process (jobs.compiled): the
session, and the user signed in to it.

- SessionStore (settings.SESSION_ENGINE): sessions in the database, as
  django.contrib.sessions.backends.db keeps them.
- Backend (settings.AUTHENTICATION_BACKENDS): Django's ModelBackend (username and
  password). Building and compiling the user's query was about half of what reading it
  cost under benchmarks/load.py. Django's get_user still does the rest as ever: the
  session's backend must be in AUTHENTICATION_BACKENDS, and the session's password hash
  must match (a changed password signs out every other session).
- AuthenticationMiddleware: Django's, but a session signed in through Django's own
  ModelBackend (before this one) is moved to Backend when its user is first read, so the
  change signed nobody out.
"""

from __future__ import annotations

from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model, middleware
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from jobs.compiled import Compiled

BACKEND = "studio.sessions.Backend"
_DJANGOS_BACKEND = "django.contrib.auth.backends.ModelBackend"

_unexpired = Compiled(
    lambda key, now: Session.objects.filter(session_key=key, expire_date__gt=now)[:1]
)
_user = Compiled(lambda pk: get_user_model()._default_manager.filter(pk=pk)[:1])


class SessionStore(db.SessionStore):
    def _get_session_from_db(self) -> Session | None:
        # Django's own reads exactly this (SessionStore.get_model_class() is Session here);
        # a session not found, or expired, is a new one, as there.
        session = _unexpired.first(key=self.session_key, now=timezone.now())
        if session is None:
            self._session_key = None
        return session


class Backend(ModelBackend):
    """ModelBackend, its read of a session's user compiled (as ModelBackend.get_user:
    a user who is gone or inactive is no one)."""

    def get_user(self, user_id: object):  # type: ignore[override]
        user = _user.first(pk=user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


class AuthenticationMiddleware(middleware.AuthenticationMiddleware):
    """Django's, with sessions of Django's own ModelBackend moved to Backend."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _user_of(request))


def _user_of(request: HttpRequest):
    """The request's user, as Django's middleware reads it, its session moved first."""
    session = request.session
    if session.get(BACKEND_SESSION_KEY) == _DJANGOS_BACKEND:
        session[BACKEND_SESSION_KEY] = BACKEND
    return middleware.get_user(request)
