"""Template context shared by every page: the user's workspaces for the switcher."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from jobs.compiled import Compiled
from studio.models import Workspace

_workspaces_of = Compiled(
    lambda user_id: Workspace.objects.filter(memberships__user_id=user_id).order_by("name")
)


def workspaces(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Lazy: only pages that show the switcher run the query.
    return {"my_workspaces": SimpleLazyObject(lambda: _workspaces_of(user_id=user.pk))}
