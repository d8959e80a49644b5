"""Writes on takes that are not generation: select, review, delete."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from jobs import services as jobs
from jobs.models import JobState
from studio.models import Take


def take_select(*, take: Take) -> Take:
    """Make a finished take the one its scene uses (one per scene, under the scene's takes lock)."""
    if take.job.state != JobState.SUCCEEDED:
        raise ValidationError("Only a finished take can be selected.")
    with transaction.atomic():
        Take.objects.filter(scene_id=take.scene_id, is_selected=True).exclude(pk=take.pk).update(
            is_selected=False
        )
        Take.objects.filter(pk=take.pk).update(is_selected=True)
    take.is_selected = True
    return take


def take_review(
    *,
    takes: Iterable[Take],
    state: str,
    reason: str = "",
    reviewer: AbstractBaseUser | None = None,
) -> int:
    """Approve or reject finished takes; a rejection needs a reason. Returns how many changed."""
    state = Take.Review(state)
    reason = reason.strip()
    if state == Take.Review.REJECTED and not reason:
        raise ValidationError("Say why the take is rejected, so whoever retries it knows.")
    ids = [t.pk for t in takes if t.job.state == JobState.SUCCEEDED]
    if not ids:
        return 0
    return Take.objects.filter(pk__in=ids).update(
        review_state=state,
        review_reason=reason if state == Take.Review.REJECTED else "",
        reviewed_by=reviewer,
        reviewed_at=timezone.now(),
    )


def take_delete(*, take: Take) -> None:
    """Remove a take from its scene; an unfinished job is cancelled first. The job itself stays,
    since what was paid must remain on record."""
    if not take.job.is_terminal:
        jobs.job_cancel(job=take.job)
    take.delete()
