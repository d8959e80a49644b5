"""Outgoing webhooks: take and cut events, signed per Standard Webhooks, delivered to a real
receiver on 127.0.0.1 with retries, to public addresses only, and only the events an
endpoint asked for."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from jobs.models import JobState
from studio import cut_assembly, cuts, generation, services, webhooks
from studio.models import Cut, Take, WebhookDelivery, WebhookEndpoint
from tests.factories import EpisodeFactory, SceneFactory, TakeFactory
from tests.jobs.factories import JobFactory, studio_scene
from tests.support.cuts import episode_to_cut
from tests.support.webhooks import Receiver, receiving

SECOND_SECRET = "whsec_" + "A" * 43 + "="


def _endpoint(workspace, url: str, events: tuple[str, ...] = ()) -> tuple[WebhookEndpoint, str]:
    from studio.models import Membership, Role

    owner = Membership.objects.filter(workspace=workspace, role=Role.OWNER).first()
    if owner is None:
        from tests.factories import MembershipFactory

        owner = MembershipFactory(workspace=workspace, role=Role.OWNER)
    return webhooks.endpoint_create(
        workspace=workspace, url=url, created_by=owner.user, events=events
    )


def _verified(secret: str, received) -> dict:
    """The event, once its signature checks out with `secret` (raises otherwise)."""
    return Webhook(secret).verify(received.body, received.headers)


def _wait_for_state(delivery: WebhookDelivery, state: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        delivery.refresh_from_db()
        if delivery.state == state:
            return delivery
        assert time.monotonic() < deadline, f"delivery stuck in {delivery.state}"
        time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 that answers 200 to everything."""
    with receiving() as running:
        yield running


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., Receiver]]:
    """Receivers with answers of their own: make_receiver(statuses=(500, 200))."""
    with contextlib.ExitStack() as stack:
        yield lambda **options: stack.enter_context(receiving(**options))


@pytest.fixture
def quick_retries(settings):
    settings.WEBHOOKS_RETRY_SECONDS = (0.1, 0.1)
    return settings


# --- The whole path: a take finishing at the emulator -----------------------------------


def test_a_take_finishing_at_the_emulator_is_announced_signed_to_the_receiver(
    studio, settings, receiver, wait_for_job
):
    settings.JOBS_ENDED_TASKS = ("studio.tasks.take_ended",)
    endpoint, secret = _endpoint(studio["workspace"], receiver.url)
    take = generation.take_create(scene=studio_scene(studio), account=studio["accounts"]["openai"])

    assert wait_for_job(take.job).state == JobState.SUCCEEDED
    (received,) = receiver.wait_for(1)

    event = _verified(secret, received)
    assert event["type"] == "take.succeeded"
    assert event["timestamp"].endswith("Z")
    data = event["data"]
    assert (data["id"], data["scene_id"], data["state"]) == (take.pk, take.scene_id, "succeeded")
    assert data["episode_id"] == studio["episode"].pk
    assert data["series_id"] == studio["episode"].series_id
    assert (data["review_state"], data["is_selected"]) == ("pending", False)
    assert data["cost"] == data["estimate"] == "0.40"  # 4 s at $0.10
    assert data["url"] == f"{settings.PUBLIC_BASE_URL}/api/v1/takes/{take.pk}"
    assert data["video_url"] == f"{settings.PUBLIC_BASE_URL}/api/v1/takes/{take.pk}/content"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["user-agent"] == "Castboard-Webhooks/1"
    assert received.headers["webhook-id"].startswith("msg_")
    delivery = _wait_for_state(endpoint.deliveries.get(), WebhookDelivery.State.DELIVERED)
    assert (delivery.attempts, delivery.last_status) == (1, 200)
    assert delivery.message_id == received.headers["webhook-id"]


# --- Retries ------------------------------------------------------------------------------


def test_a_receiver_answering_500_then_200_gets_the_event_twice_with_one_id(
    celery_worker, workspace, make_receiver, quick_retries
):
    flaky = make_receiver(statuses=(500, 200))
    endpoint, secret = _endpoint(workspace, flaky.url)

    webhooks.endpoint_ping(endpoint=endpoint)

    first, second = flaky.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert _verified(secret, first) == _verified(secret, second)
    delivery = _wait_for_state(endpoint.deliveries.get(), WebhookDelivery.State.DELIVERED)
    assert (delivery.attempts, delivery.last_status, delivery.last_error) == (2, 200, "")
    assert delivery.delivered_at is not None


def test_a_receiver_that_always_fails_is_given_up_after_the_schedule(
    celery_worker, workspace, make_receiver, quick_retries
):
    broken = make_receiver(statuses=(503,), reply=b"x" * 2000)
    endpoint, _ = _endpoint(workspace, broken.url)

    webhooks.endpoint_ping(endpoint=endpoint)

    delivery = _wait_for_state(endpoint.deliveries.get(), WebhookDelivery.State.FAILED)
    assert delivery.attempts == 3  # the first, then one per entry of the schedule
    assert len(broken.received) == 3
    assert delivery.last_status == 503
    assert delivery.last_error == "Answered 503 Service Unavailable."
    assert delivery.last_response == "x" * 500
    assert delivery.next_attempt_at is None
    time.sleep(0.5)
    assert len(broken.received) == 3  # nothing more once given up


def test_a_retry_too_far_ahead_for_the_broker_waits_for_the_sweep(
    db, workspace, make_receiver, settings
):
    settings.WEBHOOKS_RETRY_SECONDS = (settings.CELERY_MAX_TASK_DELAY + 600,)
    broken = make_receiver(statuses=(500,))
    endpoint, _ = _endpoint(workspace, broken.url)
    delivery = webhooks.endpoint_ping(endpoint=endpoint)

    before = timezone.now()
    webhooks.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()

    assert delivery.state == WebhookDelivery.State.PENDING
    wait = (delivery.next_attempt_at - before).total_seconds()
    planned = settings.WEBHOOKS_RETRY_SECONDS[0]
    assert planned <= wait <= planned * 1.1 + 1  # with up to 10% jitter
    assert delivery.claimed_at is None  # in nobody's hands: the sweep sends it when due
    assert webhooks.delivery_send(delivery_id=delivery.pk) is None  # not due: nothing sent
    assert webhooks.deliveries_sweep()["sent"] == []
    assert len(broken.received) == 1


def test_a_redirect_is_not_followed(db, workspace, make_receiver, settings):
    settings.WEBHOOKS_RETRY_SECONDS = ()
    target = make_receiver()
    moved = make_receiver(statuses=(307,), headers={"Location": target.url})
    endpoint, _ = _endpoint(workspace, moved.url)

    delivery = webhooks.delivery_send(delivery_id=webhooks.endpoint_ping(endpoint=endpoint).pk)

    assert delivery.state == WebhookDelivery.State.FAILED
    assert delivery.last_status == 307
    assert "do not follow redirects" in delivery.last_error
    assert len(moved.received) == 1
    assert target.received == []


def test_a_receiver_too_slow_to_answer_is_a_failed_attempt(db, workspace, make_receiver, settings):
    settings.WEBHOOKS_RETRY_SECONDS = ()
    settings.WEBHOOKS_TIMEOUT_SECONDS = 1
    slow = make_receiver(delay=3.0)
    endpoint, _ = _endpoint(workspace, slow.url)

    started = time.monotonic()
    delivery = webhooks.delivery_send(delivery_id=webhooks.endpoint_ping(endpoint=endpoint).pk)

    assert time.monotonic() - started < 2.5
    assert delivery.state == WebhookDelivery.State.FAILED
    assert delivery.last_error == "127.0.0.1 did not answer within 1 s."
    assert delivery.last_status is None


def test_an_attempt_that_breaks_on_our_side_is_recorded_not_left_sending(
    db, workspace, receiver, settings
):
    settings.WEBHOOKS_RETRY_SECONDS = ()
    endpoint, _ = _endpoint(workspace, receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret_encrypted="not a ciphertext")

    delivery = webhooks.delivery_send(delivery_id=webhooks.endpoint_ping(endpoint=endpoint).pk)

    assert delivery.state == WebhookDelivery.State.FAILED
    assert delivery.last_error == webhooks.INTERNAL_ERROR
    assert receiver.received == []


def test_a_second_message_for_a_delivered_event_sends_nothing(db, workspace, receiver):
    endpoint, _ = _endpoint(workspace, receiver.url)
    delivery = webhooks.endpoint_ping(endpoint=endpoint)

    assert webhooks.delivery_send(delivery_id=delivery.pk).state == "delivered"
    assert webhooks.delivery_send(delivery_id=delivery.pk) is None  # a second message

    assert len(receiver.received) == 1


def test_resending_makes_a_new_attempt_with_the_same_message_id(celery_worker, workspace, receiver):
    endpoint, secret = _endpoint(workspace, receiver.url)
    delivery = webhooks.endpoint_ping(endpoint=endpoint)
    _wait_for_state(delivery, WebhookDelivery.State.DELIVERED)

    webhooks.delivery_resend(delivery=delivery)

    first, again = receiver.wait_for(2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == delivery.message_id
    _verified(secret, again)
    delivery = _wait_for_state(delivery, WebhookDelivery.State.DELIVERED)
    assert delivery.attempts == 2


# --- The sweep: nothing is lost with a message --------------------------------------------


def test_the_sweep_sends_a_due_delivery_whose_message_was_lost(celery_worker, workspace, receiver):
    endpoint, secret = _endpoint(workspace, receiver.url)
    lost = WebhookDelivery.objects.create(
        endpoint=endpoint,
        message_id="msg_lost",
        event_type="ping",
        payload={"type": "ping", "timestamp": "2026-01-01T00:00:00Z", "data": {}},
        next_attempt_at=timezone.now(),
    )

    swept = webhooks.deliveries_sweep()

    assert swept["sent"] == [lost.pk]
    (received,) = receiver.wait_for(1)
    assert received.headers["webhook-id"] == "msg_lost"
    _verified(secret, received)
    assert _wait_for_state(lost, WebhookDelivery.State.DELIVERED).attempts == 1


def test_the_sweep_takes_back_an_attempt_whose_worker_died(
    celery_worker, workspace, receiver, settings
):
    endpoint, _ = _endpoint(workspace, receiver.url)
    long_ago = timezone.now() - timedelta(seconds=settings.WEBHOOKS_LEASE_SECONDS + 1)
    stuck = WebhookDelivery.objects.create(
        endpoint=endpoint,
        message_id="msg_stuck",
        event_type="ping",
        payload={"type": "ping", "timestamp": "2026-01-01T00:00:00Z", "data": {}},
        state=WebhookDelivery.State.SENDING,
        attempts=1,
        claimed_at=long_ago,
        next_attempt_at=long_ago,
    )

    swept = webhooks.deliveries_sweep()

    assert swept == {"reclaimed": [stuck.pk], "sent": [stuck.pk], "caught_up": []}
    receiver.wait_for(1)
    assert _wait_for_state(stuck, WebhookDelivery.State.DELIVERED).attempts == 2


def test_the_sweep_leaves_a_delivery_already_handed_to_the_queue(db, workspace, receiver):
    endpoint, _ = _endpoint(workspace, receiver.url)
    webhooks.endpoint_ping(endpoint=endpoint)  # its message goes out on commit

    assert webhooks.deliveries_sweep() == {"reclaimed": [], "sent": [], "caught_up": []}


def test_the_sweep_forgets_finished_deliveries_after_the_keeping_time(db, workspace, settings):
    settings.WEBHOOKS_KEEP_DAYS = 30
    endpoint, _ = _endpoint(workspace, "http://127.0.0.1:9/hooks")
    kept = {}
    for state in ("delivered", "failed", "pending"):
        for age in (29, 31):
            delivery = webhooks.endpoint_ping(endpoint=endpoint)
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                state=state,
                created_at=timezone.now() - timedelta(days=age),
                next_attempt_at=timezone.now() + timedelta(hours=1),
            )
            kept[(state, age)] = delivery.pk

    webhooks.deliveries_sweep()

    left = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert left == {kept[key] for key in kept if key[1] == 29 or key[0] == "pending"}


# --- Addresses ----------------------------------------------------------------------------


def test_an_endpoint_at_a_private_address_is_refused(db, workspace, settings):
    settings.PROVIDER_ALLOWED_NETWORKS = []
    with pytest.raises(ValidationError) as refused:
        _endpoint(workspace, "http://10.0.0.1/hooks")
    assert refused.value.message_dict["url"] == [
        "10.0.0.1 is on a private network; Castboard only sends webhooks to public addresses."
    ]
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_whose_address_became_private_is_never_contacted(
    db, workspace, receiver, settings
):
    endpoint, _ = _endpoint(workspace, receiver.url)  # allowed while tests open loopback
    delivery = webhooks.endpoint_ping(endpoint=endpoint)
    settings.PROVIDER_ALLOWED_NETWORKS = []

    delivery = webhooks.delivery_send(delivery_id=delivery.pk)

    assert delivery.state == WebhookDelivery.State.FAILED  # no retry can make it public
    assert "127.0.0.1 is on a private network" in delivery.last_error
    assert delivery.last_status is None
    assert receiver.received == []


def test_an_address_with_a_password_or_another_scheme_is_refused(db, workspace):
    for url, reason in (
        ("ftp://example.com/hooks", "Give an address that starts with https://"),
        ("https://user:pw@example.com/hooks", "Leave the user name and password out"),
        ("http://localhost:8000/hooks", "localhost is on a private network"),
    ):
        with pytest.raises(ValidationError) as refused:
            _endpoint(workspace, url)
        assert reason in refused.value.message_dict["url"][0]


# --- Signing ------------------------------------------------------------------------------


def test_a_wrong_secret_or_a_changed_body_fails_verification(db, workspace, receiver):
    endpoint, secret = _endpoint(workspace, receiver.url)
    webhooks.delivery_send(delivery_id=webhooks.endpoint_ping(endpoint=endpoint).pk)
    (received,) = receiver.wait_for(1)

    assert _verified(secret, received)["type"] == "ping"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECOND_SECRET).verify(received.body, received.headers)
    changed = received.body.replace(b"A test event", b"A fake event")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(changed, received.headers)


def test_the_secret_is_stored_encrypted_and_in_the_standard_format(db, workspace, receiver):
    endpoint, secret = _endpoint(workspace, receiver.url)
    assert secret.startswith("whsec_")
    assert len(Webhook(secret)._whsecret) == 32
    assert secret not in endpoint.secret_encrypted
    assert webhooks.endpoint_secret(WebhookEndpoint.objects.get()) == secret
    assert _endpoint(workspace, receiver.url)[1] != secret  # each endpoint its own


# --- Which events, and when -----------------------------------------------------------------


def test_an_endpoint_gets_only_the_events_it_asked_for(db, workspace, receiver):
    cuts_only, _ = _endpoint(workspace, receiver.url, events=("cut.ready",))
    everything, _ = _endpoint(workspace, receiver.url)
    take = TakeFactory(scene=SceneFactory(episode=EpisodeFactory(series__workspace=workspace)))
    cut = Cut.objects.create(episode=take.scene.episode, number=1, state=Cut.State.DONE)

    webhooks.take_ended(job_id=take.job_id, state=JobState.SUCCEEDED)
    webhooks.cut_event(cut_id=cut.pk, event_type="cut.ready")

    assert list(cuts_only.deliveries.values_list("event_type", flat=True)) == ["cut.ready"]
    assert sorted(everything.deliveries.values_list("event_type", flat=True)) == [
        "cut.ready",
        "take.succeeded",
    ]
    # One event, one message id at every endpoint that wants it.
    assert (
        len(
            set(
                WebhookDelivery.objects.filter(event_type="cut.ready").values_list(
                    "message_id", flat=True
                )
            )
        )
        == 1
    )


def test_a_disabled_endpoint_gets_nothing(db, workspace, receiver):
    endpoint, _ = _endpoint(workspace, receiver.url)
    webhooks.endpoint_set_enabled(endpoint=endpoint, enabled=False)
    take = TakeFactory(scene=SceneFactory(episode=EpisodeFactory(series__workspace=workspace)))

    assert webhooks.take_ended(job_id=take.job_id, state=JobState.SUCCEEDED) == []
    with pytest.raises(ValidationError):
        webhooks.endpoint_ping(endpoint=endpoint)


def test_failed_and_cancelled_takes_are_announced_once_each(db, workspace, receiver):
    endpoint, _ = _endpoint(workspace, receiver.url)
    scene = SceneFactory(episode=EpisodeFactory(series__workspace=workspace))
    failed = TakeFactory(scene=scene, state=JobState.FAILED, job__error_message="Refused.")
    cancelled = TakeFactory(scene=scene, state=JobState.CANCELLED)

    webhooks.take_ended(job_id=failed.job_id, state=JobState.FAILED)
    webhooks.take_ended(job_id=failed.job_id, state=JobState.FAILED)  # a redelivered message
    webhooks.take_ended(job_id=cancelled.job_id, state=JobState.CANCELLED)

    events = {d.event_type: d.payload["data"] for d in endpoint.deliveries.all()}
    assert endpoint.deliveries.count() == 2
    assert events["take.failed"]["id"] == failed.pk
    assert events["take.failed"]["error"] == "Refused."
    assert events["take.failed"]["video_url"] is None
    assert events["take.cancelled"]["id"] == cancelled.pk


def test_a_job_without_a_take_announces_nothing(db, workspace, receiver):
    _endpoint(workspace, receiver.url)
    job = JobFactory(provider_account__workspace=workspace, workspace=workspace)

    assert webhooks.take_ended(job_id=job.pk, state=JobState.SUCCEEDED) == []
    assert not WebhookDelivery.objects.exists()


def test_reviewing_and_selecting_a_take_are_announced(db, workspace, members, receiver):
    endpoint, _ = _endpoint(workspace, receiver.url)
    take = TakeFactory(scene=SceneFactory(episode=EpisodeFactory(series__workspace=workspace)))

    services.take_review(takes=[take], state="approved", reviewer=members["reviewer"])
    services.take_select(take=take)

    reviewed = endpoint.deliveries.get(event_type="take.reviewed").payload
    selected = endpoint.deliveries.get(event_type="take.selected").payload
    assert (reviewed["type"], reviewed["data"]["id"]) == ("take.reviewed", take.pk)
    assert reviewed["data"]["review_state"] == "approved"
    assert selected["data"]["is_selected"] is True


def test_a_review_that_rolls_back_announces_nothing(db, workspace, members, receiver):
    endpoint, _ = _endpoint(workspace, receiver.url)
    take = TakeFactory(scene=SceneFactory(episode=EpisodeFactory(series__workspace=workspace)))

    def review_then_fail() -> None:
        with transaction.atomic():
            services.take_review(takes=[take], state="approved", reviewer=members["reviewer"])
            raise RuntimeError("the request failed after the review")

    with pytest.raises(RuntimeError):
        review_then_fail()

    assert not endpoint.deliveries.exists()


def test_the_body_sent_is_the_stored_event(db, workspace, receiver):
    endpoint, _ = _endpoint(workspace, receiver.url)
    delivery = webhooks.endpoint_ping(endpoint=endpoint)
    webhooks.delivery_send(delivery_id=delivery.pk)

    (received,) = receiver.wait_for(1)
    assert json.loads(received.body) == delivery.payload
    assert received.path == "/hooks/castboard"


def test_a_cut_assembled_or_failed_is_announced(db, workspace, owner, receiver):
    endpoint, _ = _endpoint(workspace, receiver.url, events=("cut.ready", "cut.failed"))
    ready = episode_to_cut(workspace, seconds=(1.0,))
    broken = episode_to_cut(workspace, seconds=(1.0,))
    take = Take.objects.get(scene__episode=broken)
    default_storage.delete(take.job.video.name)  # lost from storage: the assembly fails

    for episode in (ready, broken):
        cut = cuts.cut_start(episode=episode, options=cuts.CutOptions(), user=owner)
        cut_assembly.cut_assemble(cut_id=cut.pk)

    events = {d.payload["data"]["episode_id"]: d.payload for d in endpoint.deliveries.all()}
    done, failed = events[ready.pk], events[broken.pk]
    assert done["type"] == "cut.ready"
    assert (done["data"]["state"], done["data"]["number"]) == ("done", 1)
    assert done["data"]["duration"] == Cut.objects.get(episode=ready).duration > 1.0
    ready_cut = Cut.objects.get(episode=ready)
    assert done["data"]["url"].endswith(f"/api/v1/cuts/{ready_cut.pk}")
    assert done["data"]["video_url"].endswith(f"/api/v1/cuts/{ready_cut.pk}/files/video")
    assert failed["type"] == "cut.failed"
    assert failed["data"]["state"] == "failed"
    assert failed["data"]["message"] == "Scene 1's take is missing its video file."
    assert failed["data"]["video_url"] is None


def test_a_retry_schedule_that_is_not_whole_numbers_stops_the_process_by_name(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from studio.project.env import env_int_list

    monkeypatch.setenv("WEBHOOKS_RETRY_SECONDS", "5, 300, 30m")
    with pytest.raises(ImproperlyConfigured, match="WEBHOOKS_RETRY_SECONDS must list whole"):
        env_int_list("WEBHOOKS_RETRY_SECONDS", [5], minimum=0)
    monkeypatch.setenv("WEBHOOKS_RETRY_SECONDS", "5, 300 ,1800")
    assert env_int_list("WEBHOOKS_RETRY_SECONDS", [5], minimum=0) == [5, 300, 1800]


def test_a_take_end_whose_announcement_was_lost_is_caught_up_once_by_the_sweep(
    db, workspace, receiver
):
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import Job

    endpoint, _ = _endpoint(workspace, receiver.url)
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(created_at=now - timedelta(hours=3))
    scene = SceneFactory(episode=EpisodeFactory(series__workspace=workspace))
    lost = TakeFactory(scene=scene, state=JobState.SUCCEEDED)
    long_ago = TakeFactory(scene=scene, state=JobState.FAILED)
    Job.objects.filter(pk=lost.job_id).update(finished_at=now - timedelta(minutes=5))
    Job.objects.filter(pk=long_ago.job_id).update(finished_at=now - timedelta(hours=2))
    newer, _ = _endpoint(workspace, receiver.url)  # made after the take ended

    caught_up = webhooks.deliveries_sweep()["caught_up"]

    delivery = WebhookDelivery.objects.get(pk__in=caught_up)
    assert (delivery.endpoint, delivery.event_type) == (endpoint, "take.succeeded")
    assert delivery.payload["data"]["id"] == lost.pk
    assert not newer.deliveries.exists()
    # Once only: another pass, or the announcement arriving late, adds nothing.
    assert webhooks.deliveries_sweep()["caught_up"] == []
    assert webhooks.take_ended(job_id=lost.job_id, state=JobState.SUCCEEDED) == []
    assert endpoint.deliveries.count() == 1
