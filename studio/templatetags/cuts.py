"""The episode page's cut panel: the current cut, how far it is, and whether it is stale."""

from django import template

from studio.models import Episode, Membership
from studio.views.cuts import cut_panel_context

register = template.Library()


@register.inclusion_tag("studio/cuts/panel.html")
def cut_panel(episode: Episode, membership: Membership) -> dict:
    return cut_panel_context(membership, episode)
