"""Which staff may do what in the admin: a workspace role, not Django's model permissions.

A superuser sees every workspace, any other staff user only the workspaces where their
role may review, and retries or cancels only where it may generate.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest

from studio.models import Membership, Role

# Read off the role rules on Membership, so the admin and the studio always agree.
REVIEW_ROLES = frozenset(role for role in Role if Membership(role=role).can_review)
GENERATE_ROLES = frozenset(role for role in Role if Membership(role=role).can_edit)


def _roles_by_workspace(request: HttpRequest) -> dict[int, str]:
    """The user's role per workspace id, read once per request (permission checks repeat)."""
    roles = getattr(request, "_castboard_roles", None)
    if roles is None:
        roles = dict(
            Membership.objects.filter(user=request.user).values_list("workspace_id", "role")
        )
        request._castboard_roles = roles
    return roles


def _holds(request: HttpRequest, roles: frozenset[str], workspace_id: int | None) -> bool:
    user = request.user
    if not (user.is_active and user.is_staff):
        return False  # the admin's own login page asks too, for an anonymous user
    if user.is_superuser:
        return True
    held = _roles_by_workspace(request)
    if workspace_id is None:
        return any(role in roles for role in held.values())
    return held.get(workspace_id) in roles


def may_review(request: HttpRequest, workspace_id: int | None = None) -> bool:
    """Whether the staff user may use the review list at all, or for this workspace."""
    return _holds(request, REVIEW_ROLES, workspace_id)


def may_generate(request: HttpRequest, workspace_id: int | None = None) -> bool:
    """Whether the staff user may retry or cancel generation (anywhere, or in this workspace).

    Retrying spends the workspace's money, so it needs the role that may generate in the
    studio (owner, editor); a reviewer approves and rejects only.
    """
    return _holds(request, GENERATE_ROLES, workspace_id)


def scope_to_reviewable(request: HttpRequest, queryset: QuerySet, workspace_path: str) -> QuerySet:
    """Everything for a superuser; for other staff only rows of workspaces they may review."""
    if request.user.is_superuser:
        return queryset
    reviewable = [ws for ws, role in _roles_by_workspace(request).items() if role in REVIEW_ROLES]
    return queryset.filter(**{f"{workspace_path}__in": reviewable})
