"""Template tags for the Django-template pages that show storyboard pieces, and the money
filters every page uses: `money` ($1.20), `price` ($0.035) and `rate` ($0.10 per second)."""

from __future__ import annotations

from django import template

from studio import cards, live

register = template.Library()

register.simple_tag(cards.prompt_with_chips, name="prompt_with_chips")
register.filter("money", cards.money)
register.filter("price", cards.price)
register.filter("rate", cards.rate)


@register.filter
def estimate(job):
    """The job's estimated progress where its provider reports none (jobs.estimates), or
    None where its own figure is the one to show."""
    return live.take_estimate(job)
