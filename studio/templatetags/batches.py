"""The storyboard's generate-all progress: the episode's batch under way, or the summary of
the one that just finished (one query)."""

from django import template

from studio.batches import batch_shown
from studio.models import Episode, Membership
from studio.views.takes import batch_progress_context

register = template.Library()


@register.inclusion_tag("studio/storyboard/batch_progress.html")
def batch_progress(episode: Episode, membership: Membership) -> dict:
    return batch_progress_context(membership, episode, batch_shown(episode))
