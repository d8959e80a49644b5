"""Hot read queries compiled to SQL once per process, then run again with new values.

Django builds and compiles every queryset anew. For the short queries a page runs a dozen
of, that is most of their cost: a membership read with its workspace took 0.57 ms to build
and compile and 0.08 ms to run and fetch (on PostgreSQL, this machine), and building and
compiling was about 40% of the web server's CPU under benchmarks/load.py. A `Compiled`
query builds its queryset once per shape from stand-in values, finds where each stand-in
went among the compiled SQL's parameters, and from then on runs that SQL with the real
values in their places, through Django's own iterables: models, select_related,
values_list and the backend's converters work as they do for any queryset.

What is put in place: whole numbers, strings and moments (datetimes), and lists of them (an
`__in`). Any other value (None, a boolean, a date), and any named in `fixed` (a slice's
length, which Django writes into the SQL itself), is part of the plan's shape, passed to
the builder as it is.
A plan is refused when a stand-in does not come out among the parameters as it went in (a
lookup that rewrites its value, `__icontains`): that query is then built and compiled as
usual, every time. An empty list, or one holding None, runs as usual too (Django answers
`__in []` without asking the database, and leaves None out of a list).

With settings.COMPILED_QUERIES_VERIFY (on in the test suite), every run also compiles the
query the usual way and raises if the SQL or its parameters differ from the plan's, and a
refused plan raises: the suite's ~3,000 tests check every plan against Django, on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.sql.query import Query

# A plan per shape (which values are lists, and how long): slices of a board differ in
# length only at its end, so a few shapes a query. Past this, queries run uncached.
MAX_PLANS = 64

# Stand-ins no value in a plan's own query takes, inside a positive 32-bit integer field's
# range, which Django checks a lookup's value against (out of it, the lookup is dropped).
_FIRST_NUMBER = 2_000_000_000
_STRING = "\x1fcompiled stand-in {}\x1f"
_MOMENT = datetime(1901, 2, 3, tzinfo=UTC)
_ADAPTED_MOMENT = "moment"  # a place whose value the backend adapts (SQLite: a string)


class PlanRefused(Exception):
    """A queryset whose parameters cannot be put in place of its stand-ins."""


@dataclass(frozen=True)
class _Plan:
    queryset: QuerySet
    sql: str
    params: tuple
    # value name -> for each of its items, the positions it takes and the type it has there
    # (on PostgreSQL, Django passes an integer field's value as psycopg's Int4, an int; on
    # SQLite, a moment as the backend's string of it).
    places: dict[str, tuple[tuple[tuple[int, type | str], ...], ...]]
    # The compiler's state after compiling, which the iterables read.
    select: Any
    klass_info: Any
    annotation_col_map: Any
    col_count: int
    has_extra_select: bool


class _BoundQuery(Query):
    """A clone of a plan's query carrying the plan and this run's parameters."""

    bound: tuple[_Plan, tuple]

    def get_compiler(self, using=None, connection=None, elide_empty=True):
        compiler = super().get_compiler(using, connection, elide_empty)
        compiler.__class__ = _bound_compiler(type(compiler))
        return compiler


_compiler_classes: dict[type, type] = {}


def _bound_compiler(base: type) -> type:
    """The backend's compiler class whose as_sql answers with the plan's SQL."""
    if (cls := _compiler_classes.get(base)) is None:

        def as_sql(self, with_limits=True, with_col_aliases=False):
            plan, params = self.query.bound
            self.select, self.klass_info = plan.select, plan.klass_info
            self.annotation_col_map = plan.annotation_col_map
            self.col_count, self.has_extra_select = plan.col_count, plan.has_extra_select
            return plan.sql, params

        cls = _compiler_classes[base] = type(f"Bound{base.__name__}", (base,), {"as_sql": as_sql})
    return cls


def _is_list(value: object) -> bool:
    return isinstance(value, list | tuple | set | frozenset)


def _substitutable(value: object) -> bool:
    return type(value) in (int, str, datetime)


class Compiled:
    """A read query made by `build(**values)`, compiled once per shape and process.

        _memberships = Compiled(
            lambda user_id, slug: Membership.objects.select_related("workspace").filter(
                user_id=user_id, workspace__slug=slug
            )[:2]
        )
        rows = _memberships(user_id=request.user.pk, slug=slug)  # a list
        membership = _memberships.first(user_id=request.user.pk, slug=slug)  # or None

    `build` must make the same query for the same shape whatever the values (no branching
    on them), and read nothing but its arguments: the plan is made once and kept.
    """

    def __init__(
        self,
        build: Callable[..., QuerySet],
        *,
        fixed: tuple[str, ...] = (),
        using: str = DEFAULT_DB_ALIAS,
    ):
        self.build = build
        self.fixed = frozenset(fixed)
        self.using = using
        self._plans: dict[tuple, _Plan | None] = {}  # None: refused, run as usual

    def __call__(self, **values: Any) -> list:
        lists = {
            name: value
            for name, value in values.items()
            if self._placed(name, value) and _is_list(value)
        }
        for name, value in lists.items():
            items = list(dict.fromkeys(value))  # as Django's `In` does
            if not items or not all(_substitutable(item) for item in items):
                return list(self.build(**values))
            values[name] = items
        connection = connections[self.using]
        shape = (
            connection.vendor,
            *(
                (name, len(value), frozenset(map(type, value)))
                if self._placed(name, value) and _is_list(value)
                else (name, type(value))
                if self._placed(name, value)
                else (name, value)
                for name, value in sorted(values.items())
            ),
        )
        try:
            plan = self._plans[shape]
        except KeyError:
            if len(self._plans) >= MAX_PLANS:  # a shape past the bound runs as usual
                return list(self.build(**values))
            plan = self._plans[shape] = self._plan(values)
        if plan is None:
            return list(self.build(**values))
        params = list(plan.params)
        for name, places in plan.places.items():
            value = values[name]
            for item, positions in zip(value if _is_list(value) else (value,), places, strict=True):
                for position, kind in positions:
                    params[position] = (
                        item
                        if kind is type(item)
                        else connection.ops.adapt_datetimefield_value(item)
                        if kind == _ADAPTED_MOMENT
                        else kind(item)
                    )
        params = tuple(params)
        if settings.COMPILED_QUERIES_VERIFY:
            self._verify(plan, values, params)
        queryset = plan.queryset._chain()
        queryset.query.__class__ = _BoundQuery
        queryset.query.bound = (plan, params)
        return list(queryset)

    def first(self, **values: Any) -> Any | None:
        """The query's first row, or None when it has none (slice the queryset to [:1] in
        `build`, so that no more is read)."""
        rows = self(**values)
        return rows[0] if rows else None

    def _placed(self, name: str, value: object) -> bool:
        """Whether the value is put in place of a stand-in (else it is part of the shape)."""
        return name not in self.fixed and (_is_list(value) or _substitutable(value))

    def _plan(self, values: dict[str, Any]) -> _Plan | None:
        numbers = itertools.count(_FIRST_NUMBER)
        strings = itertools.count()
        moments = itertools.count()

        def stand_in(value: object) -> object:
            if type(value) is int:
                return next(numbers)
            if type(value) is str:
                return _STRING.format(next(strings))
            if type(value) is datetime:
                return _MOMENT + timedelta(seconds=next(moments))
            return value

        stand_ins = {
            name: (
                value
                if not self._placed(name, value)
                else [stand_in(item) for item in value]
                if _is_list(value)
                else stand_in(value)
            )
            for name, value in values.items()
        }
        queryset = self.build(**stand_ins)
        compiler = queryset.query.get_compiler(using=self.using)
        sql, params = compiler.as_sql()
        ops = connections[self.using].ops

        def place(param: object, item: object) -> type | str | None:
            if isinstance(param, type(item)) and param == item:
                return type(param)
            if type(item) is datetime and param == ops.adapt_datetimefield_value(item):
                return _ADAPTED_MOMENT
            return None

        places = {}
        for name, value in values.items():
            if not self._placed(name, value):
                continue
            items = stand_ins[name] if _is_list(value) else [stand_ins[name]]
            found = tuple(
                tuple(
                    (i, kind)
                    for i, param in enumerate(params)
                    if (kind := place(param, item)) is not None
                )
                for item in items
            )
            if not all(found):
                # Django rewrote a value (or dropped it): run as usual.
                if settings.COMPILED_QUERIES_VERIFY:
                    raise PlanRefused(f"{name!r} is not among the parameters of\n{sql}\n{params}")
                return None
            places[name] = found
        return _Plan(
            queryset=queryset,
            sql=sql,
            params=tuple(params),
            places=places,
            select=compiler.select,
            klass_info=compiler.klass_info,
            annotation_col_map=compiler.annotation_col_map,
            col_count=compiler.col_count,
            has_extra_select=compiler.has_extra_select,
        )

    def _verify(self, plan: _Plan, values: dict[str, Any], params: tuple) -> None:
        expected = self.build(**values).query.get_compiler(using=self.using).as_sql()
        if (plan.sql, params) != (expected[0], tuple(expected[1])):
            raise AssertionError(
                f"A compiled query differs from Django's:\n{plan.sql}\n{params}\n"
                f"against\n{expected[0]}\n{tuple(expected[1])}"
            )
