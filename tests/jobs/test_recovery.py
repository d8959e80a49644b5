"""Work that would have been lost or failed for good now finishes, and is paid for once:
a generate while Redis is down, a completion webhook that runs ahead of the content, a
create that never left its worker, and a provider's 500 on a create.

A real worker on a real Redis, the OpenAI emulator over real HTTP; each test checks what the
user sees (the page, the take's state and files) and what the provider saw (its log).
"""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import httpx
import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from jobs import pipeline
from jobs.emulators.webhooks import sign
from jobs.models import ErrorCode, Job, JobState, LedgerEntry
from jobs.services import job_create
from studio.generation import take_create
from studio.models import Role, Take
from studio.project.redis_server import free_port
from tests.factories import MembershipFactory
from tests.jobs.factories import job_request, studio_scene
from tests.support.emulators import emulator_control, emulator_log
from tests.support.pages import messages_of
from tests.support.processes import point_celery_at

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SECRET = "whsec_" + base64.b64encode(b"castboard-recovery-test-key").decode()


def _charges(job: Job) -> list:
    return list(
        LedgerEntry.objects.filter(job=job, kind=LedgerEntry.Kind.CHARGE).values_list(
            "amount", flat=True
        )
    )


# --- Redis down when a take is made ---------------------------------------------------------


def test_a_take_made_while_redis_is_down_is_queued_not_an_error_and_made_once(
    studio, client, wait_for_job, redis_url
):
    editor = MembershipFactory(workspace=studio["workspace"], role=Role.EDITOR).user
    client.force_login(editor)
    scene = studio_scene(studio, "Gulls over the pier.")
    account = studio["accounts"]["openai"]

    point_celery_at(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        response = client.post(
            reverse("scene_generate", args=[studio["workspace"].slug, scene.pk]),
            {"account": str(account.pk)},
            follow=True,
        )
    finally:
        point_celery_at(redis_url, forget_current=True)

    assert response.status_code == 200
    said = " ".join(messages_of(response))
    assert "is queued for OpenAI" in said
    assert "will not be paid twice" in said
    take = Take.objects.get(scene=scene)
    assert take.job.state == JobState.PENDING
    assert take.job.next_poll_at is not None  # due: the sweep is its outbox

    job = wait_for_job(take.job)  # beat's sweep, now that the broker answers again

    assert job.state == JobState.SUCCEEDED, job.error_message
    assert len(emulator_log(studio["openai"], "create")) == 1
    assert Take.objects.filter(scene=scene).count() == 1
    assert len(_charges(job)) == 1


def test_a_webhook_while_redis_is_down_is_taken_and_its_download_goes_later(
    studio, live_server, wait_for_job, redis_url, settings
):
    settings.JOBS_WEBHOOK_SAFETY_POLL_SECONDS = 600
    account = studio["accounts"]["openai"]
    account.set_webhook_secret(SECRET)
    account.save()
    emulator_control(studio["openai"], "config", {"latency_seconds": 0.2})
    take = take_create(scene=studio_scene(studio, "Bells at noon."), account=account)
    job = wait_for_job(take.job, states=("queued", "running"))
    time.sleep(0.5)  # done at the provider; nothing polls it (webhooks are on)

    point_celery_at(f"redis://127.0.0.1:{free_port()}/0")
    try:
        response = _post_webhook(live_server, account, job.provider_job_id)
    finally:
        point_celery_at(redis_url, forget_current=True)

    assert response.status_code == 200, response.text
    job = wait_for_job(job)
    assert job.state == JobState.SUCCEEDED, job.error_message


# --- A completion webhook that runs ahead of the content ------------------------------------


def _post_webhook(live_server, account, video_id: str) -> httpx.Response:
    """A signed `video.completed`, as the provider would send it."""
    event_id = f"evt_{video_id}_{time.monotonic_ns()}"
    stamp = int(time.time())
    body = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "created_at": stamp,
            "type": "video.completed",
            "data": {"id": video_id},
        }
    ).encode()
    headers = {
        "webhook-id": event_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(SECRET, message_id=event_id, timestamp=stamp, body=body),
        "content-type": "application/json",
    }
    return httpx.post(
        f"{live_server.url}/hooks/{account.webhook_token}/", content=body, headers=headers
    )


@pytest.fixture
def early_webhooks(studio, settings):
    """Webhooks on for the OpenAI account, and nothing polls: only a webhook says it is done."""
    settings.JOBS_WEBHOOK_SAFETY_POLL_SECONDS = 600
    account = studio["accounts"]["openai"]
    account.set_webhook_secret(SECRET)
    account.save()
    return account


def test_a_completion_webhook_before_the_content_is_ready_waits_for_it(
    studio, early_webhooks, live_server, wait_for_job
):
    emulator_control(studio["openai"], "config", {"latency_seconds": 2.0})
    take = take_create(scene=studio_scene(studio, "Lanterns on the quay."), account=early_webhooks)
    job = wait_for_job(take.job, states=("queued", "running"))

    assert _post_webhook(live_server, early_webhooks, job.provider_job_id).status_code == 200
    job = wait_for_job(job)

    assert job.state == JobState.SUCCEEDED, job.error_message
    assert job.video
    assert job.result["codec"] == "h264"
    statuses = [entry["status"] for entry in emulator_log(studio["openai"], "content")]
    assert statuses[0] == 404  # video_not_ready: the webhook came first
    assert statuses[-1] == 200
    assert _charges(job) == [job.cost_actual]
    assert job.cost_actual > 0
    assert job.error_message == ""  # the waiting note is gone


def test_a_finished_video_that_never_becomes_downloadable_fails_at_its_deadline(
    studio, early_webhooks, live_server, wait_for_job, settings
):
    settings.JOBS_RESULT_WAIT_SECONDS = 1
    emulator_control(studio["openai"], "config", {"latency_seconds": 60.0})
    take = take_create(scene=studio_scene(studio, "A storm far out."), account=early_webhooks)
    job = wait_for_job(take.job, states=("queued", "running"))

    _post_webhook(live_server, early_webhooks, job.provider_job_id)
    job = wait_for_job(job)

    assert job.state == JobState.FAILED
    assert job.error_code == ErrorCode.RESULT_INVALID
    assert "never became available to download" in job.error_message
    assert job.prompt == "A storm far out."  # kept, for a retry
    assert _charges(job) == [0]


# --- A create that never reached the provider -----------------------------------------------


def _held_job(studio, prompt: str) -> Job:
    """A job the in-process worker leaves alone (not due yet), for a test to play a crash on."""
    account = studio["accounts"]["openai"]
    with transaction.atomic():  # not due by the time its submit message reaches the worker
        job = job_create(
            workspace=studio["workspace"],
            account=account,
            request=job_request(prompt),
            cost_estimate=account.capabilities.price * 4,
        )
        Job.objects.filter(pk=job.pk).update(not_before=timezone.now() + timedelta(days=1))
    return job


def test_a_send_whose_worker_died_before_the_request_is_sent_once(studio, wait_for_job):
    job = _held_job(studio, "Rain on the lighthouse.")
    Job.objects.filter(pk=job.pk).update(not_before=None)
    # The dead worker's whole part: it claimed the job, then was killed before the request.
    assert pipeline.claim_for_submit(job.pk) is not None
    job.refresh_from_db()
    assert (job.state, job.sent_payload) == (JobState.SUBMITTING, None)
    # Its send lease runs out (what waiting past it would do, without the wait).
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())

    job = wait_for_job(job)

    assert job.state == JobState.SUCCEEDED, job.error_message
    assert len(emulator_log(studio["openai"], "create")) == 1
    assert _charges(job) == [job.cost_actual]


def test_a_requeued_delivery_of_a_send_whose_worker_died_takes_it_over_at_once(
    studio, wait_for_job
):
    job = _held_job(studio, "Fog over the harbour.")
    Job.objects.filter(pk=job.pk).update(not_before=None)
    assert pipeline.claim_for_submit(job.pk, delivery="delivery-1") is not None
    held_until = Job.objects.get(pk=job.pk).next_poll_at

    # Celery requeues the delivery of a worker process that died; it comes back to us.
    pipeline.submit(job.pk, delivery="delivery-1")

    job.refresh_from_db()
    assert job.state == JobState.UNKNOWN  # handed to reconciliation, not left to its lease
    assert job.next_poll_at < held_until
    job = wait_for_job(job)
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert len(emulator_log(studio["openai"], "create")) == 1


def test_another_delivery_does_not_take_over_a_send_still_under_way(studio):
    job = _held_job(studio, "Lamps lit one by one.")
    Job.objects.filter(pk=job.pk).update(not_before=None)
    assert pipeline.claim_for_submit(job.pk, delivery="delivery-1") is not None

    pipeline.submit(job.pk, delivery="delivery-2")  # a duplicate message, not a requeue

    job.refresh_from_db()
    assert job.state == JobState.SUBMITTING
    assert job.claimed_by == "delivery-1"
    assert emulator_log(studio["openai"], "create") == []


def test_a_provider_500_on_the_create_is_looked_up_then_sent_once(studio, wait_for_job):
    emulator_control(studio["openai"], "faults", {"faults": [{"op": "create", "kind": "500"}]})
    take = take_create(
        scene=studio_scene(studio, "Kites over the dunes."), account=studio["accounts"]["openai"]
    )

    job = wait_for_job(take.job)

    assert job.state == JobState.SUCCEEDED, job.error_message
    creates = emulator_log(studio["openai"], "create")
    assert [entry["status"] for entry in creates] == [500, 200]
    assert emulator_log(studio["openai"], "list"), "it looked before sending again"
    assert job.provider_job_id == creates[1]["job_id"]
    assert _charges(job) == [job.cost_actual]


def test_a_create_a_non_listing_provider_may_have_taken_still_fails_unpaid(studio, wait_for_job):
    # The relay cannot be asked, so a maybe-accepted create is never sent twice.
    emulator_control(studio["relay"], "faults", {"faults": [{"op": "create", "kind": "500"}]})
    scene = studio_scene(studio, "Dunes.", duration=10, size="720x1280")
    job = wait_for_job(take_create(scene=scene, account=studio["accounts"]["relay"]).job)

    assert (job.state, job.error_code) == (JobState.FAILED, ErrorCode.UNCONFIRMED)
    assert len(emulator_log(studio["relay"], "create")) == 1
    assert _charges(job) == [0]


# --- A download whose worker died ------------------------------------------------------------


def test_a_download_lease_is_renewed_while_bytes_arrive_and_lost_to_a_takeover(settings):
    from jobs.pipeline import _DownloadLease, _LeaseLost
    from tests.jobs.factories import JobFactory

    settings.JOBS_DOWNLOAD_LEASE_SECONDS = 3
    job = JobFactory(state=JobState.DOWNLOADING, claimed_by="delivery-1")
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    lease = _DownloadLease(job, "delivery-1")
    lease._renewed -= 1.0  # a third of the lease has gone by since the last renewal

    lease.renew()

    renewed = Job.objects.get(pk=job.pk).next_poll_at
    assert renewed > timezone.now() + timedelta(seconds=2)
    Job.objects.filter(pk=job.pk).update(claimed_by="delivery-2")  # the sweep's retry took it
    lease._renewed -= 1.0
    with pytest.raises(_LeaseLost):
        lease.renew()


def test_a_requeued_download_delivery_takes_over_at_once(studio, wait_for_job):
    take = take_create(
        scene=studio_scene(studio, "Sails at dusk."), account=studio["accounts"]["openai"]
    )
    job = wait_for_job(take.job)
    assert job.state == JobState.SUCCEEDED
    # Replay the crash: the job back in DOWNLOADING, held by a delivery whose worker died.
    Job.objects.filter(pk=job.pk).update(
        state=JobState.DOWNLOADING,
        claimed_by="delivery-9",
        next_poll_at=timezone.now() + timedelta(minutes=5),
        video="",
    )
    LedgerEntry.objects.filter(job=job).exclude(kind=LedgerEntry.Kind.RESERVE).delete()

    pipeline.download(job.pk, delivery="delivery-8")  # someone else: waits for the lease
    assert Job.objects.get(pk=job.pk).state == JobState.DOWNLOADING
    pipeline.download(job.pk, delivery="delivery-9")  # the same delivery, requeued

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED
    assert job.video
