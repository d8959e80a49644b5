"""Generate-all in batches: the plan and the request cost the same queries for 5 scenes as for
40; the whole batch is priced and held against the budgets at once (or refused, creating
nothing); a task makes the takes, each reserved once out of the hold, and a redelivered task
makes nothing more; the storyboard shows the batch's progress."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from characters.models import Character
from characters.services import character_version_latest
from jobs import ledger
from jobs.models import Budget, Job, JobState, LedgerEntry, ProviderAccount
from studio import batches
from studio.models import DialogueLine, Episode, GenerationBatch, Role, Scene, Take
from tests.factories import MembershipFactory, TakeFactory
from tests.studio.test_storyboard_queries import CHARACTERS, storyboard_episode

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
SEEDANCE_PRICE = Decimal("0.6613")  # 8 s at 1280x720, priced in tokens (the price book)


def run_batches() -> list[GenerationBatch]:
    """Run the queued generate-alls as a worker does: the task itself, in this process."""
    from studio.tasks import run_generation_batch

    queued = list(GenerationBatch.objects.filter(state=GenerationBatch.State.QUEUED))
    for batch in queued:
        run_generation_batch.apply(args=[batch.pk], throw=True)
    return [GenerationBatch.objects.get(pk=batch.pk) for batch in queued]


def waiting_episode(workspace, *, scenes: int) -> Episode:
    """`scenes` scenes with no take, each mentioning two characters (two images each) and
    speaking a line by a third, at a workspace with an OpenAI and a Seedance account."""
    episode = storyboard_episode(workspace, scenes=scenes)
    takes = Take.objects.filter(scene__episode=episode)
    jobs = list(takes.values_list("job_id", flat=True))
    takes.delete()
    Job.objects.filter(pk__in=jobs).delete()
    ProviderAccount.objects.create(
        workspace=workspace, name="Seedance", kind="seedance", base_url="http://127.0.0.1:9/v1"
    )
    cast = {c.handle: c for c in Character.objects.filter(workspace=workspace)}
    for character in cast.values():  # as character_create makes them (bulk inserts do not)
        character_version_latest(character)
    DialogueLine.objects.bulk_create(
        DialogueLine(
            scene=scene,
            position=0,
            character=cast[f"keeper{(scene.position + 2) % CHARACTERS}"],
            text="Mind the rope.",
        )
        for scene in episode.scenes.all()
    )
    return episode


@pytest.fixture
def new_workspace(owner):
    return lambda: MembershipFactory(user=owner, role=Role.OWNER).workspace


def _url(episode: Episode) -> str:
    return reverse("episode_generate", args=[episode.series.workspace.slug, episode.pk])


def _count(client, method: str, url: str, data: dict | None = None) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(url, data or {})
    assert response.status_code in (200, 302), response.content.decode()[:500]
    return len(captured.captured_queries), "\n".join(q["sql"] for q in captured)


def test_the_plan_page_costs_the_same_queries_for_5_scenes_as_for_40(owner_client, new_workspace):
    small, large = (waiting_episode(new_workspace(), scenes=n) for n in (5, 40))
    _count(owner_client, "get", _url(small))  # warm caches (sessions, content types)
    small_count, small_sql = _count(owner_client, "get", _url(small))
    large_count, large_sql = _count(owner_client, "get", _url(large))
    assert small_count == large_count, f"5 scenes:\n{small_sql}\n\n40 scenes:\n{large_sql}"
    page = " ".join(owner_client.get(_url(large)).content.decode().split())
    assert "40 of 40 scenes have no chosen take" in page
    assert '<strong>Seedance</strong>: 40 takes, about <strong class="price">$26.45</strong>' in (
        page
    )


def test_generate_all_costs_the_same_queries_for_5_scenes_as_for_40(owner_client, new_workspace):
    small, large = (waiting_episode(new_workspace(), scenes=n) for n in (5, 40))
    counts = {}
    for episode in (small, large):
        seedance = ProviderAccount.objects.get(workspace=episode.series.workspace, name="Seedance")
        counts[episode.scenes.count()] = _count(
            owner_client, "post", _url(episode), {"account": seedance.pk}
        )
    assert counts[5][0] == counts[40][0], f"5 scenes:\n{counts[5][1]}\n\n40:\n{counts[40][1]}"
    batch = GenerationBatch.objects.get(episode=large)
    assert batch.total == 40
    assert batch.total_estimate == 40 * SEEDANCE_PRICE
    assert not Take.objects.exists()  # the task makes them
    assert ledger.hold_left(batch.hold_key) == 40 * SEEDANCE_PRICE


@pytest.fixture
def episode(workspace, owner):
    return waiting_episode(workspace, scenes=6)


@pytest.fixture
def seedance(workspace):
    return ProviderAccount.objects.get(workspace=workspace, name="Seedance")


def test_a_batch_over_the_budget_creates_nothing_and_says_why(
    owner_client, workspace, episode, seedance
):
    Budget.objects.create(workspace=workspace, scope="workspace", cap=Decimal("2.00"))
    response = owner_client.post(_url(episode), {"account": seedance.pk}, follow=True)
    page = response.content.decode()
    assert "This would cost about $3.97, but the workspace has $2.00 left this month" in page
    assert not GenerationBatch.objects.exists()
    assert not Take.objects.exists()
    assert not Job.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_the_task_makes_one_take_per_scene_each_reserved_once_and_releases_the_hold(
    owner_client, workspace, episode, seedance
):
    owner_client.post(_url(episode), {"account": seedance.pk})
    (batch,) = run_batches()
    assert batch.state == GenerationBatch.State.DONE
    assert (batch.made, batch.refused, batch.total) == (6, 0, 6)
    takes = list(Take.objects.filter(scene__episode=episode).select_related("job"))
    assert sorted(t.scene_id for t in takes) == sorted(episode.scenes.values_list("pk", flat=True))
    assert {t.batch_id for t in takes} == {batch.pk}
    for take in takes:
        assert take.job.provider_account == seedance
        assert take.job.state == JobState.PENDING
        reserves = take.job.ledger_entries.filter(kind=LedgerEntry.Kind.RESERVE)
        assert list(reserves.values_list("amount", flat=True)) == [SEEDANCE_PRICE]
    assert ledger.hold_left(batch.hold_key) == 0
    # Budgets count exactly the jobs' reservations: the hold added nothing once released.
    budget = Budget.objects.create(workspace=workspace, scope="workspace", cap=Decimal("100"))
    assert ledger.committed(budget) == 6 * SEEDANCE_PRICE


def test_a_redelivered_task_makes_nothing_more(owner_client, episode, seedance):
    from studio.tasks import run_generation_batch

    owner_client.post(_url(episode), {"account": seedance.pk})
    (batch,) = run_batches()
    entries = LedgerEntry.objects.count()
    # The same message again, and a stale runner's message after a crash mid-batch.
    run_generation_batch.apply(args=[batch.pk], throw=True)
    GenerationBatch.objects.filter(pk=batch.pk).update(state=GenerationBatch.State.RUNNING)
    batches.batch_run(batch_id=batch.pk, worker="another-delivery")
    assert Take.objects.count() == 6
    assert Job.objects.count() == 6
    assert LedgerEntry.objects.count() == entries


def test_a_task_that_died_mid_batch_goes_on_where_it_stopped(owner_client, episode, seedance):
    owner_client.post(_url(episode), {"account": seedance.pk})
    batch = GenerationBatch.objects.get()
    scenes = list(episode.scenes.order_by("position"))
    # A first delivery made two takes, then its worker died (its claim still stands).
    assert batches.batch_claim(batch_id=batch.pk, worker="first")
    real_ids = batch.scene_ids
    GenerationBatch.objects.filter(pk=batch.pk).update(scene_ids=real_ids[:2])
    batches._make_takes(GenerationBatch.objects.get(pk=batch.pk), worker="first")
    GenerationBatch.objects.filter(pk=batch.pk).update(scene_ids=real_ids)
    assert Take.objects.count() == 2
    # Celery redelivers the same message (same task id): it goes on.
    batches.batch_run(batch_id=batch.pk, worker="first")
    batch.refresh_from_db()
    assert batch.state == GenerationBatch.State.DONE
    assert batch.made == 6
    assert sorted(Take.objects.values_list("scene_id", flat=True)) == [s.pk for s in scenes]
    for job in Job.objects.all():
        assert job.ledger_entries.filter(kind=LedgerEntry.Kind.RESERVE).count() == 1
    assert ledger.hold_left(batch.hold_key) == 0


def test_a_scene_that_changed_since_the_request_is_skipped_with_its_reason(
    owner_client, episode, seedance
):
    owner_client.post(_url(episode), {"account": seedance.pk})
    first, second, *_ = episode.scenes.order_by("position")
    TakeFactory(scene=first, account=seedance, state=JobState.RUNNING)
    second.delete()
    (batch,) = run_batches()
    assert (batch.made, batch.refused) == (4, 2)
    assert sorted(batch.refusals.values()) == [
        "A scene was deleted before its take was made.",
        "Scene 1: it has a take on its way already, so it was left alone.",
    ]
    assert ledger.hold_left(batch.hold_key) == 0  # the two estimates are released


def test_an_open_hold_counts_against_other_spending(owner_client, workspace, episode, seedance):
    Budget.objects.create(workspace=workspace, scope="workspace", cap=Decimal("4.00"))
    owner_client.post(_url(episode), {"account": seedance.pk})  # holds 6 x $0.66
    scene = episode.scenes.order_by("position").first()
    url = reverse("scene_generate", args=[workspace.slug, scene.pk])
    page = owner_client.post(url, {"account": seedance.pk}, follow=True).content.decode()
    assert "This would cost about $0.66, but the workspace has $0.03 left this month" in page
    assert not Job.objects.exists()


def test_the_storyboard_shows_the_batchs_progress_then_its_summary(
    owner_client, workspace, episode, seedance
):
    owner_client.post(_url(episode), {"account": seedance.pk})
    batch = GenerationBatch.objects.get()
    progress = reverse("episode_batch", args=[workspace.slug, episode.pk, batch.pk])
    page = " ".join(owner_client.get(episode.get_absolute_url()).content.decode().split())
    assert "Creating takes: 0 of 6" in page
    assert f'hx-get="{progress}" hx-trigger="every 2s"' in page
    fragment = owner_client.get(progress, headers=HTMX)
    assert fragment.status_code == 200
    assert "Creating takes: 0 of 6" in fragment.content.decode()
    run_batches()
    fragment = owner_client.get(progress, headers=HTMX)
    assert fragment.status_code == 286  # htmx stops polling
    text = " ".join(fragment.content.decode().split())
    assert "6 takes on their way to Seedance." in text
    assert "hx-trigger" not in text
    # Without JavaScript, the storyboard shows the same summary.
    page = " ".join(owner_client.get(episode.get_absolute_url()).content.decode().split())
    assert "6 takes on their way to Seedance." in page


def test_the_progress_is_not_found_for_another_team(client, members, episode, seedance):
    client.force_login(members["owner"])
    client.post(_url(episode), {"account": seedance.pk})
    batch = GenerationBatch.objects.get()
    progress = reverse("episode_batch", args=[episode.series.workspace.slug, episode.pk, batch.pk])
    client.force_login(members["outsider"])
    assert client.get(progress, headers=HTMX).status_code == 404
    client.force_login(members["viewer"])
    assert client.get(progress, headers=HTMX).status_code == 200  # a viewer sees progress
    assert client.post(_url(episode), {"account": seedance.pk}).status_code == 403
    assert GenerationBatch.objects.count() == 1


def test_automatic_batches_route_each_scene_and_hold_the_total(owner_client, episode):
    owner_client.post(_url(episode), {"account": "auto"})
    batch = GenerationBatch.objects.get()
    assert batch.automatic
    held = ledger.hold_left(batch.hold_key)
    assert held == batch.total_estimate > 0
    (batch,) = run_batches()
    assert batch.made + batch.refused == 6
    reserved = sum(j.cost_estimate for j in Job.objects.all())
    assert reserved <= held
    assert ledger.hold_left(batch.hold_key) == 0


def test_a_batch_with_a_deleted_scene_in_its_plan_is_fine_to_show(owner_client, episode):
    Scene.objects.filter(episode=episode).delete()
    assert "Nothing to generate." in owner_client.get(_url(episode)).content.decode()


def test_a_batch_stopped_by_an_error_releases_what_it_did_not_spend(
    owner_client, episode, seedance, monkeypatch
):
    owner_client.post(_url(episode), {"account": seedance.pk})
    batch = GenerationBatch.objects.get()
    real_start, started = batches.generation.take_start, []

    def start_then_fail(**kwargs):  # a fault on the third scene (the database went away)
        if len(started) == 2:
            raise ConnectionError("the database went away")
        started.append(kwargs["scene"].pk)
        return real_start(**kwargs)

    monkeypatch.setattr(batches.generation, "take_start", start_then_fail)
    with pytest.raises(ConnectionError):
        batches.batch_run(batch_id=batch.pk, worker="w1")
    batch.refresh_from_db()
    assert (batch.state, batch.made) == (GenerationBatch.State.FAILED, 2)
    assert ledger.hold_left(batch.hold_key) == 0
    assert sum(j.cost_estimate for j in Job.objects.all()) == 2 * SEEDANCE_PRICE
    fragment = owner_client.get(
        reverse("episode_batch", args=[episode.series.workspace.slug, episode.pk, batch.pk]),
        headers=HTMX,
    )
    assert "Generate-all stopped after 2 of 6 scenes" in fragment.content.decode()


def test_the_sweep_sends_again_a_batch_whose_message_was_lost(owner_client, episode, seedance):
    owner_client.post(_url(episode), {"account": seedance.pk})  # on_commit never ran: lost
    batch = GenerationBatch.objects.get()
    assert batches.batches_sweep() == 0  # within its grace
    GenerationBatch.objects.filter(pk=batch.pk).update(
        created_at=batch.created_at - batches.QUEUED_GRACE * 2
    )
    assert batches.batches_sweep() == 1
    from studio.project.celery import app

    app.control.purge()  # no worker here: the message must not reach a later test's worker


def test_a_second_generate_all_waits_for_the_first(owner_client, episode, seedance):
    owner_client.post(_url(episode), {"account": seedance.pk})
    page = owner_client.get(_url(episode)).content.decode()
    assert "A generate-all of this episode is still creating takes (0 of 6)." in page
    response = owner_client.post(_url(episode), {"account": seedance.pk}, follow=True)
    assert "A generate-all of this episode is still creating takes; wait" in (
        response.content.decode()
    )
    assert GenerationBatch.objects.count() == 1
    run_batches()
    assert "Nothing to generate." in owner_client.get(_url(episode)).content.decode()
