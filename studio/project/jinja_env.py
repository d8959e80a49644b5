"""The Jinja2 environment for the storyboard's card fragments (templates/jinja2/).

Undefined names raise, as FAIL_INVALID_TEMPLATE_VARS makes Django's templates do in
tests. Django's backend adds `request`, `csrf_input` and `csrf_token` to every context.
"""

from __future__ import annotations

from typing import Any

from django.templatetags.static import static
from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from studio import card_cache, cards, live, storyboard


def plural(count: int, suffix: str = "s") -> str:
    """ "s" unless the count is one (Django's `pluralize`)."""
    return "" if count == 1 else suffix


def once(value: object) -> Markup:
    """A lazy safe string (such as `csrf_input`) evaluated now, so later uses reuse it.

    Django's `csrf_input` masks the token anew on every use: 1,000 forms on a storyboard
    spent a third of its render time doing so.
    """
    return Markup(str(value))  # noqa: S704 - only ever given values that are already safe


def environment(**options: Any) -> Environment:
    options["undefined"] = StrictUndefined
    env = Environment(**options)  # noqa: S701 - Django's backend turns autoescape on
    env.globals.update(
        url=cards.url_for,
        once=once,
        static=static,
        card_kit=cards.CardKit,
        card=card_cache.card,
        storyboard_card_template=storyboard.card_template,
        take_estimate=live.take_estimate,
        rejection_reason=live.rejection_reason,
    )
    env.filters.update(money=cards.money, plural=plural)
    return env
