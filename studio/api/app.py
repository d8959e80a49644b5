"""The REST API under /api/v1/, on django-ninja: typed (pydantic) inputs and outputs, an
OpenAPI 3.1 schema at /api/v1/openapi.json and interactive docs at /api/v1/docs, served
from the package's own static files (no CDN).

A token belongs to one workspace, so paths name no workspace: every object is looked up
through studio.access with the token in place of a membership, exactly as the web views
do (another workspace's object is a 404; a role that may not change it, a 403).
Resources live in one module each (workspaces, characters, production, takes, cuts,
money) and add their routers below.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from studio.api import tokens
from studio.api.problems import errors_of, problem
from studio.models import ApiToken

log = logging.getLogger(__name__)


class TokenAuth(HttpBearer):
    """`Authorization: Bearer cb_…`, a token an owner made on the workspace's API page."""

    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return tokens.authenticate(request)


api = NinjaAPI(
    title="Castboard API",
    version="1.0.0",
    description=(
        "Drive a Castboard workspace from scripts: the character library, series, episodes "
        "and scenes, takes (estimate, generate, cancel, select, review), cuts, costs and "
        "budgets. Authenticate with `Authorization: Bearer cb_…` (an owner makes tokens on "
        "the workspace's API page). Send `Idempotency-Key` with any POST that costs money: "
        "a repeat returns the first answer and never pays twice. Errors are RFC 9457 "
        "problem details; lists are cursor-paginated (`cursor`, `limit`, `next_cursor`)."
    ),
    auth=TokenAuth(),
    urls_namespace="api",
    docs_url="/docs",
)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problem(404, "No such object in this token's workspace.", instance=request.path)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    token = getattr(request, "auth", None)
    role = (
        f"{'an' if token.role[:1] in 'aeiou' else 'a'} {token.role} token"
        if isinstance(token, ApiToken)
        else "this token"
    )
    detail = str(exc) or f"{role.capitalize()} may not do this."
    return problem(403, detail, instance=request.path)


@api.exception_handler(DjangoValidationError)
def _refused(request, exc):
    errors = errors_of(exc)
    detail = " ".join(e["message"] for e in errors) or "The request was refused."
    return problem(422, detail, title="Request refused", kind="refused", errors=errors)


def _field_of(loc: tuple | list) -> str:
    """The field a ninja error names, as the caller wrote it: ninja puts the endpoint's own
    name for a body schema after "body" ("body.payload.name"), which callers never see."""
    parts = list(loc)
    if parts[:1] == ["body"] and len(parts) > 2:
        parts = parts[2:]
    return ".".join(
        str(part) for part in parts if part not in ("body", "query", "path", "form", "file")
    )


@api.exception_handler(NinjaValidationError)
def _invalid(request, exc):
    errors = [
        {"field": _field_of(e.get("loc", ())), "message": e.get("msg", "Invalid value.")}
        for e in exc.errors
    ]
    detail = "; ".join(f"{e['field'] or 'request'}: {e['message']}" for e in errors)
    return problem(
        422, detail or "Invalid input.", title="Invalid input", kind="invalid", errors=errors
    )


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return problem(
        401,
        "Send a Castboard API token as 'Authorization: Bearer cb_…'.",
        headers={"WWW-Authenticate": 'Bearer realm="castboard"'},
    )


@api.exception_handler(HttpError)
def _http_error(request, exc):
    return problem(exc.status_code, str(exc.message))


@api.exception_handler(Exception)
def _unexpected(request, exc):
    log.exception("API error on %s %s", request.method, request.path)
    return problem(500, "Something went wrong on our side; nothing was charged twice.")


def _register() -> None:
    from studio.api import characters, cuts, money, production, takes, workspaces

    for module in (workspaces, characters, production, takes, cuts, money):
        api.add_router("", module.router)


_register()
