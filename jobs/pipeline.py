"""The generation pipeline: submit once, poll without sleeping, download by streaming, reconcile.

Every step claims its job with a conditional UPDATE, so duplicate task
deliveries, late polls and replayed webhooks change nothing. Nothing here sleeps:
waiting is a time stored in Job.next_poll_at that the sweep honours.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from jobs import breaker, dispatch, ledger, live, prices, speech, video_files
from jobs.dialogue import prompt_template
from jobs.dispatch import Step
from jobs.frames import frame_references
from jobs.locks import shared_lock
from jobs.models import (
    IN_FLIGHT_STATES,
    ErrorCode,
    Job,
    JobKind,
    JobState,
    ProviderAccount,
    Registration,
)
from jobs.providers import provider_for
from jobs.providers.base import (
    CharacterSource,
    GenerationRequest,
    Provider,
    ProviderError,
    ProviderJob,
    Reference,
    RegisteredCharacter,
)
from jobs.providers.speech import Speech, SpeechProvider
from jobs.requests import Asset, CastMember
from jobs.signing import public_file_url

log = logging.getLogger(__name__)

# How a provider's error kind becomes a job's error code.
_ERROR_CODES = {
    "moderation": ErrorCode.MODERATION,
    "invalid": ErrorCode.INVALID_REQUEST,
    "auth": ErrorCode.AUTH,
    "not_found": ErrorCode.INVALID_REQUEST,
    "not_ready": ErrorCode.PROVIDER_ERROR,
    "rate_limit": ErrorCode.RATE_LIMIT,
    "quota": ErrorCode.QUOTA,
    "unavailable": ErrorCode.PROVIDER_ERROR,
    "timeout": ErrorCode.PROVIDER_ERROR,
}
MODERATION_MESSAGE = (
    "The provider's moderation blocked this video. Nothing was charged. Change the prompt "
    "(or the references) and try again."
)
SPEECH_MODERATION_MESSAGE = (
    "The provider's moderation blocked these words. Nothing was charged. Change the line "
    "and try again."
)


def _now():
    return timezone.now()


def _later(seconds: float):
    return _now() + timedelta(seconds=min(seconds, settings.CELERY_MAX_TASK_DELAY))


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter, capped (never beyond the broker's visibility)."""
    cap = min(settings.JOBS_MAX_BACKOFF_SECONDS, settings.CELERY_MAX_TASK_DELAY)
    return random.uniform(0.5, 1.0) * min(cap, settings.JOBS_BACKOFF_BASE_SECONDS * 2**attempt)  # noqa: S311 - jitter, not crypto


def _fail(job: Job, code: str, message: str) -> bool:
    moved = job.move(JobState.FAILED, error_code=code, error_message=message, next_poll_at=None)
    if moved:
        log.info("Job %s failed (%s): %s", job.pk, code, message)
        ended(job)
    return moved


def _succeed(job: Job, *, only_from: tuple[str, ...], **fields) -> bool:
    """A job's result is stored: move it to SUCCEEDED (once), settle it, and tell whoever
    waits for results (JOBS_SUCCEEDED_TASKS). False when another step moved it first."""
    moved = job.move(
        JobState.SUCCEEDED,
        only_from=only_from,
        next_poll_at=None,
        claimed_by="",
        error_code="",
        error_message="",
        **fields,
    )
    if moved:
        ended(job)
        dispatch.announce_succeeded(job)
    return moved


def ended(job: Job) -> None:
    """A job reached its end: free its lane slot, settle its money, and say so, once."""
    _release_lane(job)
    ledger.settle(job)
    dispatch.announce_ended(job)


def _release_lane(job: Job) -> None:
    """A job left the provider's lane: hand each free slot to the next waiting job at once.

    The oldest waiting jobs are woken (their sends go out when this commits), as many as
    there are slots neither in flight nor already promised to a woken job. So when several
    jobs finish together, each slot goes to a different job, and none stays idle; a
    promise lapses after a lease (a send lost with its worker), and the sweep sends what
    is left in line once its recheck is due.
    """
    now = _now()
    promised_since = now - timedelta(seconds=settings.JOBS_LEASE_SECONDS)
    with transaction.atomic():
        # Releases of one account take turns, so two cannot promise the same last slot.
        account = ProviderAccount.objects.select_for_update().get(pk=job.provider_account_id)
        in_lane = Job.objects.filter(provider_account=account)
        in_flight = in_lane.filter(state__in=IN_FLIGHT_STATES).count()
        waiting = in_lane.filter(state=JobState.PENDING).filter(
            Q(not_before__isnull=True) | Q(not_before__lte=now)
        )
        promised = waiting.filter(woken_at__gt=promised_since).count()
        room = account.concurrency_limit - in_flight - promised
        if room <= 0:
            return
        chosen = list(
            waiting.exclude(woken_at__gt=promised_since)
            .order_by("created_at", "pk")
            .values_list("pk", flat=True)[:room]
        )
        Job.objects.filter(pk__in=chosen).update(woken_at=now)
        for job_id in chosen:
            dispatch.send(Step.SUBMIT, job_id)


# --- Submit -----------------------------------------------------------------


def _lane_has_room(account: ProviderAccount) -> bool:
    in_flight = Job.objects.filter(provider_account=account, state__in=IN_FLIGHT_STATES).count()
    return in_flight < account.concurrency_limit


def _send_lease_seconds(extra: float = 0) -> float:
    """How long a send may hold its job: past its provider call's timeout, plus a margin.

    Reconciliation waits this out, so it never looks for a create that is still on its
    way (and that it would send again if the list did not show it yet).
    """
    return settings.JOBS_PROVIDER_TIMEOUT_SECONDS + settings.JOBS_SUBMIT_STALE_SECONDS + extra


def _renew_send_lease(job: Job, *, extra: float = 0, **fields) -> None:
    """Before each provider call of a send (registrations, the create): hold the job longer."""
    Job.objects.filter(pk=job.pk, state=JobState.SUBMITTING).update(
        next_poll_at=_now() + timedelta(seconds=_send_lease_seconds(extra)), **fields
    )


def claim_for_submit(job_id: int, *, delivery: str = "") -> Job | None:
    """PENDING -> SUBMITTING if the account has room in its lane, else leave it waiting.

    `delivery` is the task delivery's id: if the job is still SUBMITTING under that same
    id, the delivery was requeued because its worker process died mid-send, and the send
    is handed to reconciliation at once.
    """
    with transaction.atomic():
        job = Job.objects.select_related("provider_account").filter(pk=job_id).first()
        if job is None:
            return None
        if delivery and job.state == JobState.SUBMITTING and job.claimed_by == delivery:
            _lost_with_its_worker(job)
            return None
        if job.state != JobState.PENDING:
            return None
        if job.not_before and job.not_before > _now():
            return None  # waiting out a rate limit or a backoff
        if not _route_around_outage(job):
            return None  # every capable provider is down: it waits, unsent and unpaid
        # Lock the account: two workers cannot both see room for one last slot.
        account = ProviderAccount.objects.select_for_update().get(pk=job.provider_account_id)
        if not account.enabled:
            job.move(
                JobState.FAILED,
                error_code=ErrorCode.INVALID_REQUEST,
                error_message=f"The provider account “{account.name}” is disabled.",
            )
            return None
        if not _lane_has_room(account):
            # Woken by _release_lane when a slot frees; the sweep's recheck is the safety net.
            Job.objects.filter(pk=job.pk, state=JobState.PENDING).update(
                next_poll_at=_later(settings.JOBS_LANE_RECHECK_SECONDS), woken_at=None
            )
            return None
        if not job.move(
            JobState.SUBMITTING,
            only_from=(JobState.PENDING,),
            submitted_at=_now(),
            next_poll_at=_now() + timedelta(seconds=_send_lease_seconds()),
            not_before=None,
            woken_at=None,
            # Set again just before the create goes out: until then, nothing was sent.
            sent_payload=None,
            claimed_by=delivery,
        ):
            return None
    return job


def _lost_with_its_worker(job: Job) -> None:
    """A send whose worker process died: reconcile it now instead of after its lease."""
    if Job.objects.filter(pk=job.pk, state=JobState.SUBMITTING).update(
        state=JobState.UNKNOWN, next_poll_at=_now(), claimed_by="", updated_at=_now()
    ):
        live.announce_changed(job.pk, workspace_id=job.workspace_id)
        log.warning("Job %s: its worker died while sending; reconciling now.", job.pk)
        dispatch.send(Step.RECONCILE, job)


class _Moved(Exception):
    """The job left PENDING while being routed (cancelled, or claimed elsewhere)."""


def _route_around_outage(job: Job) -> bool:
    """Whether the (waiting) job may go now, after moving it to a fallback if its provider is down.

    A job only ever moves while PENDING: nothing was sent for it, so nothing can be
    paid twice. Its fallbacks were quoted when it was created (jobs.engine.routes),
    best first under its routing policy; one whose estimate no longer fits the budget
    is passed over. When none is up, the job waits for the first breaker to cool down.
    """
    if breaker.allow(job.provider_account_id):
        return True
    down = job.provider_account
    why = breaker.state(down.pk)
    reason = f"{down.name} is not answering ({why.last_error or 'repeated failures'})."
    fitted = job.job_request
    waits = [why.reopens_in]
    for index, fallback in enumerate(fitted.fallbacks):
        account = ProviderAccount.objects.filter(pk=fallback.account_id, enabled=True).first()
        if account is None:
            continue
        if not breaker.allow(account.pk):
            waits.append(breaker.state(account.pk).reopens_in)
            continue
        estimate = fallback.estimate
        # The one it leaves goes last, in case the others are down by the time it is back.
        moved = fitted.falling_back(
            index, leaving_account_id=down.pk, leaving_estimate=job.cost_estimate
        )
        routing = dict(job.routing)
        routing["fallbacks"] = [
            *routing.get("fallbacks", []),
            {"from": down.name, "to": account.name, "reason": reason, "at": _now().isoformat()},
        ]
        routing["degraded"] = fallback.degraded
        routing["degraded_note"] = fallback.degraded_note
        request = moved.to_dict()
        try:
            with transaction.atomic():  # the new reservation and the move, or neither
                ledger.re_reserve(
                    job=job, amount=estimate, account_id=account.pk, note=f"to {account.name}"
                )
                if not Job.objects.filter(pk=job.pk, state=JobState.PENDING).update(
                    provider_account=account,
                    request=request,
                    cost_estimate=estimate,
                    routing=routing,
                    error_code="",
                    error_message="",
                    updated_at=_now(),
                ):
                    raise _Moved
        except ledger.OverBudget as over:
            log.info("Job %s: no fallback to %s: %s", job.pk, account.name, over.message)
            continue
        except _Moved:
            return False
        live.announce_changed(job.pk, workspace_id=job.workspace_id)
        log.warning("Job %s falls back from %s to %s: %s", job.pk, down.name, account.name, reason)
        job.provider_account, job.request, job.cost_estimate, job.routing = (
            account,
            request,
            estimate,
            routing,
        )
        return True
    wait = max(1.0, min(waits))
    Job.objects.filter(pk=job.pk, state=JobState.PENDING).update(
        next_poll_at=_later(wait),
        error_message=f"Waiting: {reason} No other capable provider is up; nothing has been "
        "sent or charged.",
        updated_at=_now(),
    )
    return False


def ensure_registrations(job: Job, provider: Provider) -> dict[str, RegisteredCharacter]:
    """The provider's ids for every character the request mentions, registering lazily.

    Where the provider has no saved characters they travel as references instead, and
    each is named by the label of its first reference ("image 1").
    """
    if not provider.capabilities.native_characters:
        return _reference_mentions(job, provider)
    fitted = job.job_request
    found: dict[str, RegisteredCharacter] = {}
    active = Registration.objects.filter(
        provider_account_id=job.provider_account_id, status=Registration.Status.ACTIVE
    )
    for member in fitted.request.cast:
        subject = member.subject
        existing = active.filter(subject=subject).first()
        if existing is None:
            # Takes submitted together must not each register (and maybe pay for) the
            # character: one registers, the others wait for it and reuse it.
            wait = settings.JOBS_PROVIDER_TIMEOUT_SECONDS + 10
            lock = f"register:{job.provider_account_id}:{subject}"
            _renew_send_lease(job, extra=wait)  # while it waits for the lock
            with shared_lock(lock, hold_seconds=wait, wait_seconds=wait):
                existing = active.filter(subject=subject).first()
                if existing is None:
                    _renew_send_lease(job)  # one provider call from now
                    existing = _register(
                        job, provider, member, fitted.fit.registration_clip(subject)
                    )
        found[subject] = RegisteredCharacter(existing.external_id, existing.external_name)
    return found


def _reference_mentions(job: Job, provider: Provider) -> dict[str, RegisteredCharacter]:
    fitted = job.job_request
    names = {m.subject: m.name for m in fitted.request.cast}
    found: dict[str, RegisteredCharacter] = {}
    counts: dict[str, int] = {}
    for reference in fitted.fit.references:
        kind = reference.asset.kind
        counts[kind] = counts.get(kind, 0) + 1
        subject = reference.subject
        if subject in names and subject not in found:
            label = provider.reference_label(kind, counts[kind])
            found[subject] = RegisteredCharacter(external_id=label, name=names[subject])
    return found


def _registration_images(member: CastMember, limit: int) -> tuple[Reference, ...]:
    """The member's first pictures (the library's order), for a provider that makes
    characters from pictures (Kling's image elements); none for the others."""
    images = []
    for asset in member.images[:limit]:
        with default_storage.open(asset.file, "rb") as stored:
            images.append(
                Reference(
                    kind="image",
                    data=stored.read(),
                    url=public_file_url(asset.file),
                    content_type=asset.content_type,
                    name=member.handle,
                )
            )
    return tuple(images)


def _register(
    job: Job, provider: Provider, member: CastMember, clip_asset: Asset | None
) -> Registration:
    """Register a cast member at the provider, from its clip (cut to the provider's longest)
    or from a finished job there; a create that may have gone through is looked up first."""
    clip_name = clip_asset.file if clip_asset is not None else ""
    clip, sent_name = None, clip_name
    if provider.capabilities.character_clip_seconds and clip_name:
        high = provider.capabilities.character_clip_seconds[1]
        duration = float(clip_asset.seconds or 0)
        with default_storage.open(clip_name, "rb") as stored:
            if duration > high:
                with tempfile.NamedTemporaryFile(suffix=".mp4") as tmp:
                    for chunk in stored.chunks():
                        tmp.write(chunk)
                    tmp.flush()
                    clip = video_files.cut_clip(Path(tmp.name), start=0.0, end=high)
                # A provider that fetches the clip by its address (Kling) gets the cut too.
                sent_name = default_storage.save(
                    f"registrations/{job.workspace_id}/{job.pk}-{Path(clip_name).stem}.mp4",
                    ContentFile(clip),
                )
            else:
                clip = stored.read()
    source = CharacterSource(
        name=member.name,
        description=member.description,
        clip=clip,
        clip_url=public_file_url(sent_name) if sent_name else None,
        images=_registration_images(member, provider.capabilities.character_images),
        from_provider_job_id=member.from_provider_job_id or None,
    )
    started = int(timezone.now().timestamp()) - 5
    try:
        registered = provider.register_character(source)
    except ProviderError as error:
        # It may exist already: find it rather than register (and maybe pay) twice.
        found = (
            provider.find_character(name=source.name, since=started)
            if error.maybe_accepted
            else None
        )
        if found is None:
            raise
        registered = found
    try:
        with transaction.atomic():
            return Registration.objects.create(
                provider_account_id=job.provider_account_id,
                subject=member.subject,
                external_id=registered.external_id,
                external_name=registered.name,
                source=clip_name or member.from_provider_job_id,
                job=job,
            )
    except IntegrityError:  # another job registered the same character meanwhile
        return Registration.objects.get(
            provider_account_id=job.provider_account_id,
            subject=member.subject,
            status=Registration.Status.ACTIVE,
        )


def _generation_request(job: Job, provider: Provider, mentions: dict) -> GenerationRequest:
    fitted = job.job_request
    req = fitted.request
    references = []
    for reference in fitted.fit.references:
        asset = reference.asset
        with default_storage.open(asset.file, "rb") as stored:
            references.append(
                Reference(
                    kind=asset.kind,
                    data=stored.read(),
                    url=public_file_url(asset.file),
                    content_type=asset.content_type,
                    # How prompts name it where the provider names references (an @tag).
                    name=req.member(reference.subject).handle,
                )
            )
    # Where the provider speaks as it films, the dialogue goes in the prompt.
    template = prompt_template(req, speaks=provider.capabilities.audio)
    return GenerationRequest(
        prompt=provider.render_mentions(template, mentions),
        seconds=req.seconds,
        size=req.size,
        character_ids=tuple(m.external_id for m in mentions.values())
        if provider.capabilities.native_characters
        else (),
        references=(*frame_references(req, with_data=True), *references),
        kind=req.kind,
        source_provider_job_id=req.source_provider_job_id,
        callback_url=job.provider_account.callback_url()
        if job.provider_account.sends_callbacks
        else "",
    )


def submit(job_id: int, *, delivery: str = "") -> None:
    job = claim_for_submit(job_id, delivery=delivery)
    if job is None:
        return
    provider = provider_for(job.provider_account)
    try:
        if job.kind == JobKind.REGISTER_CHARACTER:
            _submit_registration(job, provider)
            return
        if job.kind == JobKind.SPEECH:
            _submit_speech(job, provider)
            return
        try:
            mentions = ensure_registrations(job, provider)
        except ProviderError as error:
            if _note_health(job, error):  # the provider went down: try a fallback at once
                _back_in_line(job, error, wait=0)
                return
            _handle_submit_error(job, error, registering=True)
            return
        request = _generation_request(job, provider, mentions)
        # Recorded before sending: if we die after the send, reconciliation knows
        # exactly what to look for at the provider (and, while it is unset, that nothing
        # was sent, so the job can simply go back in line).
        _renew_send_lease(
            job,
            sent_payload={
                "prompt": request.prompt,
                "seconds": request.seconds,
                "size": request.size,
            },
        )
        try:
            provider_job, payload = provider.submit(request)
        except ProviderError as error:
            _note_health(job, error)
            if _forget_lost_characters(job, error, mentions):
                _back_in_line(job, error, wait=0)  # registers them again, then sends
                return
            _handle_submit_error(job, error)
            return
        breaker.record_success(job.provider_account_id)
        state = JobState.RUNNING if provider_job.status == "running" else JobState.QUEUED
        delay = _next_poll_delay(job, provider_job)
        # From UNKNOWN too: a reconciler that started meanwhile only records what it finds.
        if not job.move(
            state,
            only_from=(JobState.SUBMITTING, JobState.UNKNOWN),
            provider_job_id=provider_job.provider_job_id,
            sent_payload=payload,
            progress=provider_job.progress,
            next_poll_at=_later(delay),
            attempts=0,
            error_code="",
            error_message="",
            claimed_by="",
        ):
            log.error(
                "Job %s: %s accepted it as %s after the job had moved on (%s).",
                job.pk,
                provider.label,
                provider_job.provider_job_id,
                Job.objects.filter(pk=job.pk).values_list("state", flat=True).first(),
            )
            return
        dispatch.send(Step.POLL, job, countdown=delay)
    finally:
        provider.close()


def _submit_registration(job: Job, provider: Provider) -> None:
    """A REGISTER_CHARACTER job: one synchronous call, no polling."""
    fitted = job.job_request
    (member,) = fitted.request.cast
    Registration.objects.filter(
        provider_account_id=job.provider_account_id,
        subject=member.subject,
        status=Registration.Status.ACTIVE,
    ).update(status=Registration.Status.FAILED, error_message="Replaced by a newer registration.")
    try:
        clip = fitted.fit.registration_clip(member.subject)
        registration = _register(job, provider, member, clip)
    except ProviderError as error:
        _handle_submit_error(job, error, registering=True)
        return
    if job.move(
        JobState.SUCCEEDED,
        result={"external_id": registration.external_id, "name": registration.external_name},
        progress=100,
        cost_actual=job.cost_estimate,
    ):
        ended(job)


def _submit_speech(job: Job, provider: Provider) -> None:
    """A SPEECH job: its voice made once (from a sample), the words spoken once, the audio
    stored. One synchronous call, like a registration; nothing to poll or download."""
    if not isinstance(provider, SpeechProvider):
        _fail(job, ErrorCode.INVALID_REQUEST, f"{provider.label} makes video, not speech.")
        return
    try:
        registration = speech.ensure_voice(
            job, provider, hold=lambda extra: _renew_send_lease(job, extra=extra)
        )
    except ProviderError as error:
        if _note_health(job, error):  # the provider went down: try a fallback at once
            _back_in_line(job, error, wait=0)
            return
        _handle_submit_error(job, error, registering=True)
        return
    voice = job.job_request.request.voice
    voice_id = registration.external_id if registration else voice.voice_id
    request = speech.speech_request(job, voice_id)
    # Recorded before sending: a worker that dies after the send leaves what to look for
    # in the provider's history, and since when, so the words are never paid for twice.
    _renew_send_lease(
        job,
        sent_payload=provider.sent_payload(request),
        result={**job.result, "sent_at": time.time()},
    )
    try:
        spoken, payload = provider.synthesize(request)
    except ProviderError as error:
        _note_health(job, error)
        made = {voice.subject: RegisteredCharacter(voice_id, voice.name)} if registration else {}
        if _forget_lost_characters(job, error, made):
            _back_in_line(job, error, wait=0)  # makes the voice again, then speaks
            return
        _handle_submit_error(job, error)
        return
    breaker.record_success(job.provider_account_id)
    _finish_speech(job, provider, spoken, voice_id=voice_id, sent_payload=payload)


def _finish_speech(
    job: Job,
    provider: SpeechProvider,
    spoken: Speech,
    *,
    voice_id: str,
    sent_payload: dict | None = None,
) -> None:
    """Store the speech, charge what the provider says it cost (else the estimate), once."""
    try:
        name, seconds = speech.store_audio(job, spoken)
    except video_files.ResultUnusable as error:
        _fail(job, ErrorCode.RESULT_INVALID, str(error))
        return
    words = job.job_request.request.prompt
    cost = prices.speech_actual(
        job.provider_account, provider, estimate=job.cost_estimate, credits=spoken.credits
    )
    recorded = {"sent_payload": sent_payload} if sent_payload is not None else {}
    if not _succeed(
        job,
        only_from=(JobState.SUBMITTING, JobState.UNKNOWN),
        audio=name,
        provider_job_id=spoken.item_id or spoken.request_id,
        result={
            "duration": seconds,
            "characters": len(words),
            "content_type": spoken.content_type,
            "voice_id": voice_id,
            "bytes": len(spoken.audio),
            "credits": None if spoken.credits is None else str(spoken.credits),
            "request_id": spoken.request_id,
        },
        cost_actual=cost,
        progress=100,
        **recorded,
    ):  # reconciled meanwhile: drop our copy
        default_storage.delete(name)


def _handle_submit_error(job: Job, error: ProviderError, *, registering: bool = False) -> None:
    if error.maybe_accepted and not registering:
        # It may have been accepted: never send again; find it in the provider's list.
        log.warning(
            "Job %s: the create may have reached the provider (%s); reconciling.", job.pk, error
        )
        job.move(JobState.UNKNOWN, next_poll_at=_later(settings.JOBS_RECONCILE_DELAY_SECONDS))
        return
    if error.kind in ("rate_limit", "quota", "unavailable", "timeout"):
        # Not accepted: wait (as long as the provider asks) and go back in line; if that
        # failure opened the provider's breaker, go at once: the next claim falls back.
        wait = error.retry_after if error.retry_after is not None else backoff_seconds(job.attempts)
        if error.kind in breaker.OUTAGE_KINDS and breaker.state(job.provider_account_id).is_open:
            wait = 0
        if job.attempts + 1 >= settings.JOBS_MAX_SUBMIT_ATTEMPTS:
            _fail(
                job,
                _ERROR_CODES[error.kind],
                f"{error.message} (gave up after {job.attempts + 1} tries)",
            )
            return
        _back_in_line(job, error, wait=wait)
        return
    if error.kind == "moderation":
        blocked = SPEECH_MODERATION_MESSAGE if job.kind == JobKind.SPEECH else MODERATION_MESSAGE
        _fail(job, ErrorCode.MODERATION, blocked)
        return
    code = ErrorCode.REGISTRATION_FAILED if registering else _ERROR_CODES[error.kind]
    _fail(job, code, error.message)


def _forget_lost_characters(
    job: Job, error: ProviderError, mentions: dict[str, RegisteredCharacter]
) -> bool:
    """A refusal naming a character id the provider no longer knows (deleted there, or a
    provider that lost its data): that registration is retired, so the next try registers
    the character again. True when one was; only for a create that was refused outright."""
    if error.kind not in ("invalid", "not_found") or error.maybe_accepted:
        return False
    if job.attempts + 1 >= settings.JOBS_MAX_SUBMIT_ATTEMPTS:
        return False
    lost = [
        m.external_id for m in mentions.values() if m.external_id and m.external_id in error.message
    ]
    if not lost:
        return False
    retired = Registration.objects.filter(
        provider_account_id=job.provider_account_id,
        status=Registration.Status.ACTIVE,
        external_id__in=lost,
    ).update(status=Registration.Status.FAILED, error_message=f"The provider lost it: {error}")
    if retired:
        log.warning("Job %s: the provider no longer knows %s; registering again.", job.pk, lost)
    return bool(retired)


def _back_in_line(job: Job, error: ProviderError, *, wait: float) -> None:
    """A create that was refused (never accepted): PENDING again, to go after `wait` seconds."""
    _requeue(
        job,
        from_state=JobState.SUBMITTING,
        wait=wait,
        error_code=_ERROR_CODES[error.kind],
        message=f"Waiting to retry: {error.message}",
    )


def _requeue(job: Job, *, from_state: str, wait: float, error_code: str, message: str) -> bool:
    """Back to PENDING, unsent and still reserved, to go after `wait` seconds.

    The one way a job moves back: only from a state whose create is known not to have
    reached the provider (refused outright, or absent from an authoritative list).
    """
    moved = Job.objects.filter(pk=job.pk, state=from_state).update(
        state=JobState.PENDING,
        attempts=F("attempts") + 1,
        not_before=_later(wait),
        next_poll_at=_later(wait),
        claimed_by="",
        error_code=error_code,
        error_message=message,
        updated_at=_now(),
    )
    if not moved:
        return False
    live.announce_changed(job.pk, workspace_id=job.workspace_id)
    _release_lane(job)
    if wait <= 0:
        dispatch.send(Step.SUBMIT, job)
    return True


def _note_health(job: Job, error: ProviderError) -> bool:
    """Tell the breaker about an outage-like failure; True if the breaker is now open."""
    if error.kind not in breaker.OUTAGE_KINDS:
        return False
    return breaker.record_failure(job.provider_account_id, error.message)


# --- Poll -------------------------------------------------------------------


# A job is looked at again after a tenth of its age so far, within the bounds below: a
# take that is done in seconds is seen at once, and one that renders for minutes is not
# asked about every second (each look is a provider call, a database write and, when its
# figure moved, news for every open storyboard).
POLL_AGE_SHARE = 0.1


def _next_poll_delay(job: Job, provider_job: ProviderJob) -> float:
    """Seconds until the next look at a job still under way: the provider's hint (or 1 s),
    stretched to a tenth of the job's age, never above JOBS_MAX_POLL_SECONDS (unless the
    provider asks for longer) nor below JOBS_MIN_POLL_SECONDS."""
    if job.provider_account.has_webhooks:
        return float(settings.JOBS_WEBHOOK_SAFETY_POLL_SECONDS)
    hint = provider_job.poll_after if provider_job.poll_after is not None else 1.0
    started = job.submitted_at or job.created_at
    age = max((_now() - started).total_seconds(), 0.0) if started else 0.0
    stretched = min(age * POLL_AGE_SHARE, float(settings.JOBS_MAX_POLL_SECONDS))
    return max(float(settings.JOBS_MIN_POLL_SECONDS), hint, stretched)


def poll(job_id: int, *, force: bool = False) -> None:
    now = _now()
    lease = _later(settings.JOBS_LEASE_SECONDS)
    due = Job.objects.filter(pk=job_id, state__in=(JobState.QUEUED, JobState.RUNNING))
    if not force:
        due = due.filter(next_poll_at__lte=now)
    # The lease keeps a second poll (sweep, webhook, countdown) from running at once.
    if not due.update(next_poll_at=lease, poll_count=F("poll_count") + 1):
        return
    job = Job.objects.select_related("provider_account").get(pk=job_id)
    provider = provider_for(job.provider_account)
    try:
        provider_job = provider.fetch(job.provider_job_id)
    except ProviderError as error:
        _note_health(job, error)
        if error.kind in ("not_found", "auth"):
            _fail(job, _ERROR_CODES[error.kind], error.message)
            return
        wait = error.retry_after if error.retry_after is not None else backoff_seconds(job.attempts)
        Job.objects.filter(pk=job.pk).update(next_poll_at=_later(wait), attempts=F("attempts") + 1)
        return
    finally:
        provider.close()
    breaker.record_success(job.provider_account_id)
    apply_provider_status(job, provider_job)
    job.refresh_from_db()
    if job.state == JobState.DOWNLOADING:
        dispatch.send(Step.DOWNLOAD, job)
    elif job.state in (JobState.QUEUED, JobState.RUNNING):
        delay = _next_poll_delay(job, provider_job)
        Job.objects.filter(pk=job.pk, state=job.state).update(
            next_poll_at=_later(delay), attempts=0
        )
        dispatch.send(Step.POLL, job, countdown=delay)


def apply_provider_status(job: Job, provider_job: ProviderJob) -> None:
    """Move the job forward to what the provider reports (never backward)."""
    if provider_job.status == "succeeded":
        # When the provider said it was done: the wait for a downloadable result counts from here.
        result = {**job.result, "video_url": provider_job.video_url, "completed_at": time.time()}
        if provider_job.usage is not None:
            result["usage"] = str(provider_job.usage)
        moved = job.move(
            JobState.DOWNLOADING, progress=100, next_poll_at=_now(), result=result, attempts=0
        )
        if moved:  # the provider is done with it: its slot is free while we download
            _release_lane(job)
    elif provider_job.status == "failed":
        if "moderation" in provider_job.error_code:
            _fail(job, ErrorCode.MODERATION, MODERATION_MESSAGE)
        else:
            reason = provider_job.error_message or "the provider gave no reason"
            _fail(
                job,
                ErrorCode.GENERATION_FAILED,
                f"The provider could not make this video: {reason}",
            )
    elif provider_job.status == "cancelled":
        if job.move(JobState.CANCELLED, next_poll_at=None):
            ended(job)
    elif provider_job.status == "running" and not job.move(
        JobState.RUNNING, progress=provider_job.progress
    ):
        # Only a new figure counts as a change: live pages re-read what changed (updated_at).
        progressed = (
            Job.objects.filter(pk=job.pk, state=JobState.RUNNING)
            .exclude(progress=provider_job.progress)
            .update(progress=provider_job.progress, updated_at=_now())
        )
        if progressed:
            live.announce_changed(job.pk, workspace_id=job.workspace_id)


# --- Download ---------------------------------------------------------------


class _LeaseLost(Exception):
    """Another delivery took the download over (this one stalled past its lease)."""


class _DownloadLease:
    """A claimed download's hold on its job, renewed while it makes progress (a heartbeat).

    The lease is short (JOBS_DOWNLOAD_LEASE_SECONDS) so that a download whose worker was
    killed is taken over within one lease; a live one renews it every third of a lease,
    between chunks and between the steps after them. A renewal that finds the job taken
    over stops this download: the other one finishes it.
    """

    def __init__(self, job: Job, delivery: str) -> None:
        self.job_id = job.pk
        self.delivery = delivery
        self.seconds = settings.JOBS_DOWNLOAD_LEASE_SECONDS
        self._renewed = time.monotonic()

    def renew(self) -> None:
        if time.monotonic() - self._renewed < self.seconds / 3:
            return
        held = Job.objects.filter(
            pk=self.job_id, state=JobState.DOWNLOADING, claimed_by=self.delivery
        ).update(next_poll_at=_now() + timedelta(seconds=self.seconds))
        if not held:
            raise _LeaseLost
        self._renewed = time.monotonic()


def _claim_download(job_id: int, delivery: str) -> bool:
    """Claim a due download; a requeued delivery of a download in progress (its worker died)
    takes it over at once instead of waiting out the lease."""
    due = Q(next_poll_at__lte=_now())
    if delivery:
        due |= Q(claimed_by=delivery)
    return bool(
        Job.objects.filter(due, pk=job_id, state=JobState.DOWNLOADING).update(
            next_poll_at=_now() + timedelta(seconds=settings.JOBS_DOWNLOAD_LEASE_SECONDS),
            claimed_by=delivery or f"download:{job_id}:{time.time()}",
        )
    )


def _result_deadline(job: Job) -> float:
    """Unix time by which a video the provider reported finished must be downloadable."""
    completed = float(job.result.get("completed_at") or job.updated_at.timestamp())
    return completed + settings.JOBS_RESULT_WAIT_SECONDS


def download(job_id: int, *, delivery: str = "") -> None:
    """Stream the finished video to storage, probe it, make previews, settle the cost."""
    if not _claim_download(job_id, delivery):
        return
    job = Job.objects.select_related("provider_account").get(pk=job_id)
    lease = _DownloadLease(job, job.claimed_by)
    timeout = max(120, settings.JOBS_PROVIDER_TIMEOUT_SECONDS)
    provider = provider_for(job.provider_account, timeout=timeout)
    provider_job = ProviderJob(
        provider_job_id=job.provider_job_id,
        status="succeeded",
        video_url=str(job.result.get("video_url") or ""),
    )
    cap = settings.JOBS_RESULT_MAX_BYTES
    try:
        with tempfile.TemporaryDirectory(prefix="castboard-") as folder:
            path = Path(folder) / "video.mp4"
            ends_at = time.monotonic() + settings.JOBS_DOWNLOAD_TIMEOUT_SECONDS
            with path.open("wb") as out:
                size = 0
                for chunk in provider.stream_result(provider_job, "video"):
                    size += len(chunk)
                    if size > cap:
                        raise provider.result_too_large(size, cap)
                    if time.monotonic() > ends_at:
                        raise ProviderError(
                            "timeout",
                            f"The download from {provider.label} took longer than "
                            f"{settings.JOBS_DOWNLOAD_TIMEOUT_SECONDS} s.",
                        )
                    out.write(chunk)
                    lease.renew()
            facts = video_files.probe_video(path)
            lease.renew()
            thumbnail = video_files.make_thumbnail(path)
            spritesheet = video_files.make_spritesheet(path)
            lease.renew()
            with path.open("rb") as stored:
                name = default_storage.save(
                    f"workspaces/{job.workspace_id}/jobs/{job.pk}/video.mp4", File(stored)
                )
            thumb_name = default_storage.save(
                f"workspaces/{job.workspace_id}/jobs/{job.pk}/thumbnail.jpg", ContentFile(thumbnail)
            )
            sprite_name = default_storage.save(
                f"workspaces/{job.workspace_id}/jobs/{job.pk}/spritesheet.jpg",
                ContentFile(spritesheet),
            )
    except _LeaseLost:
        log.warning("Job %s: download taken over by another delivery; this one stops.", job.pk)
        return
    except ProviderError as error:
        _download_failed(job, provider, error)
        return
    except video_files.ResultUnusable as error:
        _fail(job, ErrorCode.RESULT_INVALID, str(error))
        return
    finally:
        provider.close()
    usage = job.result.get("usage")
    requested = job.job_request.request
    # Billed on what was made (an extension reports the stitched total: keep its estimate).
    cost = prices.actual(
        job.provider_account,
        provider,
        estimate=job.cost_estimate,
        size=requested.size,
        requested_seconds=requested.seconds,
        made_seconds=facts.duration if job.kind == JobKind.GENERATE else None,
        usage=Decimal(usage) if usage is not None else None,
    )
    if not _succeed(
        job,
        only_from=(JobState.DOWNLOADING,),
        video=name,
        thumbnail=thumb_name,
        spritesheet=sprite_name,
        result={
            **job.result,
            "bytes": size,
            "duration": facts.duration,
            "width": facts.width,
            "height": facts.height,
            "codec": facts.codec,
        },
        cost_actual=cost,
    ):  # another download won the race: drop our copies
        for stored_name in (name, thumb_name, sprite_name):
            default_storage.delete(stored_name)


def _download_failed(job: Job, provider: Provider, error: ProviderError) -> None:
    """A download that did not complete: wait for a result not ready yet, retry a passing
    failure with backoff (a limited number of times), or fail for good in plain words."""
    if error.kind == "not_ready":
        _wait_for_result(job, provider, error)
        return
    if error.kind == "not_found":
        _fail(
            job, ErrorCode.RESULT_INVALID, f"The provider no longer has the video: {error.message}"
        )
        return
    if error.kind == "invalid":  # too large, or a link to an address we do not fetch
        _fail(job, ErrorCode.RESULT_INVALID, error.message)
        return
    if job.attempts + 1 >= settings.JOBS_MAX_DOWNLOAD_ATTEMPTS:
        _fail(
            job,
            ErrorCode.RESULT_INVALID,
            f"The video could not be downloaded: {error.message} "
            f"(gave up after {job.attempts + 1} tries).",
        )
        return
    wait = error.retry_after if error.retry_after is not None else backoff_seconds(job.attempts)
    Job.objects.filter(pk=job.pk, state=JobState.DOWNLOADING).update(
        next_poll_at=_later(wait),
        attempts=F("attempts") + 1,
        claimed_by="",
        error_message=f"Downloading again shortly: {error.message}",
    )


def _wait_for_result(job: Job, provider: Provider, error: ProviderError) -> None:
    """The provider said the video is finished, but its content is not downloadable yet
    (a webhook can arrive before it is): wait with backoff until the result's deadline."""
    if time.time() > _result_deadline(job):
        minutes = settings.JOBS_RESULT_WAIT_SECONDS / 60
        _fail(
            job,
            ErrorCode.RESULT_INVALID,
            f"{provider.label} said the video was finished, but it never became available to "
            f"download (we waited {minutes:g} minutes). Nothing was charged; retry the take.",
        )
        return
    try:
        # Its truth now: a failure since then ends the job with the provider's reason.
        status = provider.fetch(job.provider_job_id)
    except ProviderError as fetch_error:
        log.info("Job %s: status check while waiting failed: %s", job.pk, fetch_error)
    else:
        if status.status in ("failed", "cancelled"):
            apply_provider_status(job, status)
            return
    wait = min(30.0, backoff_seconds(job.attempts))
    Job.objects.filter(pk=job.pk, state=JobState.DOWNLOADING).update(
        next_poll_at=_later(wait),
        attempts=F("attempts") + 1,
        claimed_by="",
        error_message=f"Waiting for {provider.label} to make the finished video available "
        f"to download ({error.message}).",
    )


# --- Reconcile --------------------------------------------------------------


def _reconcile_due(now) -> Q:
    return Q(state=JobState.UNKNOWN, next_poll_at__lte=now) | Q(
        state=JobState.SUBMITTING, next_poll_at__lte=now
    )


def reconcile(job_id: int) -> None:
    """Resolve a job whose create may or may not have reached the provider.

    Nothing is sent blindly: a create recorded as never sent goes back in line; one that
    was sent is looked up in the provider's list; where that list shows every create (it
    is authoritative) and this one is not there, it never arrived and goes back in line to
    be sent once; elsewhere it fails as unconfirmed, unpaid.
    """
    claimed = Job.objects.filter(_reconcile_due(_now()), pk=job_id).update(
        state=JobState.UNKNOWN,
        next_poll_at=_later(settings.JOBS_LEASE_SECONDS),
        claimed_by="",
        updated_at=_now(),
    )
    if not claimed:
        return
    job = Job.objects.select_related("provider_account").get(pk=job_id)
    live.announce_changed(job.pk, workspace_id=job.workspace_id)
    if not job.sent_payload:
        # The worker died before the create went out (or it was a registration, which is
        # free and looked up by name): nothing reached the provider.
        _resend(job, "The first try never reached the provider")
        return
    if job.kind == JobKind.SPEECH:
        _reconcile_speech(job)
        return
    provider = provider_for(job.provider_account)
    try:
        if not provider.capabilities.can_list_jobs:
            _fail(
                job,
                ErrorCode.UNCONFIRMED,
                f"We could not confirm that {provider.label} accepted this request, and it cannot "
                "be looked up there. It was not sent again, so it cannot be paid twice; retry if "
                "no video appears.",
            )
            return
        sent = job.sent_payload or {}
        since = int((job.submitted_at or job.created_at).timestamp()) - 120
        try:
            candidates = provider.list_recent(since=since)
        except ProviderError as error:
            _reconcile_later(job, error)
            return
    finally:
        provider.close()
    taken = set(
        Job.objects.filter(provider_account_id=job.provider_account_id)
        .exclude(provider_job_id="")
        .values_list("provider_job_id", flat=True)
    )
    matches = sorted(
        (c for c in candidates if c.provider_job_id not in taken and provider.is_sent_job(c, sent)),
        key=lambda c: c.created_at or 0,
    )
    if not matches:
        if provider.capabilities.list_is_authoritative:
            _resend(job, f"{provider.label} has no record of the first try")
            return
        _fail(
            job,
            ErrorCode.UNCONFIRMED,
            "The provider has no record of this request, so nothing was charged. "
            "Retry to send it again.",
        )
        return
    found = matches[0]
    log.info("Job %s reconciled: the provider has it as %s.", job.pk, found.provider_job_id)
    state = JobState.RUNNING if found.status == "running" else JobState.QUEUED
    if job.move(
        state,
        only_from=(JobState.UNKNOWN,),
        provider_job_id=found.provider_job_id,
        next_poll_at=_now(),
    ):
        dispatch.send(Step.POLL, job)


def _reconcile_later(job: Job, error: ProviderError) -> None:
    """The provider could not be asked now: look again after its wait, or a backoff."""
    wait = error.retry_after if error.retry_after is not None else backoff_seconds(job.attempts)
    Job.objects.filter(pk=job.pk).update(next_poll_at=_later(wait), attempts=F("attempts") + 1)


def _reconcile_speech(job: Job) -> None:
    """A synthesis whose answer was lost: found in the provider's history (the same words
    and voice since it was sent), its audio fetched from there and not spoken again. Where
    the history has no such synthesis it never happened, and the job goes back in line."""
    provider = provider_for(job.provider_account)
    try:
        if not isinstance(provider, SpeechProvider):
            _fail(job, ErrorCode.INVALID_REQUEST, f"{provider.label} makes video, not speech.")
            return
        try:
            found = speech.find_sent(job, provider)
            spoken = None if found is None else speech.from_history(provider, found)
        except ProviderError as error:
            if error.kind == "not_found":  # listed, but its audio is gone
                _fail(job, ErrorCode.RESULT_INVALID, error.message)
                return
            _reconcile_later(job, error)
            return
    finally:
        provider.close()
    if found is None or spoken is None:
        # A synthesis takes a while, and one whose answer was lost (a timeout, a worker that
        # died) may still be under way there: it is listed once done. Until its send could
        # no longer be running, look again rather than speak the words a second time.
        sent_at = float(job.result.get("sent_at") or 0)
        running_until = sent_at + _send_lease_seconds()
        if time.time() < running_until:
            Job.objects.filter(pk=job.pk, state=JobState.UNKNOWN).update(
                next_poll_at=_later(running_until - time.time())
            )
            return
        _resend(job, f"{provider.label} has no record of the first try")
        return
    log.info("Job %s reconciled: %s has it as %s.", job.pk, provider.label, found.item_id)
    _finish_speech(job, provider, spoken, voice_id=found.voice_id)


def _resend(job: Job, why: str) -> None:
    """A create known not to have reached the provider goes back in line, to be sent once."""
    if job.attempts + 1 >= settings.JOBS_MAX_SUBMIT_ATTEMPTS:
        _fail(
            job,
            ErrorCode.UNCONFIRMED,
            f"{why}, and it was tried {job.attempts + 1} times. Nothing was charged.",
        )
        return
    if _requeue(
        job,
        from_state=JobState.UNKNOWN,
        wait=0,
        error_code="",
        message=f"Sending again: {why}, so nothing was charged for it.",
    ):
        log.warning("Job %s: %s; back in line to be sent once.", job.pk, why)
