"""Template helpers for the storyboard: prompts with character chips, money."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from characters.mentions import MENTION_RE
from studio.models import Scene

register = template.Library()


def _chip(slug: str, character: object, text: str) -> str:
    images = getattr(character, "image_list", None) or []
    picture = ""
    if images:
        src = reverse("asset_file", args=[slug, character.pk, images[0].pk, "thumbnail"])
        picture = format_html('<img src="{}" alt="" loading="lazy">', src)
    return format_html(
        '<a class="chip mention" href="{}" title="{}">{}{}</a>',
        reverse("character_detail", args=[slug, character.pk]),
        character.name,
        picture,
        text,
    )


@register.simple_tag
def prompt_with_chips(scene: Scene, slug: str) -> SafeString:
    """The prompt, escaped, with each resolved @handle shown as a chip with its thumbnail."""
    mentioned = getattr(scene, "mention_list", None)
    if mentioned is None:  # not loaded by the storyboard; an empty list is an answer, no query
        mentioned = scene.mentions.all()
    by_handle = {c.handle: c for c in mentioned}
    parts, last = [], 0
    for match in MENTION_RE.finditer(scene.prompt):
        character = by_handle.get(match.group(1).lower())
        if character is None:
            continue
        parts.append(escape(scene.prompt[last : match.start()]))
        parts.append(_chip(slug, character, match.group(0)))
        last = match.end()
    parts.append(escape(scene.prompt[last:]))
    return mark_safe("".join(parts))  # noqa: S308 - every piece is escaped or format_html


@register.filter
def money(value: Decimal | None) -> str:
    """$1.20; an empty string for no value."""
    if value is None:
        return ""
    return f"${value:,.2f}"
