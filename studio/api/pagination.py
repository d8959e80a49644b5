"""Cursor pagination: `?limit=&cursor=` in, `{items, next_cursor}` out.

A cursor is opaque to the caller (base64 of the last item's sort value and id), so a
page stays right while items are added before it, unlike an offset.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Generic, TypeVar

from django.db.models import Q, QuerySet
from ninja import Schema

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class BadCursor(ValueError):
    pass


def _encode(value, pk: int) -> str:
    raw = json.dumps([value, pk], default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[object, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return value, int(pk)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadCursor("That cursor is not one this API gave out.") from exc


def paginate(
    queryset: QuerySet,
    *,
    cursor: str | None,
    limit: int | None,
    field: str = "pk",
    descending: bool = True,
) -> tuple[list, str | None]:
    """One page of `queryset` ordered by `field` then pk, and the cursor of the next."""
    limit = max(1, min(limit or DEFAULT_LIMIT, MAX_LIMIT))
    sign = "-" if descending else ""
    ordered = queryset.order_by(f"{sign}{field}", f"{sign}pk")
    if cursor:
        try:
            value, pk = _decode(cursor)
        except BadCursor as exc:
            from django.core.exceptions import ValidationError

            raise ValidationError({"cursor": str(exc)}) from None
        after = "lt" if descending else "gt"
        if field == "pk":
            ordered = ordered.filter(**{f"pk__{after}": pk})
        else:
            ordered = ordered.filter(
                Q(**{f"{field}__{after}": value}) | Q(**{field: value, f"pk__{after}": pk})
            )
    rows = list(ordered[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = _encode(getattr(last, field) if field != "pk" else last.pk, last.pk)
    return rows, next_cursor
