"""Writes of the engine: provider accounts, creating and cancelling jobs, receiving webhooks.

A job's owner is an opaque workspace row (settings.JOBS_WORKSPACE_MODEL): the engine
stores it and scopes by it, and knows nothing else about it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum

from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from jobs import dispatch, ledger, live, pipeline
from jobs.dispatch import Step
from jobs.models import (
    Budget,
    ErrorCode,
    Job,
    JobKind,
    JobState,
    ProviderAccount,
    WebhookEvent,
)
from jobs.providers import provider_for
from jobs.providers.base import ProviderError, ProviderJob, WebhookRejected

log = logging.getLogger(__name__)


def account_save(
    *, account: ProviderAccount, api_key: str = "", webhook_secret: str = ""
) -> ProviderAccount:
    """Save an account; a key or secret is replaced only when a new one is given."""
    if api_key:
        account.set_api_key(api_key)
    if webhook_secret:
        account.set_webhook_secret(webhook_secret)
    account.full_clean()
    account.save()
    return account


def job_create(
    *,
    workspace: Model,
    account: ProviderAccount,
    request: dict,
    kind: str = JobKind.GENERATE,
    cost_estimate: Decimal = Decimal("0"),
    routing: dict | None = None,
    budget_scope: str = "",
    hold: str = "",
) -> Job:
    """A PENDING job with its estimate reserved, submitted when the transaction commits.

    Under a `hold`, the reservation moves out of it (ledger.reserve). Raises
    ledger.OverBudget, creating nothing, when the estimate does not fit a budget.
    """
    with transaction.atomic():
        job = Job.objects.create(
            workspace=workspace,
            provider_account=account,
            kind=kind,
            request=request,
            cost_estimate=cost_estimate,
            routing=routing or {},
            budget_scope=budget_scope,
        )
        ledger.reserve(job=job, amount=cost_estimate, hold=hold)
        live.announce_changed(job.pk, workspace_id=job.workspace_id)  # a new card state
    # If the broker is down, the job waits as PENDING and the sweep sends it later; the
    # caller can tell from job.dispatch_deferred (and must not report an error).
    dispatch.send(Step.SUBMIT, job)
    return job


def budget_set(
    *, workspace: Model, scope: str, cap: Decimal, period: str, label: str = ""
) -> Budget:
    """Create or change the budget of a scope ("workspace" or e.g. "series:12").

    A cap below what is already committed stops new takes; nothing under way is touched.
    """
    budget, _ = Budget.objects.update_or_create(
        workspace=workspace,
        scope=scope,
        defaults={"cap": cap, "period": period, "label": label},
    )
    return budget


def budget_remove(*, budget: Budget) -> None:
    """Remove a cap: its takes then count only against the other budgets that apply."""
    budget.delete()


class Cancelled(StrEnum):
    """What cancelling did. Empty (falsy): nothing, the job had already finished."""

    NOTHING = ""
    STOPPED = "stopped"  # it never reached the provider, or the provider stopped it
    ABANDONED = "abandoned"  # the provider cannot stop it: it may still finish and be billed


def job_cancel(*, job: Job) -> Cancelled:
    """Stop a job: waiting ones at once, sent ones at the provider where it can stop them.

    A sent job that its provider cannot stop (OpenAI's Videos API deletes only finished
    videos; Seedance lets a running task finish; Kling has no cancel) is abandoned: we stop
    polling, and its estimate stays charged, because the provider may still bill it.
    """
    if job.state == JobState.PENDING:
        moved = job.move(JobState.CANCELLED, only_from=(JobState.PENDING,), next_poll_at=None)
        if moved:
            ledger.settle(job)
        return Cancelled.STOPPED if moved else Cancelled.NOTHING
    if job.state not in (JobState.QUEUED, JobState.RUNNING, JobState.UNKNOWN):
        return Cancelled.NOTHING
    stopped = False
    provider = provider_for(job.provider_account)
    if job.provider_job_id and provider.capabilities.can_cancel:
        try:
            stopped = provider.cancel(job.provider_job_id)
        except ProviderError as error:  # cancelling locally still stops our polling
            log.warning("Cancel of job %s at the provider failed: %s", job.pk, error)
    provider.close()
    if stopped:
        moved = job.move(
            JobState.CANCELLED, error_message="Cancelled before it finished.", next_poll_at=None
        )
    else:
        moved = job.move(
            JobState.CANCELLED,
            error_code=ErrorCode.ABANDONED,
            error_message=(
                f"Abandoned: {provider.label} cannot stop {_what(job)} once it is under way, so "
                "it may still finish there and be charged; its estimate stays counted."
            ),
            next_poll_at=None,
        )
    if not moved:
        return Cancelled.NOTHING
    pipeline.ended(job)
    return Cancelled.STOPPED if stopped else Cancelled.ABANDONED


def _what(job: Job) -> str:
    return "speech" if job.kind == JobKind.SPEECH else "a video"


def webhook_receive(
    *, account: ProviderAccount, headers: Mapping[str, str], body: bytes
) -> tuple[int, str]:
    """Verify, store once, and let the job refresh itself. Returns (HTTP status, message)."""
    provider = provider_for(account)
    try:
        notice = provider.verify_webhook(
            headers=headers, body=body, secret=account.webhook_secret()
        )
    except WebhookRejected as rejected:
        return 400, str(rejected)
    finally:
        provider.close()
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                provider_account=account,
                event_id=notice.event_id,
                event_type=notice.event_type,
                provider_job_id=notice.provider_job_id,
                payload=dict(notice.payload),
            )
    except IntegrityError:
        return 200, "Already received."
    job = Job.objects.filter(
        provider_account=account, provider_job_id=notice.provider_job_id
    ).first()
    if job is None or job.state not in (JobState.QUEUED, JobState.RUNNING):
        return 200, "Received."
    if notice.event_type.endswith(".completed"):
        # Verified news of completion: go straight to the download, which reads the
        # result from the provider (and, if it is not downloadable yet, waits for it
        # with backoff until the result's deadline: jobs.pipeline._wait_for_result).
        pipeline.apply_provider_status(
            job, ProviderJob(provider_job_id=notice.provider_job_id, status="succeeded")
        )
        dispatch.send(Step.DOWNLOAD, job)
    else:
        # Anything else is a nudge: a poll reads the provider's truth (a failure's reason).
        Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
        dispatch.send(Step.POLL, job)
    return 200, "Received."
