"""The studio's background work: generate-all batches, drift scores of finished takes,
episode cuts, outgoing webhooks, and housekeeping."""

from __future__ import annotations

import os

from celery import current_task, shared_task
from django.core.management import call_command

from studio import batches, cut_assembly, cuts, webhooks
from studio.api.calls import api_records_prune
from studio.consistency import services as consistency
from studio.models import Take


@shared_task
def clear_expired_sessions() -> None:
    """Delete expired login sessions (run by beat every six hours)."""
    call_command("clearsessions")


@shared_task(ignore_result=True)
def score_take(job_id: int) -> None:
    """Score the take a finished job made (sent by the engine: JOBS_SUCCEEDED_TASKS)."""
    take_id = Take.objects.filter(job_id=job_id).values_list("pk", flat=True).first()
    if take_id is None:  # a registration, or a job of no take: nothing to score
        return
    consistency.take_score(take_id=take_id, worker=_worker_name())


@shared_task(ignore_result=True)
def score_take_by_id(take_id: int) -> None:
    """Score (or score again) one take: the sweep's and the "score again" button's task."""
    consistency.take_score(take_id=take_id, worker=_worker_name())


@shared_task(ignore_result=True)
def score_overdue_takes() -> None:
    """Send the takes whose scoring message was lost, or whose scorer died (beat, each minute)."""
    for take_id in consistency.takes_to_score():
        score_take_by_id.delay(take_id)


def _worker_name() -> str:
    request = current_task.request if current_task else None
    return f"{getattr(request, 'hostname', '') or 'local'}:{os.getpid()}"[:80]


@shared_task(ignore_result=True)
def assemble_cut(cut_id: int) -> None:
    """Assemble a cut (the "media" queue): claimed, so a second delivery does nothing."""
    cut_assembly.cut_assemble(cut_id=cut_id, worker=_worker_name())


@shared_task(ignore_result=True)
def cut_speech_finished(job_id: int) -> None:
    """A job succeeded (JOBS_SUCCEEDED_TASKS): if it read a line of a dubbing cut whose speech
    is now all made, send the cut to assembly. Nothing for a take's job."""
    cuts.cuts_after_speech(job_id=job_id)


@shared_task(ignore_result=True)
def sweep_cuts() -> None:
    """Move on dubbing cuts whose speech ended (failures are announced to nobody) and resend
    assemblies that were lost or whose worker died (beat)."""
    cuts.cuts_sweep()


@shared_task(ignore_result=True)
def take_ended(job_id: int, state: str) -> None:
    """A job ended (sent by the engine: JOBS_ENDED_TASKS): its take's event for the
    workspace's webhooks (take.succeeded, take.failed, take.cancelled). Nothing for a job of
    no take."""
    webhooks.take_ended(job_id=job_id, state=state)


@shared_task(ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    """One attempt at a webhook delivery: claimed, so a second message sends nothing."""
    webhooks.delivery_send(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def sweep_webhooks() -> None:
    """Hand out due webhook deliveries nobody has in hand, and take back attempts whose
    worker died (beat, every WEBHOOKS_SWEEP_SECONDS)."""
    webhooks.deliveries_sweep()


@shared_task(ignore_result=True)
def prune_api_records() -> None:
    """Forget old API calls and expired Idempotency-Key answers (beat, hourly)."""
    api_records_prune()


@shared_task(ignore_result=True)
def run_generation_batch(batch_id: int) -> None:
    """Make a generate-all's takes (claimed: a second delivery of the message does nothing;
    a redelivery after its worker died goes on where it stopped)."""
    request = current_task.request if current_task else None
    worker = getattr(request, "id", None) or _worker_name()
    batches.batch_run(batch_id=batch_id, worker=str(worker)[:64])


@shared_task(ignore_result=True)
def sweep_generation_batches() -> None:
    """Send again the generate-alls whose message was lost or whose worker died (beat)."""
    batches.batches_sweep()
