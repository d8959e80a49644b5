"""The pipeline end to end: a real Celery worker on a real Redis, emulators over real HTTP.

Each test makes takes through the studio's service and watches what a user and
the provider observe: the job's state and files, and the requests the emulator
received.
"""

from __future__ import annotations

import base64
from decimal import Decimal

import av
import httpx
import pytest
from django.core.files.storage import default_storage

from jobs.models import ErrorCode, Job, LedgerEntry, Registration, WebhookEvent
from studio.generation import take_create, take_derive
from tests.jobs.factories import studio_scene
from tests.support.emulators import emulator_control, emulator_log, emulator_state

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_an_openai_take_is_generated_downloaded_and_priced(studio, wait_for_job):
    take = take_create(
        scene=studio_scene(studio, "@mina walks in."), account=studio["accounts"]["openai"]
    )
    job = wait_for_job(take.job)
    assert job.state == "succeeded", job.error_message
    with default_storage.open(job.video.name, "rb") as stored, av.open(stored) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
    assert default_storage.exists(job.thumbnail.name)
    assert default_storage.exists(job.spritesheet.name)
    assert job.result["duration"] == pytest.approx(4, abs=0.3)
    assert job.cost_actual == Decimal("0.4000")
    # What was sent: the character's name in the prompt, its provider id alongside.
    registration = Registration.objects.get(subject=f"character:{studio['mina'].pk}")
    assert job.sent_payload["prompt"] == "Mina walks in."
    assert job.sent_payload["characters"] == [{"id": registration.external_id}]
    assert len(emulator_log(studio["openai"], "create")) == 1


def test_a_character_is_registered_once_and_reused(studio, wait_for_job):
    account = studio["accounts"]["openai"]
    first = take_create(scene=studio_scene(studio, "@mina waves."), account=account)
    wait_for_job(first.job)
    second = take_create(scene=studio_scene(studio, "@mina sits."), account=account)
    assert wait_for_job(second.job).state == "succeeded"
    assert emulator_state(studio["openai"])["characters"] == 1
    assert Registration.objects.count() == 1


def test_a_character_the_provider_lost_is_registered_again(studio, wait_for_job):
    account = studio["accounts"]["openai"]
    first = take_create(scene=studio_scene(studio, "@mina waves."), account=account)
    wait_for_job(first.job)
    emulator_control(studio["openai"], "reset", {})  # the provider forgets everything it had
    second = take_create(scene=studio_scene(studio, "@mina sits."), account=account)
    job = wait_for_job(second.job)
    assert job.state == "succeeded", job.error_message
    old, new = Registration.objects.order_by("created_at")
    assert old.status == "failed"
    assert "not found" in old.error_message
    assert new.status == "active"
    assert emulator_state(studio["openai"])["characters"] == 1  # known there again, once


def test_a_relay_take_mentions_the_relays_character_id(studio, wait_for_job):
    scene = studio_scene(studio, "@mina on the jetty.", duration=10, size="720x1280")
    take = take_create(scene=scene, account=studio["accounts"]["relay"])
    job = wait_for_job(take.job)
    assert job.state == "succeeded", job.error_message
    registration = Registration.objects.get(provider_account=studio["accounts"]["relay"])
    assert registration.external_id.startswith("char_")
    assert job.sent_payload == {
        "prompt": f"@{registration.external_id} on the jetty.",
        "duration": 10,
    }
    assert job.cost_actual == Decimal("0.12")  # flat, whatever the length
    assert job.result["width"] == 720


def test_moderation_is_terminal_and_says_so_in_plain_words(studio, wait_for_job):
    prompt = "A harbour at night [[emulate:moderation]]"
    take = take_create(scene=studio_scene(studio, prompt), account=studio["accounts"]["openai"])
    job = wait_for_job(take.job)
    assert (job.state, job.error_code) == ("failed", ErrorCode.MODERATION)
    assert "moderation blocked this video" in job.error_message
    assert job.job_request.request.prompt == prompt  # the prompt is kept for editing
    assert not job.video
    assert len(emulator_log(studio["openai"], "create")) == 1


def test_a_rate_limited_create_waits_as_asked_and_is_accepted_once(studio, wait_for_job):
    emulator_control(
        studio["openai"], "faults", {"faults": [{"op": "create", "kind": "429", "retry_after": 1}]}
    )
    take = take_create(
        scene=studio_scene(studio, "A lighthouse."), account=studio["accounts"]["openai"]
    )
    job = wait_for_job(
        take.job, states=("pending",), until=lambda j: j.error_code == ErrorCode.RATE_LIMIT
    )
    assert "Waiting to retry" in job.error_message
    assert job.not_before is not None
    waited_until = job.not_before
    job = wait_for_job(job)
    assert job.state == "succeeded"
    assert job.submitted_at >= waited_until  # sent again only after the provider's wait
    assert job.error_message == ""  # the waiting note is gone once it went through
    creates = emulator_log(studio["openai"], "create")
    assert [entry["status"] for entry in creates] == [429, 200]


def test_a_timed_out_create_is_found_at_the_provider_not_sent_again(studio, wait_for_job, settings):
    settings.JOBS_PROVIDER_TIMEOUT_SECONDS = 1
    emulator_control(
        studio["openai"],
        "faults",
        {"faults": [{"op": "create", "kind": "timeout", "timeout_seconds": 3}]},
    )
    take = take_create(
        scene=studio_scene(studio, "A storm rolls in."), account=studio["accounts"]["openai"]
    )
    job = wait_for_job(take.job)
    assert job.state == "succeeded", job.error_message
    creates = emulator_log(studio["openai"], "create")
    assert len(creates) == 1
    assert job.provider_job_id == creates[0]["job_id"]


def test_a_relay_create_that_times_out_fails_without_being_sent_again(
    studio, wait_for_job, settings
):
    settings.JOBS_PROVIDER_TIMEOUT_SECONDS = 1
    emulator_control(
        studio["relay"],
        "faults",
        {"faults": [{"op": "create", "kind": "timeout", "timeout_seconds": 3}]},
    )
    scene = studio_scene(studio, "Fog.", duration=10, size="720x1280")
    job = wait_for_job(take_create(scene=scene, account=studio["accounts"]["relay"]).job)
    assert (job.state, job.error_code) == ("failed", ErrorCode.UNCONFIRMED)
    assert "not sent again" in job.error_message
    assert len(emulator_log(studio["relay"], "create")) == 1


def test_poll_errors_back_off_and_the_job_still_finishes(studio, wait_for_job):
    emulator_control(
        studio["openai"], "faults", {"faults": [{"op": "retrieve", "kind": "500", "times": 2}]}
    )
    take = take_create(scene=studio_scene(studio, "Gulls."), account=studio["accounts"]["openai"])
    assert wait_for_job(take.job).state == "succeeded"
    statuses = [entry["status"] for entry in emulator_log(studio["openai"], "retrieve")]
    assert statuses[:2] == [500, 500]


def test_an_outage_at_submit_keeps_the_job_waiting_unpaid(studio, wait_for_job):
    emulator_control(studio["openai"], "config", {"outage": True})
    take = take_create(scene=studio_scene(studio, "Rain."), account=studio["accounts"]["openai"])
    job = wait_for_job(take.job, states=("pending",), until=lambda j: j.attempts > 0)
    assert job.error_code == ErrorCode.PROVIDER_ERROR
    assert "Waiting to retry" in job.error_message
    emulator_control(studio["openai"], "config", {"outage": False})
    assert wait_for_job(job).state == "succeeded"


def test_cancelling_a_running_openai_take_abandons_it_and_keeps_its_estimate_charged(
    studio, wait_for_job
):
    from jobs.services import Cancelled, job_cancel

    emulator_control(studio["openai"], "config", {"latency_seconds": 30})
    take = take_create(scene=studio_scene(studio, "Waves."), account=studio["accounts"]["openai"])
    job = wait_for_job(take.job, states=("queued", "running"))
    assert job_cancel(job=job) == Cancelled.ABANDONED
    job.refresh_from_db()
    assert job.state == "cancelled"
    assert job.error_code == ErrorCode.ABANDONED
    assert "cannot stop a video once it is under way" in job.error_message
    # The Videos API cannot stop it, so nothing was asked of it, and it may still bill.
    assert not emulator_log(studio["openai"], "delete")
    charge = job.ledger_entries.get(kind=LedgerEntry.Kind.CHARGE)
    assert charge.amount == job.cost_estimate > 0


def test_remix_and_extension_of_a_finished_take(studio, wait_for_job):
    parent = take_create(scene=studio_scene(studio, "Dawn."), account=studio["accounts"]["openai"])
    wait_for_job(parent.job)
    remix = take_derive(parent=parent, kind="remix", prompt="Dusk instead.")
    extension = take_derive(parent=parent, kind="extend", prompt="Then night falls.", seconds=4)
    remixed, extended = wait_for_job(remix.job), wait_for_job(extension.job)
    assert (remixed.state, extended.state) == ("succeeded", "succeeded")
    assert remixed.sent_payload == {"prompt": "Dusk instead."}
    assert extended.result["duration"] == pytest.approx(8, abs=0.3)  # the stitched total
    assert remix.parent == extension.parent == parent


# --- Webhooks ---------------------------------------------------------------

SECRET = "whsec_" + base64.b64encode(b"castboard-test-webhook-key!").decode()


@pytest.fixture
def webhooks_on(studio, live_server, settings):
    settings.JOBS_WEBHOOK_SAFETY_POLL_SECONDS = 600
    account = studio["accounts"]["openai"]
    account.set_webhook_secret(SECRET)
    account.save()
    emulator_control(
        studio["openai"],
        "config",
        {
            "webhook_url": f"{live_server.url}/hooks/{account.webhook_token}/",
            "webhook_secret": SECRET,
        },
    )
    return account


def test_with_webhooks_a_job_finishes_without_polling(studio, webhooks_on, wait_for_job):
    take = take_create(scene=studio_scene(studio, "Lanterns."), account=webhooks_on)
    job = wait_for_job(take.job)
    assert job.state == "succeeded"
    assert job.poll_count == 0
    assert emulator_log(studio["openai"], "retrieve") == []
    assert WebhookEvent.objects.filter(event_type="video.completed").count() == 1


def test_a_failure_webhook_reads_the_reason_from_the_provider(studio, webhooks_on, wait_for_job):
    prompt = "Thunder [[emulate:moderation]]"
    job = wait_for_job(take_create(scene=studio_scene(studio, prompt), account=webhooks_on).job)
    assert (job.state, job.error_code) == ("failed", ErrorCode.MODERATION)
    assert job.poll_count == 1
    assert WebhookEvent.objects.filter(event_type="video.failed").count() == 1


def test_a_replayed_webhook_has_one_effect(studio, webhooks_on, wait_for_job):
    emulator_control(studio["openai"], "config", {"webhook_duplicates": 3})
    take = take_create(scene=studio_scene(studio, "Bells."), account=webhooks_on)
    job = wait_for_job(take.job)
    deliveries = emulator_state(studio["openai"])["webhooks"]["deliveries"]
    assert len(deliveries) >= 3
    assert WebhookEvent.objects.count() == 1
    assert job.state == "succeeded"
    assert len(emulator_log(studio["openai"], "content")) == 1  # downloaded once


def test_a_forged_webhook_is_rejected_and_changes_nothing(studio, webhooks_on, live_server):
    url = f"{live_server.url}/hooks/{webhooks_on.webhook_token}/"
    body = b'{"id": "evt_x", "type": "video.completed", "data": {"id": "video_x"}}'
    forged = {"webhook-id": "evt_x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"}
    response = httpx.post(url, content=body, headers=forged)
    assert response.status_code == 400
    assert httpx.post(f"{live_server.url}/hooks/not-a-token/", content=body).status_code == 404
    assert WebhookEvent.objects.count() == 0
    assert not Job.objects.exists()


# --- Characters from takes ---------------------------------------------------


@pytest.mark.parametrize(
    ("account", "scene_fields"),
    [("openai", {}), ("relay", {"duration": 10, "size": "720x1280"})],
)
def test_a_span_of_a_finished_take_becomes_a_registered_character(
    studio, wait_for_job, account, scene_fields
):
    from characters.models import Character
    from studio.generation import character_from_take

    take = take_create(
        scene=studio_scene(studio, "A stranger.", **scene_fields),
        account=studio["accounts"][account],
    )
    wait_for_job(take.job)
    stranger = Character.objects.create(
        workspace=studio["workspace"], name="Stranger", handle="stranger"
    )
    made = character_from_take(take=take, character=stranger, start=0.5, end=3.0)
    assert made.clip.kind == "clip"
    assert made.clip.duration_seconds == pytest.approx(2.5, abs=0.3)
    assert [still.kind for still in made.stills] == ["image"] * 3
    job = wait_for_job(made.registration)
    assert job.state == "succeeded", job.error_message
    registration = Registration.objects.get(subject=f"character:{stranger.pk}")
    assert job.result["external_id"] == registration.external_id
    # The new character is usable at once in that provider's scenes.
    later = take_create(
        scene=studio_scene(studio, "@stranger returns.", **scene_fields),
        account=studio["accounts"][account],
    )
    assert wait_for_job(later.job).state == "succeeded"
    assert registration.external_id in str(later.job.sent_payload)  # id or @id


def test_a_span_outside_the_providers_window_is_refused(studio, wait_for_job):
    from django.core.exceptions import ValidationError

    from characters.models import Character
    from studio.generation import character_from_take

    take = take_create(scene=studio_scene(studio, "Fog."), account=studio["accounts"]["openai"])
    wait_for_job(take.job)
    pip = Character.objects.create(workspace=studio["workspace"], name="Pip", handle="pipx")
    with pytest.raises(ValidationError, match="Choose a span of 2 to 4 seconds"):
        character_from_take(take=take, character=pip, start=0, end=1)


def test_takes_submitted_together_register_their_character_once(studio):
    import threading

    from django.db import connection

    from jobs.pipeline import ensure_registrations
    from jobs.providers import provider_for
    from studio.generation import scene_compile

    account = studio["accounts"]["openai"]
    # Jobs made directly (nothing enqueued), so only these four threads register.
    jobs = [
        Job.objects.create(
            workspace=studio["workspace"],
            provider_account=account,
            request=scene_compile(
                scene=studio_scene(studio, f"@mina, shot {n}."), account=account
            ).fitted.to_dict(),
            state="submitting",
        )
        for n in range(4)
    ]
    barrier, found, errors = threading.Barrier(4), [], []

    def submit_at_once(job: Job) -> None:
        try:
            barrier.wait()
            with provider_for(job.provider_account) as provider:
                found.append(ensure_registrations(job, provider))
        except Exception as error:  # reported in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit_at_once, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert emulator_state(studio["openai"])["characters"] == 1
    assert len({m[f"character:{studio['mina'].pk}"].external_id for m in found}) == 1
