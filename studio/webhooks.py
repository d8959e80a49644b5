"""Outgoing webhooks: a workspace's take and cut events, signed per Standard Webhooks and
delivered to the endpoints that want them, with retries.

An event becomes one WebhookDelivery row per enabled endpoint that wants it, written in the
caller's transaction (so a change that rolls back announces nothing), and is sent once that
transaction commits. The row is the outbox: it says when the next attempt is due, and the
beat sweep sends whatever is due, so a message lost with Redis loses no event. All the
endpoints of one event share its message id (`webhook-id`), and every attempt repeats it,
so a receiver can drop what it has already seen.

A worker claims a delivery with a conditional UPDATE (PENDING and due → SENDING), so two
messages for one delivery never send it twice. While a delivery is PENDING, `claimed_at`
says when it was last handed to the queue; a SENDING one's says when its attempt began,
and one older than the lease (its worker died) is taken back by the sweep.

The destination is someone else's choice, like a provider's base URL: it is checked when it
is saved and again at every connection (jobs.providers.transport), private and loopback
addresses are refused (an operator opens networks with PROVIDER_ALLOWED_NETWORKS),
redirects are not followed, and each attempt has a short deadline.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from characters.fetch import Deadline
from jobs import netguard
from jobs.crypto import decrypt_secret, encrypt_secret
from jobs.dispatch import BROKER_ERRORS, send_named
from jobs.models import JobState
from jobs.providers import transport
from studio.costs import dollars
from studio.models import (
    WEBHOOK_EVENTS,
    Cut,
    Membership,
    Role,
    Take,
    WebhookDelivery,
    WebhookEndpoint,
    Workspace,
)

log = logging.getLogger(__name__)

DELIVER_TASK = "studio.tasks.deliver_webhook"
PING = "ping"
EVENT_TYPES = tuple(name for name, _ in WEBHOOK_EVENTS)
# The job's end state, by the take event it makes.
ENDED_EVENTS = {
    JobState.SUCCEEDED: "take.succeeded",
    JobState.FAILED: "take.failed",
    JobState.CANCELLED: "take.cancelled",
}
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
USER_AGENT = "Castboard-Webhooks/1"
RESPONSE_KEPT = 500  # characters of a receiver's answer kept for the log
_READ_AT_MOST = RESPONSE_KEPT * 4  # bytes: enough for 500 characters of any UTF-8
# The sweep catches up the end events of takes that ended this recently (and at least
# TAKE_ENDS_SETTLE ago, so the announcement itself has had its chance).
TAKE_ENDS_CAUGHT_UP = timedelta(hours=1)
TAKE_ENDS_SETTLE = timedelta(seconds=30)
PRIVATE = "{where} is on a private network; Castboard only sends webhooks to public addresses."
INTERNAL_ERROR = "Not sent because of a problem on our side (it has been logged)."


# --- Endpoints -----------------------------------------------------------------------------


def endpoint_url_problem(url: str) -> str | None:
    """Why webhooks may not be sent to `url`, or None. Checked when it is saved; every
    connection is checked again when it is made (a name may resolve elsewhere later)."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError):
        return "Give the address that should receive the events, e.g. https://example.com/hooks."
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "Give an address that starts with https:// (or http://)."
    if parsed.userinfo:
        return "Leave the user name and password out of the address; events are signed instead."
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        netguard.check_url_host(
            parsed.host, port, allowed=transport.allowed_networks(), refusal=PRIVATE
        )
    except netguard.AddressRefused as refused:
        return refused.message
    return None


def _new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _clean_events(events: list[str] | tuple[str, ...]) -> list[str]:
    unknown = [event for event in events if event not in EVENT_TYPES]
    if unknown:
        raise ValidationError({"events": f"“{unknown[0]}” is not an event Castboard sends."})
    return [event for event in EVENT_TYPES if event in events]  # in the catalogue's order


def endpoint_create(
    *,
    workspace: Workspace,
    url: str,
    created_by: AbstractBaseUser,
    description: str = "",
    events: list[str] | tuple[str, ...] = (),
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (`whsec_…`), which is stored encrypted and
    shown only this once. No events chosen means every event."""
    url = url.strip()
    max_length = WebhookEndpoint._meta.get_field("url").max_length
    problem = (
        f"Use an address of at most {max_length} characters."
        if len(url) > max_length
        else endpoint_url_problem(url)
    )
    if problem:
        raise ValidationError({"url": problem})
    chosen = _clean_events(events)
    role = (
        Membership.objects.filter(workspace=workspace, user=created_by)
        .values_list("role", flat=True)
        .first()
    )
    if role != Role.OWNER:
        raise ValidationError("Only an owner of the workspace can add webhook endpoints.")
    secret = _new_secret()
    endpoint = WebhookEndpoint.objects.create(
        workspace=workspace,
        url=url,
        description=description.strip(),
        events=chosen,
        secret_encrypted=encrypt_secret(secret),
        created_by=created_by,
    )
    return endpoint, secret


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    return decrypt_secret(endpoint.secret_encrypted)


def endpoint_set_enabled(*, endpoint: WebhookEndpoint, enabled: bool) -> WebhookEndpoint:
    """Turn an endpoint off (events are no longer queued for it, and retries wait) or back
    on (retries that fell due meanwhile go out with the next sweep)."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=enabled)
    endpoint.enabled = enabled
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Remove an endpoint with its delivery log; nothing more is sent to it."""
    endpoint.delete()


# --- Events --------------------------------------------------------------------------------


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _absolute(path: str) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def take_data(take: Take) -> dict[str, Any]:
    """A take as events describe it (the `data` of take.* events)."""
    job, episode = take.job, take.scene.episode
    video_url = None
    if job.state == JobState.SUCCEEDED and job.video:
        # The API's download, with the same token a script reads the take with.
        video_url = _absolute(reverse("api:take_content", kwargs={"take_id": take.pk}))
    return {
        "id": take.pk,
        "scene_id": take.scene_id,
        "episode_id": episode.pk,
        "series_id": episode.series_id,
        "state": job.state,
        "review_state": take.review_state,
        "is_selected": take.is_selected,
        # Dollars, as the API writes them: what it was charged once it ended (None before),
        # and what it reserved when it was asked for.
        "cost": dollars(job.cost_actual),
        "estimate": dollars(job.cost_estimate),
        "error": job.error_message,
        "url": _absolute(reverse("api:take_detail", kwargs={"take_id": take.pk})),
        "video_url": video_url,
    }


def cut_data(cut: Cut) -> dict[str, Any]:
    """A cut as events describe it (the `data` of cut.* events)."""
    video_url = None
    if cut.state == Cut.State.DONE and cut.video:
        video_url = _absolute(
            reverse("api:cut_file", kwargs={"cut_id": cut.pk, "variant": "video"})
        )
    return {
        "id": cut.pk,
        "number": cut.number,
        "episode_id": cut.episode_id,
        "series_id": cut.episode.series_id,
        "state": cut.state,
        "duration": cut.duration,
        "message": cut.message,
        "url": _absolute(reverse("api:cut_detail", kwargs={"cut_id": cut.pk})),
        "video_url": video_url,
    }


def event_emit(
    *,
    workspace_id: int,
    event_type: str,
    data: dict[str, Any],
    endpoints: list[WebhookEndpoint] | None = None,
    message_id: str | None = None,
) -> list[WebhookDelivery]:
    """Queue one event for every enabled endpoint of the workspace that wants it.

    The rows are written in the caller's transaction and sent when it commits. `endpoints`
    narrows the event to those (the studio's test event goes to one endpoint only). A
    `message_id` given by the caller makes the event once only: an endpoint that already
    has it gets nothing more.
    """
    if endpoints is None:
        endpoints = [
            endpoint
            for endpoint in WebhookEndpoint.objects.filter(workspace_id=workspace_id, enabled=True)
            if endpoint.wants(event_type)
        ]
    if not endpoints:
        return []
    now = timezone.now()
    if message_id is None:
        message_id = new_message_id()
    else:
        had = set(
            WebhookDelivery.objects.filter(
                message_id=message_id, endpoint__in=endpoints
            ).values_list("endpoint_id", flat=True)
        )
        endpoints = [endpoint for endpoint in endpoints if endpoint.pk not in had]
    payload = {"type": event_type, "timestamp": _timestamp(now), "data": data}
    deliveries = [
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            message_id=message_id,
            event_type=event_type,
            payload=payload,
            next_attempt_at=now,
        )
        for endpoint in endpoints
    ]
    _send_on_commit([delivery.pk for delivery in deliveries])
    return deliveries


def _takes_where(**lookups: Any):
    return Take.objects.filter(**lookups).select_related("job", "scene__episode__series__workspace")


def takes_event(*, event_type: str, take_ids: list[int]) -> int:
    """One event per take (take.reviewed, take.selected); how many were queued."""
    queued = 0
    endpoints: dict[int, list[WebhookEndpoint]] = {}
    for take in _takes_where(pk__in=take_ids):
        workspace_id = take.scene.episode.series.workspace_id
        if workspace_id not in endpoints:
            endpoints[workspace_id] = [
                endpoint
                for endpoint in WebhookEndpoint.objects.filter(
                    workspace_id=workspace_id, enabled=True
                )
                if endpoint.wants(event_type)
            ]
        if endpoints[workspace_id]:
            event_emit(
                workspace_id=workspace_id,
                event_type=event_type,
                data=take_data(take),
                endpoints=endpoints[workspace_id],
            )
            queued += 1
    return queued


def take_ended(*, job_id: int, state: str) -> list[WebhookDelivery]:
    """The engine says a job ended: take.succeeded, take.failed or take.cancelled for its
    take. Nothing for a job of no take (speech, a registration). The event's id comes from
    the take and its end, so a second announcement (a redelivered message, the sweep's
    catch-up) queues nothing more."""
    event_type = ENDED_EVENTS.get(state)
    if event_type is None:
        return []
    take = _takes_where(job_id=job_id).first()
    if take is None:
        return []
    return _take_end_event(take, event_type)


def take_end_message_id(take: Take, event_type: str) -> str:
    return f"msg_take{take.pk}_{event_type.removeprefix('take.')}"


def _take_end_event(
    take: Take, event_type: str, endpoints: list[WebhookEndpoint] | None = None
) -> list[WebhookDelivery]:
    """The take's end, to `endpoints` or to every endpoint that wants it and existed when it
    ended (one added since hears of later takes only)."""
    if endpoints is None:
        ended = take.job.finished_at or timezone.now()
        endpoints = [
            endpoint
            for endpoint in WebhookEndpoint.objects.filter(
                workspace_id=take.scene.episode.series.workspace_id,
                enabled=True,
                created_at__lte=ended,
            )
            if endpoint.wants(event_type)
        ]
        if not endpoints:
            return []
    return event_emit(
        workspace_id=take.scene.episode.series.workspace_id,
        event_type=event_type,
        data=take_data(take),
        endpoints=endpoints,
        message_id=take_end_message_id(take, event_type),
    )


def take_ends_sweep(*, now: datetime | None = None) -> list[WebhookDelivery]:
    """Catch up the end events of takes that ended in the last TAKE_ENDS_CAUGHT_UP whose
    announcement never arrived (the broker was away when the job ended): each goes to the
    endpoints that existed when it ended and want it, once (the id is the take's)."""
    now = now or timezone.now()
    endpoints = list(WebhookEndpoint.objects.filter(enabled=True))
    if not endpoints:
        return []
    by_workspace: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in endpoints:
        by_workspace.setdefault(endpoint.workspace_id, []).append(endpoint)
    ended = _takes_where(
        job__state__in=list(ENDED_EVENTS),
        job__finished_at__gte=now - TAKE_ENDS_CAUGHT_UP,
        job__finished_at__lte=now - TAKE_ENDS_SETTLE,
        job__workspace_id__in=list(by_workspace),
    ).order_by("job__finished_at")[: settings.WEBHOOKS_SWEEP_BATCH]
    ended = list(ended)
    sent = set(
        WebhookDelivery.objects.filter(
            message_id__in=[
                take_end_message_id(take, ENDED_EVENTS[take.job.state]) for take in ended
            ]
        ).values_list("endpoint_id", "message_id")
    )
    queued: list[WebhookDelivery] = []
    for take in ended:
        event_type = ENDED_EVENTS[take.job.state]
        message_id = take_end_message_id(take, event_type)
        missing = [
            endpoint
            for endpoint in by_workspace[take.job.workspace_id]
            if endpoint.wants(event_type)
            and endpoint.created_at <= take.job.finished_at
            and (endpoint.pk, message_id) not in sent
        ]
        if missing:
            with transaction.atomic():
                queued += _take_end_event(take, event_type, endpoints=missing)
    return queued


def cut_event(*, cut_id: int, event_type: str) -> list[WebhookDelivery]:
    """cut.ready or cut.failed for a cut that just got there."""
    cut = Cut.objects.select_related("episode__series__workspace").filter(pk=cut_id).first()
    if cut is None:
        return []
    return event_emit(
        workspace_id=cut.episode.series.workspace_id, event_type=event_type, data=cut_data(cut)
    )


def endpoint_ping(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A test event (`ping`) to one endpoint, whatever events it asked for."""
    if not endpoint.enabled:
        raise ValidationError("The endpoint is turned off; turn it on to send it a test event.")
    (delivery,) = event_emit(
        workspace_id=endpoint.workspace_id,
        event_type=PING,
        data={
            "endpoint_id": endpoint.pk,
            "message": "A test event from Castboard: this endpoint receives its events.",
        },
        endpoints=[endpoint],
    )
    return delivery


# --- Sending -------------------------------------------------------------------------------


def retry_schedule() -> tuple[float, ...]:
    """Seconds to wait after each failed attempt (settings.WEBHOOKS_RETRY_SECONDS); after
    the last one the delivery is given up."""
    return tuple(float(seconds) for seconds in settings.WEBHOOKS_RETRY_SECONDS)


def _enqueue(delivery_id: int, *, countdown: float = 0) -> bool:
    options = {"countdown": countdown} if countdown > 0 else {}
    try:
        send_named(DELIVER_TASK, (delivery_id,), **options)
    except BROKER_ERRORS as error:
        log.warning("Webhook delivery %s: not enqueued (%s); the sweep will.", delivery_id, error)
        # Never handed to the queue: the sweep takes it at its next pass.
        WebhookDelivery.objects.filter(pk=delivery_id, state=WebhookDelivery.State.PENDING).update(
            claimed_at=None
        )
        return False
    return True


def _send_on_commit(delivery_ids: list[int]) -> None:
    def publish() -> None:
        for delivery_id in delivery_ids:
            _enqueue(delivery_id)

    # Marked as handed to the queue now (see the module), so the sweep leaves them be.
    WebhookDelivery.objects.filter(pk__in=delivery_ids).update(claimed_at=timezone.now())
    transaction.on_commit(publish)


def _claim(delivery_id: int) -> WebhookDelivery | None:
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id,
        state=WebhookDelivery.State.PENDING,
        next_attempt_at__lte=now,
        endpoint__enabled=True,
    ).update(
        state=WebhookDelivery.State.SENDING,
        claimed_at=now,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a status (None when no answer came), an error in words, and
    the start of the receiver's answer."""

    status: int | None
    error: str = ""
    response: str = ""
    refused: bool = False  # the address may not be contacted: retrying will not help

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def body_of(payload: dict[str, Any]) -> bytes:
    """The JSON body as sent and signed: one spelling of a payload, whatever the database
    did to its keys' order."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def signed_headers(*, secret: str, message_id: str, body: bytes, at: datetime) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST one attempt: public addresses only, no redirects, a short deadline."""
    seconds = settings.WEBHOOKS_TIMEOUT_SECONDS
    host = httpx.URL(url).host
    try:
        with Deadline(seconds) as deadline, transport.guarded_client(seconds) as client:
            try:
                with client.stream(
                    "POST",
                    url,
                    content=body,
                    # Only the start of the answer is kept: uncompressed, so it is readable.
                    headers={**headers, "Accept-Encoding": "identity"},
                    extensions={"trace": deadline.trace},
                ) as response:
                    raw = b""
                    for chunk in response.iter_raw():
                        raw += chunk
                        if len(raw) >= _READ_AT_MOST:
                            break
            except httpx.HTTPError:
                if deadline.expired:
                    return Outcome(None, f"{host} did not answer within {seconds:g} s.")
                raise
    except netguard.AddressRefused as refused:
        return Outcome(None, refused.message, refused=True)
    except httpx.TimeoutException:
        return Outcome(None, f"{host} did not answer within {seconds:g} s.")
    except httpx.ConnectError:
        return Outcome(None, f"Could not connect to {host}.")
    except httpx.HTTPError as error:
        return Outcome(None, f"The request to {host} broke off ({type(error).__name__}).")
    text = raw.decode("utf-8", errors="replace")[:RESPONSE_KEPT]
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(status, "", text)
    if 300 <= status < 400:
        where = response.headers.get("Location", "elsewhere")
        error = f"Answered {status}, redirecting to {where}; webhooks do not follow redirects."
    else:
        error = f"Answered {status} {response.reason_phrase}".rstrip() + "."
    return Outcome(status, error[:500], text)


def delivery_send(*, delivery_id: int) -> WebhookDelivery | None:
    """One attempt at a delivery, if it is due and nobody else is sending it: signed, POSTed,
    and its outcome recorded. A failure is retried on the schedule, then given up; an
    address that may not be contacted is given up at once. None when there was nothing to
    do (gone, not due, already taken, or its endpoint turned off)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    body = body_of(delivery.payload)
    try:
        headers = signed_headers(
            secret=endpoint_secret(endpoint),
            message_id=delivery.message_id,
            body=body,
            at=timezone.now(),
        )
        outcome = post(endpoint.url, body, headers)
    except Exception:  # recorded as a failed attempt: never left "sending" until the lease
        log.exception("Webhook delivery %s: the attempt broke.", delivery.pk)
        outcome = Outcome(None, INTERNAL_ERROR)
    _record(delivery, outcome, started=delivery.claimed_at)
    delivery.refresh_from_db()
    return delivery


def _record(delivery: WebhookDelivery, outcome: Outcome, *, started: datetime | None) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {
        "last_status": outcome.status,
        "last_error": outcome.error,
        "last_response": outcome.response,
    }
    schedule = retry_schedule()
    countdown = 0.0
    if outcome.delivered:
        fields |= {"state": WebhookDelivery.State.DELIVERED, "delivered_at": now}
        fields |= {"next_attempt_at": None, "claimed_at": None}
    elif outcome.refused or delivery.attempts > len(schedule):
        fields |= {"state": WebhookDelivery.State.FAILED, "next_attempt_at": None}
        fields |= {"claimed_at": None}
    else:
        wait = schedule[delivery.attempts - 1]
        # Jitter, so the retries of many deliveries that failed together spread out.
        countdown = wait + random.uniform(0, wait / 10)  # noqa: S311 - jitter, not crypto
        due = now + timedelta(seconds=countdown)
        fields |= {"state": WebhookDelivery.State.PENDING, "next_attempt_at": due}
        fields |= {"claimed_at": due}
    # Only while still ours: a claim the sweep took back belongs to another attempt now.
    recorded = WebhookDelivery.objects.filter(
        pk=delivery.pk, state=WebhookDelivery.State.SENDING, claimed_at=started
    ).update(**fields)
    if not recorded:
        return
    if fields["state"] == WebhookDelivery.State.PENDING:
        if countdown <= settings.CELERY_MAX_TASK_DELAY:
            _enqueue(delivery.pk, countdown=countdown)
        else:  # longer than a message may wait in the broker: the sweep sends it when due
            WebhookDelivery.objects.filter(pk=delivery.pk).update(claimed_at=None)


def delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """One more attempt at once (the studio's "resend"), whatever the delivery's state, with
    the same message id. A delivery being sent right now is left to finish."""
    if delivery.state == WebhookDelivery.State.SENDING:
        raise ValidationError("This event is being sent right now; wait for its outcome.")
    if not delivery.endpoint.enabled:
        raise ValidationError("The endpoint is turned off; turn it on to send it events.")
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).exclude(
        state=WebhookDelivery.State.SENDING
    ).update(state=WebhookDelivery.State.PENDING, next_attempt_at=now)
    _send_on_commit([delivery.pk])
    delivery.refresh_from_db()
    return delivery


def deliveries_sweep() -> dict[str, list[int]]:
    """The safety net (beat): attempts whose worker died are taken back, and due deliveries
    nobody has in hand (a lost message, a retry too far ahead for the broker, an endpoint
    turned back on) are handed to the queue. Finished deliveries older than
    WEBHOOKS_KEEP_DAYS leave the log. Take ends whose announcement was lost are caught up
    (take_ends_sweep)."""
    now = timezone.now()
    caught_up = [delivery.pk for delivery in take_ends_sweep(now=now)]
    WebhookDelivery.objects.filter(
        state__in=(WebhookDelivery.State.DELIVERED, WebhookDelivery.State.FAILED),
        created_at__lt=now - timedelta(days=settings.WEBHOOKS_KEEP_DAYS),
    ).delete()
    # Never shorter than an attempt may last: a live attempt is never taken from its worker.
    lease = max(settings.WEBHOOKS_LEASE_SECONDS, settings.WEBHOOKS_TIMEOUT_SECONDS + 30)
    lapsed = now - timedelta(seconds=lease)
    stale = list(
        WebhookDelivery.objects.filter(
            state=WebhookDelivery.State.SENDING, claimed_at__lt=lapsed
        ).values_list("pk", "claimed_at")
    )
    reclaimed = []
    for delivery_id, claimed_at in stale:
        if WebhookDelivery.objects.filter(
            pk=delivery_id, state=WebhookDelivery.State.SENDING, claimed_at=claimed_at
        ).update(state=WebhookDelivery.State.PENDING, next_attempt_at=now, claimed_at=None):
            reclaimed.append(delivery_id)
    due = WebhookDelivery.objects.filter(
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=lapsed),
        state=WebhookDelivery.State.PENDING,
        next_attempt_at__lte=now,
        endpoint__enabled=True,
    )
    sent = []
    batch = due.order_by("next_attempt_at", "pk")[: settings.WEBHOOKS_SWEEP_BATCH]
    for delivery_id, claimed_at in batch.values_list("pk", "claimed_at"):
        handed = WebhookDelivery.objects.filter(
            pk=delivery_id, state=WebhookDelivery.State.PENDING, claimed_at=claimed_at
        ).update(claimed_at=now)
        if handed and _enqueue(delivery_id):
            sent.append(delivery_id)
    return {"reclaimed": reclaimed, "sent": sent, "caught_up": caught_up}
