"""Which staff may do what in the admin: a workspace role, not Django's model permissions.

A superuser sees every workspace, any other staff user only the workspaces where their
role may review, and retries or cancels only where it may generate. A member who may review
but is not staff (an owner, typically) reviews in the studio: the admin sends them there.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import Resolver404, resolve, reverse

from studio.models import Membership, Role, Take

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


def studio_review_url(request: HttpRequest) -> str | None:
    """Where a signed-in member who may review, but is not staff, reviews: the studio's board.

    The take the admin was asked for (its change page, from the login page's `next`) opens on
    its episode's board when it is in one of their workspaces; anything else opens the review
    index of their first such workspace. None for staff, visitors and members who may not
    review: the admin answers them as it always has.
    """
    user = request.user
    if not user.is_authenticated or not user.is_active or user.is_staff:
        return None
    workspaces = dict(
        Membership.objects.filter(user=user, role__in=REVIEW_ROLES)
        .order_by("created_at", "pk")
        .values_list("workspace_id", "workspace__slug")
    )
    if not workspaces:
        return None
    take_id = _asked_for_take(request.GET.get(REDIRECT_FIELD_NAME, ""))
    take = (
        Take.objects.filter(pk=take_id, scene__episode__series__workspace__in=workspaces)
        .values("scene__episode_id", "scene__episode__series__workspace_id")
        .first()
        if take_id
        else None
    )
    if take is None:
        return reverse("review_index", args=[next(iter(workspaces.values()))])
    slug = workspaces[take["scene__episode__series__workspace_id"]]
    board = reverse("review_episode", args=[slug, take["scene__episode_id"]])
    return f"{board}?{urlencode({'show': 'all', 'take': take_id})}"


def _asked_for_take(next_url: str) -> int | None:
    """The take whose admin page `next` names, if it names one (it is never followed)."""
    try:
        match = resolve(urlsplit(next_url).path)
    except Resolver404:
        return None
    if match.view_name != "admin:studio_take_change":
        return None
    object_id = str(match.kwargs.get("object_id", ""))
    return int(object_id) if object_id.isdigit() else None
