"""Template filters for showing a take's drift score on pages that show takes."""

from __future__ import annotations

from django import template

from studio.models import Take, TakeScore

register = template.Library()


@register.filter
def score_of(take: Take) -> TakeScore | None:
    """The take's score, or None while it has none: `take.score` alone raises there, which a
    template turns into its invalid-variable marker rather than a false value."""
    try:
        return take.score
    except TakeScore.DoesNotExist:
        return None
