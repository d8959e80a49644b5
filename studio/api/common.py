"""What every resource module of the REST API shares: the token, roles, the usual schemas."""

from __future__ import annotations

from django.http import HttpRequest

from studio import access
from studio.models import ApiToken


def token_of(request: HttpRequest) -> ApiToken:
    """The request's token, standing in for a membership in studio.access's helpers."""
    return request.auth


def require(request: HttpRequest, permission: str) -> ApiToken:
    """The token, or 403 unless its role may `permission` ("edit", "review", "manage")."""
    token = token_of(request)
    access.require(token, permission)
    return token
