"""Template context shared by every page: the user's workspaces for the switcher."""

from __future__ import annotations

from django.http import HttpRequest

from studio.models import Workspace


def workspaces(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Lazy: only pages that show the switcher run the query.
    return {"my_workspaces": Workspace.objects.filter(memberships__user=user).order_by("name")}
