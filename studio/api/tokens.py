"""API tokens: made by owners, shown once, stored as a digest, revocable.

A token is `cb_<8 characters>_<40 characters>`. The first part (its prefix) is stored as
it is so the studio can name the token; the whole token is stored only as its SHA-256
digest. A token carries 240 random bits, so a fast digest is enough: nobody can guess
their way back from it, and a lookup stays one indexed query.

A token acts for the owner who made it and never beyond that person's current role in
the workspace: if they become an editor, an owner token acts as an editor; if they leave,
the token stops working.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone

from studio.models import ApiToken, Membership, Role, Series, Workspace

PREFIX = "cb_"
RANK = {Role.VIEWER: 0, Role.REVIEWER: 1, Role.EDITOR: 2, Role.OWNER: 3}
# last_used_at is written at most this often per token (the call log has every call).
LAST_USED_EVERY = timedelta(seconds=30)
_CACHE_ATTRIBUTE = "_castboard_api_token"


def digest_of(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_create(
    *,
    workspace: Workspace,
    name: str,
    role: str,
    created_by: AbstractBaseUser,
    series: Series | None = None,
) -> tuple[ApiToken, str]:
    """A new token and its plain text, which is never stored nor shown again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, such as the script that uses it."})
    if role not in RANK:
        raise ValidationError({"role": "Choose a role: owner, editor, reviewer or viewer."})
    if series is not None and series.workspace_id != workspace.pk:
        raise ValidationError({"series": "That series is not in this workspace."})
    membership = Membership.objects.filter(workspace=workspace, user=created_by).first()
    if membership is None or membership.role != Role.OWNER:
        raise ValidationError("Only an owner of the workspace can make API tokens.")
    public = secrets.token_hex(4)
    raw = f"{PREFIX}{public}_{secrets.token_urlsafe(30)}"
    token = ApiToken.objects.create(
        workspace=workspace,
        name=name,
        role=role,
        series=series,
        prefix=f"{PREFIX}{public}",
        digest=digest_of(raw),
        created_by=created_by,
    )
    return token, raw


def token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke at once; a revoked token answers 401 from the next request on."""
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        token.refresh_from_db(fields=["revoked_at"])
    return token


def bearer_of(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def authenticate(request: HttpRequest) -> ApiToken | None:
    """The request's live token with its effective role, or None. Cached on the request:
    the middleware and the API's own auth ask the same question once."""
    if hasattr(request, _CACHE_ATTRIBUTE):
        return getattr(request, _CACHE_ATTRIBUTE)
    token = _lookup(bearer_of(request))
    setattr(request, _CACHE_ATTRIBUTE, token)
    return token


def _lookup(raw: str) -> ApiToken | None:
    if not raw.startswith(PREFIX) or len(raw) > 200:
        return None
    digest = digest_of(raw)
    token = (
        ApiToken.objects.select_related("workspace", "created_by", "series")
        .filter(digest=digest, revoked_at__isnull=True)
        .first()
    )
    if token is None or not secrets.compare_digest(token.digest, digest):
        return None
    owner_role = (
        Membership.objects.filter(workspace_id=token.workspace_id, user_id=token.created_by_id)
        .values_list("role", flat=True)
        .first()
    )
    if owner_role is None or not token.created_by.is_active:
        return None
    if RANK[Role(owner_role)] < RANK[Role(token.role)]:
        token.role = owner_role  # in memory only: the token's own role comes back with theirs
    _touch(token)
    return token


def _touch(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def tokens_of(*, workspace: Workspace):
    return (
        ApiToken.objects.filter(workspace=workspace)
        .select_related("series", "created_by")
        .order_by("revoked_at", "-created_at")
    )
