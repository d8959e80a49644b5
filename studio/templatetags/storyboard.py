"""Template tags for the Django-template pages that show storyboard pieces."""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from studio import cards

register = template.Library()

register.simple_tag(cards.prompt_with_chips, name="prompt_with_chips")
register.filter("money", cards.money)


@register.simple_tag(takes_context=True)
def storyboard_list(context: template.Context) -> SafeString:
    """The episode's cards (a Jinja2 template, which Django's `include` cannot load)."""
    names = ("membership", "episode", "scenes")
    rendered = render_to_string(
        "studio/storyboard/scene_list.html",
        {name: context[name] for name in names},
        request=context["request"],
    )
    return mark_safe(rendered)  # noqa: S308 - Jinja2 escaped it (autoescape is on)
