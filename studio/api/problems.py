"""Errors as RFC 9457 problem details (application/problem+json) for /api/v1/.

Every error the REST API answers has `type`, `title`, `status` and `detail`; a refused
input also has `errors`, a list of `{field, message}` naming what to fix. The gateways
answer in their own providers' shapes instead (studio.gateways).
"""

from __future__ import annotations

import json
from http import HTTPStatus

from django.http import HttpResponse

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://castboard.dev/problems/"


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    kind: str | None = None,
    errors: list[dict] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> HttpResponse:
    phrase = HTTPStatus(status).phrase
    body: dict = {
        "type": TYPE_BASE + (kind or phrase.lower().replace(" ", "-").replace("'", "")),
        "title": title or phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    response = HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def errors_of(error) -> list[dict]:
    """A Django ValidationError as [{field, message}] (field "" for the whole request)."""
    if hasattr(error, "error_dict"):
        return [
            {"field": "" if field == "__all__" else field, "message": message}
            for field, messages in error.message_dict.items()
            for message in messages
        ]
    return [{"field": "", "message": message} for message in error.messages]
