"""Calling the API as a script would: a bearer token on every request."""

from __future__ import annotations

import json as jsonlib

from django.test import Client

from studio.api.tokens import token_create
from studio.models import Membership, Role


def make_token(workspace, *, role: str = Role.EDITOR, series=None, name: str = "script") -> str:
    """A token of `role` in `workspace`, made by one of its owners (made if none)."""
    owner = (
        Membership.objects.filter(workspace=workspace, role=Role.OWNER)
        .select_related("user")
        .first()
    )
    if owner is None:
        from tests.factories import MembershipFactory

        owner = MembershipFactory(workspace=workspace, role=Role.OWNER)
    _, raw = token_create(
        workspace=workspace, name=name, role=role, created_by=owner.user, series=series
    )
    return raw


class Api:
    """Django's test client with `Authorization: Bearer <token>` on every call."""

    def __init__(self, token: str | None, client: Client | None = None) -> None:
        self.token = token
        self.client = client or Client()

    def _headers(self, headers: dict | None) -> dict:
        merged = dict(headers or {})
        if self.token:
            merged.setdefault("Authorization", f"Bearer {self.token}")
        return merged

    def get(self, path: str, data=None, headers: dict | None = None):
        return self.client.get(path, data, headers=self._headers(headers))

    def delete(self, path: str, headers: dict | None = None):
        return self.client.delete(path, headers=self._headers(headers))

    def post(self, path: str, json=None, *, data=None, headers: dict | None = None):
        """JSON by default; `data` sends a multipart form (files as open file objects)."""
        if data is not None:
            return self.client.post(path, data, headers=self._headers(headers))
        return self.client.post(
            path,
            jsonlib.dumps(json if json is not None else {}),
            content_type="application/json",
            headers=self._headers(headers),
        )

    def patch(self, path: str, json=None, headers: dict | None = None):
        return self.client.patch(
            path,
            jsonlib.dumps(json or {}),
            content_type="application/json",
            headers=self._headers(headers),
        )

    def put(self, path: str, json=None, headers: dict | None = None):
        return self.client.put(
            path,
            jsonlib.dumps(json or {}),
            content_type="application/json",
            headers=self._headers(headers),
        )


def walk(api: Api, path: str, limit: int, **filters) -> list[dict]:
    """Every item of a cursor-paginated list, page by page, as a script would read it."""
    items, cursor, pages = [], None, 0
    while True:
        query = {"limit": limit, **filters, **({"cursor": cursor} if cursor else {})}
        page = api.get(path, query)
        assert page.status_code == 200, page.content
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        pages += 1
        if cursor is None:
            return items
        assert pages < 50


def refused_fields(response) -> list[str]:
    """The fields a 422 problem names (sorted, once each)."""
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    return sorted({error["field"] for error in response.json()["errors"]})
