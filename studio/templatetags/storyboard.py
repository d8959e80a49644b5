"""Template tags for the Django-template pages that show storyboard pieces."""

from __future__ import annotations

from django import template

from studio import cards

register = template.Library()

register.simple_tag(cards.prompt_with_chips, name="prompt_with_chips")
register.filter("money", cards.money)
