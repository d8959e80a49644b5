"""Idempotency-Key on the paid endpoints, end to end: a repeat gets the first answer and pays
nothing; another request under the same key is refused; a refusal is replayed rather than
tried again; a request still being answered is a 409 with Retry-After; keys are per token."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from jobs.models import Budget, Job, LedgerEntry
from studio.api.tokens import digest_of
from studio.models import ApiCall, ApiToken, Cut, IdempotentAnswer, Take
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.support.api import Api
from tests.support.cuts import episode_to_cut

pytestmark = pytest.mark.django_db


@pytest.fixture
def openai(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai", model="sora-2")


@pytest.fixture
def episode(workspace):
    return EpisodeFactory(series=SeriesFactory(workspace=workspace))


@pytest.fixture
def scene(episode):
    """4 s at 1280x720: $0.40 at OpenAI."""
    return SceneFactory(episode=episode, duration=4)


def _generate(api: Api, scene, key: str, **body):
    return api.post(f"/api/v1/scenes/{scene.pk}/takes", body, headers={"Idempotency-Key": key})


def _reservations() -> int:
    return LedgerEntry.objects.filter(kind=LedgerEntry.Kind.RESERVE).count()


def test_the_same_key_twice_makes_one_take_one_job_and_one_reservation(api, scene, openai):
    first = _generate(api, scene, "take-1")

    again = _generate(api, scene, "take-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert again["Location"] == first["Location"]
    assert (Take.objects.count(), Job.objects.count(), _reservations()) == (1, 1, 1)
    calls = ApiCall.objects.order_by("pk").values_list("status", "idempotency_key", "replayed")
    assert list(calls) == [(201, "take-1", False), (201, "take-1", True)]


def test_the_same_key_with_another_body_or_path_is_a_422_and_makes_nothing_more(api, scene, openai):
    _generate(api, scene, "take-1")
    other_scene = SceneFactory(episode=scene.episode, duration=4)

    changed = _generate(api, scene, "take-1", policy="stability")
    elsewhere = _generate(api, other_scene, "take-1")

    for refused in (changed, elsewhere):
        assert refused.status_code == 422
        problem = refused.json()
        assert problem["type"].endswith("/idempotency-key-reused")
        assert problem["detail"].startswith(
            f"This Idempotency-Key was first used for POST /api/v1/scenes/{scene.pk}/takes"
        )
    assert (Take.objects.count(), _reservations()) == (1, 1)


def test_a_batch_under_one_key_is_made_once(api, episode, scene, openai):
    SceneFactory(episode=episode, duration=4)
    url = f"/api/v1/episodes/{episode.pk}/takes"

    first = api.post(url, {}, headers={"Idempotency-Key": "batch-1"})
    again = api.post(url, {}, headers={"Idempotency-Key": "batch-1"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert len(first.json()["made"]) == 2
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert (Take.objects.count(), _reservations()) == (2, 2)


def test_different_tokens_may_use_the_same_key_independently(api_as, scene, openai):
    editor = _generate(api_as("editor"), scene, "nightly")
    owner = _generate(api_as("owner"), scene, "nightly")

    assert (editor.status_code, owner.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in owner
    assert editor.json()["id"] != owner.json()["id"]
    assert (Take.objects.count(), _reservations()) == (2, 2)


def test_a_refused_first_answer_is_replayed_and_not_tried_again(api, workspace, scene, openai):
    budget = Budget.objects.create(workspace=workspace, cap=Decimal("0.10"))
    refused = _generate(api, scene, "take-1")
    assert refused.status_code == 422
    budget.cap = Decimal("100")
    budget.save()  # there would be room now...

    again = _generate(api, scene, "take-1")

    assert again.status_code == 422  # ...but the key's answer was a refusal
    assert again.content == refused.content
    assert again["Idempotent-Replayed"] == "true"
    assert not Job.objects.exists()
    assert _generate(api, scene, "take-2").status_code == 201  # a new key is a new request


@pytest.mark.redis
def test_a_rate_limited_answer_is_not_kept_so_the_retry_it_asks_for_can_succeed(
    api, settings, scene, openai
):
    settings.RATE_LIMIT_GENERATE = "1/60"
    assert _generate(api, scene, "take-1").status_code == 201
    limited = _generate(api, scene, "take-2")
    assert limited.status_code == 429
    assert not IdempotentAnswer.objects.filter(key="take-2").exists()
    settings.RATE_LIMIT_GENERATE = "5/60"  # as if the window had passed

    retried = _generate(api, scene, "take-2")

    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert Take.objects.count() == 2


def test_a_cut_under_one_key_is_started_once(api, workspace):
    episode = episode_to_cut(workspace, seconds=(1.0,))
    url = f"/api/v1/episodes/{episode.pk}/cuts"

    first = api.post(url, {}, headers={"Idempotency-Key": "cut-1"})
    again = api.post(url, {}, headers={"Idempotency-Key": "cut-1"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert Cut.objects.count() == 1


# --- A request still being answered ---------------------------------------------------------------


def _token_of(raw: str) -> ApiToken:
    return ApiToken.objects.get(digest=digest_of(raw))


def test_a_repeat_while_the_first_is_still_being_answered_is_a_409_with_retry_after(
    api, tokens, scene, openai
):
    _generate(api, scene, "take-1")
    # The first request's answer as it stands while it is being made.
    IdempotentAnswer.objects.filter(token=_token_of(tokens["editor"]), key="take-1").update(
        state=IdempotentAnswer.State.RUNNING, status=None, body=b""
    )

    again = _generate(api, scene, "take-1")

    assert again.status_code == 409
    assert again["Retry-After"] == "1"
    assert again.json()["detail"] == (
        "The first request with this Idempotency-Key is still being answered."
    )
    assert (Take.objects.count(), _reservations()) == (1, 1)


def test_a_first_request_that_never_finished_is_a_409_saying_to_check_and_use_a_new_key(
    api, tokens, scene, openai
):
    _generate(api, scene, "take-1")
    IdempotentAnswer.objects.filter(token=_token_of(tokens["editor"]), key="take-1").update(
        state=IdempotentAnswer.State.RUNNING,
        created_at=timezone.now() - timedelta(minutes=10),
    )

    again = _generate(api, scene, "take-1")

    assert again.status_code == 409
    assert "Retry-After" not in again
    assert "never finished" in again.json()["detail"]
    assert Take.objects.count() == 1


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="holds a row lock other connections wait on"
)
def test_two_requests_at_once_under_one_key_make_one_take_and_the_second_is_a_409(
    tokens, workspace, scene, openai
):
    """The first request waits on the workspace's budget row (held here, as a concurrent
    reservation would hold it) while the second arrives with the same key."""
    budget = Budget.objects.create(workspace=workspace, cap=Decimal("100"))
    answers: dict[str, object] = {}

    def send(name: str) -> None:
        try:
            answers[name] = _generate(Api(tokens["editor"]), scene, "take-1")
        finally:
            connection.close()

    first = threading.Thread(target=send, args=("first",))
    with transaction.atomic():
        Budget.objects.select_for_update().get(pk=budget.pk)
        first.start()
        deadline = time.monotonic() + 20
        while not IdempotentAnswer.objects.filter(key="take-1").exists():
            assert time.monotonic() < deadline, "the first request never arrived"
            time.sleep(0.05)
        second = threading.Thread(target=send, args=("second",))
        second.start()
        second.join(timeout=30)
        assert "first" not in answers  # still waiting for the budget
    first.join(timeout=30)

    assert answers["first"].status_code == 201
    assert answers["second"].status_code == 409
    assert answers["second"]["Retry-After"] == "1"
    assert (Take.objects.count(), _reservations()) == (1, 1)
