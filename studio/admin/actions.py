"""The retry and cancel actions that the take list and the job list share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from jobs import services as jobs
from jobs.models import Job
from studio.admin.access import may_generate
from studio.generation import take_retry
from studio.models import Take


def retry_and_report(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    takes: Iterable[Take],
    refused: Counter[str] | None = None,
) -> None:
    """Retry each take (a new take, same request, same account) and say what happened."""
    refused = Counter(refused or {})
    new_ids = []
    for take in takes:
        if not may_generate(request, take.job.workspace_id):
            refused["your role in its workspace cannot generate."] += 1
            continue
        try:
            new_ids.append(take_retry(take=take, created_by=request.user).pk)
        except ValidationError as error:
            refused[" ".join(error.messages)] += 1
    if new_ids:
        modeladmin.message_user(
            request,
            f"Retried {len(new_ids)}: new take(s) {', '.join(map(str, new_ids))}.",
            messages.SUCCESS,
        )
    for reason, count in refused.items():
        modeladmin.message_user(request, f"{count} not retried: {reason}", messages.WARNING)


def cancel_and_report(
    modeladmin: admin.ModelAdmin, request: HttpRequest, jobs_to_cancel: Iterable[Job], noun: str
) -> None:
    """Cancel each unfinished job (at the provider too) and say how many stopped."""
    cancelled, abandoned, refused = 0, 0, Counter()
    for job in jobs_to_cancel:
        if not may_generate(request, job.workspace_id):
            refused["your role in its workspace cannot cancel"] += 1
            continue
        outcome = jobs.job_cancel(job=job)
        if outcome == jobs.Cancelled.ABANDONED:
            abandoned += 1
        elif outcome:
            cancelled += 1
        else:
            refused["it had already finished"] += 1
    level = messages.SUCCESS if cancelled or abandoned else messages.WARNING
    modeladmin.message_user(request, f"{cancelled} {noun}(s) cancelled.", level)
    if abandoned:
        modeladmin.message_user(
            request,
            f"{abandoned} {noun}(s) abandoned: their provider cannot stop a video under way, "
            "so they may still be charged (their estimates stay counted).",
            messages.WARNING,
        )
    for reason, count in refused.items():
        modeladmin.message_user(request, f"{count} not cancelled: {reason}.", messages.WARNING)
