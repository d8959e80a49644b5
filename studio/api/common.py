"""What every resource module of the REST API shares: the token, roles, the usual schemas."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, Schema

from studio import access
from studio.costs import dollars  # noqa: F401 - the API's money format, for its modules
from studio.models import ApiToken

ID_MAX = 2**63 - 1  # the largest id a database holds: a bigger one could never name a row


def token_of(request: HttpRequest) -> ApiToken:
    """The request's token, standing in for a membership in studio.access's helpers."""
    return request.auth


def require(request: HttpRequest, permission: str) -> ApiToken:
    """The token, or 403 unless its role may `permission` ("edit", "review", "manage")."""
    token = token_of(request)
    access.require(token, permission)
    return token


def created(response: HttpResponse, path: str) -> None:
    """Say where a new object lives (Location; an idempotent repeat says it again)."""
    response["Location"] = reverse("api:api-root") + path.lstrip("/")


class FieldProblem(Schema):
    field: str = Field(description='The input to fix ("" for the request as a whole).')
    message: str


class Problem(Schema):
    """An error as RFC 9457 problem details (application/problem+json)."""

    type: str = Field(examples=["https://castboard.dev/problems/refused"])
    title: str = Field(examples=["Request refused"])
    status: int = Field(examples=[422])
    detail: str = Field(description="What went wrong, in plain words; nothing was charged.")
    instance: str | None = None
    errors: list[FieldProblem] | None = Field(
        None, description="For a refused input: each field to fix and why."
    )


def problems(*codes: int) -> dict[int, type[Problem]]:
    """The error answers an operation declares, for the OpenAPI document."""
    return dict.fromkeys(codes, Problem)
