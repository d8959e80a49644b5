"""A take's drift score where takes are shown: the flag on the storyboard card and the take
card, "Scoring…" while it is worked out, the axes once scored; the score page per
character with its worst frames; and scoring a take again."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from characters.models import CharacterVersion
from studio.models import CharacterScore, Take, TakeScore
from studio.project.celery import app as celery_app
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
)
from tests.jobs.factories import ProviderAccountFactory
from tests.studio.test_storyboard_queries import storyboard_episode
from tests.support.pages import visible_text

pytestmark = pytest.mark.django_db

SCORE_TASK = "studio.tasks.score_take_by_id"
JPEG = b"\xff\xd8\xff\xe0 a stored worst frame \xff\xd9"
FLAG = "Flagged Face 41 (Mina): below 60"


@pytest.fixture
def scene(workspace):
    series = SeriesFactory(workspace=workspace, title="Harbour Lights")
    return SceneFactory(episode=EpisodeFactory(series=series), title="Dawn", prompt="@mina waits.")


@pytest.fixture
def mina(workspace):
    return CharacterFactory(workspace=workspace, name="Mina", handle="mina")


@pytest.fixture
def take(scene):
    account = ProviderAccountFactory(workspace=scene.episode.series.workspace, name="Sora")
    return TakeFactory(scene=scene, account=account, is_selected=True)


def _flagged(take: Take, mina, *, image: str = "") -> TakeScore:
    """The take scored, Mina's face 41 against a threshold of 60, with one worst frame."""
    score = TakeScore.objects.create(
        take=take,
        state=TakeScore.State.SCORED,
        scorer="dlib 19.24",
        face=41.0,
        clothing=72.0,
        style=88.0,
        persistence=0.75,
        threshold=60,
        flagged=True,
        flag_reasons=[{"axis": "face", "score": 41.0, "character": "Mina"}],
        frames_sampled=8,
        video_seconds=8.0,
        cpu_seconds=1.4,
        scored_at=timezone.now(),
    )
    version, _ = CharacterVersion.objects.get_or_create(character=mina, number=3)
    name = image or default_storage.save(
        f"workspaces/{take.job.workspace_id}/scores/take-{take.pk}-face-0.jpg", ContentFile(JPEG)
    )
    CharacterScore.objects.create(
        take_score=score,
        character=mina,
        version=version,
        method=CharacterScore.Method.CLIP,
        face=41.0,
        clothing=72.0,
        style=88.0,
        persistence=0.75,
        frames=[
            [0.0, 70.0, 72.0, 88.0, True],
            [4.0, 41.0, 70.0, 86.0, True],
            [8.0, None, 75.0, 90.0, False],
        ],
        worst=[{"axis": "face", "seconds": 4.0, "score": 41.0, "image": name}],
        notes=["Her face turned away from 6 s on."],
    )
    return score


# --- On the cards --------------------------------------------------------------------------


def test_the_storyboard_card_shows_the_flag_without_opening_the_scene(client, members, take, mina):
    _flagged(take, mina)
    client.force_login(members["viewer"])
    page = client.get(take.scene.episode.get_absolute_url()).content.decode()
    assert FLAG in visible_text(page)
    assert "Face 41 Clothing 72 Style 88" in visible_text(page)


def test_the_take_card_shows_the_flag_and_each_axis(client, members, take, mina):
    _flagged(take, mina)
    client.force_login(members["viewer"])
    slug = take.scene.episode.series.workspace.slug
    card = client.get(reverse("take_card", args=[slug, take.pk]), headers={"HX-Request": "true"})
    text = visible_text(card.content.decode())
    assert FLAG in text
    assert "Face 41 Clothing 72 Style 88" in text
    assert "recognised in 75% of frames" in text
    scene_page = visible_text(client.get(take.scene.get_absolute_url()).content.decode())
    assert FLAG in scene_page
    assert reverse("take_consistency", args=[slug, take.pk]) in card.content.decode()


def test_a_take_being_scored_says_so_on_both_cards_and_its_card_polls(client, members, take):
    TakeScore.objects.create(take=take)
    client.force_login(members["viewer"])
    slug = take.scene.episode.series.workspace.slug
    card = client.get(reverse("take_card", args=[slug, take.pk]), headers={"HX-Request": "true"})
    assert "Scoring…" in card.content.decode()
    assert 'hx-trigger="every 3s"' in card.content.decode()
    board = client.get(take.scene.episode.get_absolute_url()).content.decode()
    assert "Scoring…" in board
    # The storyboard card's status is not polled: the page's event stream brings the score.
    assert 'hx-trigger="every 3s"' not in board
    assert f'sse-swap="scene-{take.scene_id}"' in board


def test_a_take_within_the_threshold_shows_its_axes_and_no_flag(client, members, take, mina):
    score = _flagged(take, mina)
    TakeScore.objects.filter(pk=score.pk).update(flagged=False, flag_reasons=[], face=65.0)
    client.force_login(members["viewer"])
    board = visible_text(client.get(take.scene.episode.get_absolute_url()).content.decode())
    assert "Flagged" not in board
    assert "Face 65 Clothing 72 Style 88" in board


def test_a_take_that_could_not_be_scored_says_why_on_its_card(client, members, take):
    TakeScore.objects.create(
        take=take, state=TakeScore.State.SKIPPED, message="The take shows no character."
    )
    client.force_login(members["viewer"])
    page = visible_text(client.get(take.scene.get_absolute_url()).content.decode())
    assert "Nothing to score: The take shows no character." in page


def test_the_storyboard_with_scores_costs_the_queries_of_3_scenes_for_60(client, owner):
    from tests.factories import MembershipFactory

    client.force_login(owner)
    counts = []
    for scenes in (3, 60):
        workspace = MembershipFactory(user=owner, role="owner").workspace
        episode = storyboard_episode(workspace, scenes=scenes)
        takes = Take.objects.filter(scene__episode=episode)
        TakeScore.objects.bulk_create(
            TakeScore(
                take=take,
                state=TakeScore.State.SCORED,
                face=41.0 if n % 2 else 80.0,
                clothing=70.0,
                style=90.0,
                threshold=60,
                flagged=bool(n % 2),
                flag_reasons=[{"axis": "face", "score": 41.0, "character": "Keeper"}]
                if n % 2
                else [],
            )
            for n, take in enumerate(takes)
        )
        with CaptureQueriesContext(connection) as captured:
            page = client.get(episode.get_absolute_url()).content.decode()
        counts.append(len(captured.captured_queries))
        assert "Face 41 (Keeper): below 60" in page
    assert counts[0] == counts[1], counts


def test_the_scene_page_costs_the_same_queries_for_2_scored_takes_as_for_6(
    client, members, scene, mina
):
    account = ProviderAccountFactory(workspace=scene.episode.series.workspace)
    client.force_login(members["viewer"])
    counts = []
    for takes in (2, 4):
        for _ in range(takes):
            _flagged(TakeFactory(scene=scene, account=account), mina)
        with CaptureQueriesContext(connection) as captured:
            page = client.get(scene.get_absolute_url()).content.decode()
        counts.append(len(captured.captured_queries))
    assert page.count(">Flagged<") == 6 * 2  # the badge and the line of each card
    assert counts[0] == counts[1], counts


# --- The score page --------------------------------------------------------------------------


def test_the_score_page_shows_each_character_in_detail(client, members, take, mina):
    _flagged(take, mina)
    client.force_login(members["viewer"])
    slug = take.scene.episode.series.workspace.slug
    page = client.get(reverse("take_consistency", args=[slug, take.pk])).content.decode()
    text = visible_text(page)
    assert FLAG in text
    assert "Mina v3 Reference clip" in text
    assert "Face 41 Clothing 72 Style 88 Persistence 75%" in text
    assert "60 when scored" in text
    assert page.count('class="chart line-chart"') == 1
    assert "threshold 60" in page
    assert reverse("take_consistency_frame", args=[slug, take.pk, 0]) in page
    assert "Face 41 at 4.0 s" in text
    assert "Her face turned away from 6 s on." in text
    assert "Score again" not in text  # a viewer does not review


def test_the_score_page_says_when_the_workspace_threshold_moved_since(client, members, take, mina):
    _flagged(take, mina)
    workspace = take.scene.episode.series.workspace
    workspace.drift_threshold = 70
    workspace.save()
    client.force_login(members["reviewer"])
    text = visible_text(
        client.get(reverse("take_consistency", args=[workspace.slug, take.pk])).content.decode()
    )
    assert "60 when scored; the workspace's is now 70 (score again to apply it)" in text
    assert "Score again" in text


def test_the_score_page_of_an_unscored_take_says_it_will_be(client, members, take):
    client.force_login(members["viewer"])
    slug = take.scene.episode.series.workspace.slug
    text = visible_text(
        client.get(reverse("take_consistency", args=[slug, take.pk])).content.decode()
    )
    assert "takes are scored automatically when they finish" in text


def test_the_score_fragment_polls_until_the_score_is_in(client, members, take, mina):
    client.force_login(members["viewer"])
    slug = take.scene.episode.series.workspace.slug
    url = reverse("take_consistency", args=[slug, take.pk])
    TakeScore.objects.create(take=take)
    pending = client.get(url, headers={"HX-Request": "true"})
    assert pending.status_code == 200
    assert 'hx-trigger="every 3s"' in pending.content.decode()
    TakeScore.objects.filter(take=take).delete()
    _flagged(take, mina)
    done = client.get(url, headers={"HX-Request": "true"})
    assert done.status_code == 286
    assert FLAG in visible_text(done.content.decode())


# --- Worst frames ------------------------------------------------------------------------------


def test_a_member_gets_the_stored_worst_frame(client, members, take, mina):
    _flagged(take, mina)
    client.force_login(members["viewer"])
    slug = take.scene.episode.series.workspace.slug
    response = client.get(reverse("take_consistency_frame", args=[slug, take.pk, 0]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == JPEG


def test_an_outsider_gets_404_for_a_worst_frame(client, members, take, mina):
    _flagged(take, mina)
    client.force_login(members["outsider"])
    slug = take.scene.episode.series.workspace.slug
    response = client.get(reverse("take_consistency_frame", args=[slug, take.pk, 0]))
    assert response.status_code == 404


def test_a_frame_number_not_recorded_on_the_take_is_404(client, members, take, mina):
    _flagged(take, mina)
    client.force_login(members["viewer"])
    slug = take.scene.episode.series.workspace.slug
    assert client.get(reverse("take_consistency_frame", args=[slug, take.pk, 1])).status_code == 404


def test_a_recorded_name_outside_the_workspaces_folder_is_never_served(client, members, take, mina):
    elsewhere = default_storage.save("workspaces/999999/scores/theirs.jpg", ContentFile(JPEG))
    _flagged(take, mina, image=elsewhere)
    client.force_login(members["viewer"])
    slug = take.scene.episode.series.workspace.slug
    assert client.get(reverse("take_consistency_frame", args=[slug, take.pk, 0])).status_code == 404


def test_another_takes_frames_are_not_reachable_through_this_take(client, members, take, mina):
    other = TakeFactory(scene=take.scene, account=take.job.provider_account)
    _flagged(other, mina)
    client.force_login(members["viewer"])
    slug = take.scene.episode.series.workspace.slug
    assert client.get(reverse("take_consistency_frame", args=[slug, take.pk, 0])).status_code == 404


# --- Scoring again ------------------------------------------------------------------------------


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, tuple]]:
    published: list[tuple[str, tuple]] = []
    monkeypatch.setattr(
        celery_app, "send_task", lambda name, args, *rest, **options: published.append((name, args))
    )
    return published


def test_a_viewer_may_not_score_a_take_again(client, members, take, mina, sent):
    score = _flagged(take, mina)
    client.force_login(members["viewer"])
    slug = take.scene.episode.series.workspace.slug
    response = client.post(reverse("take_score_again", args=[slug, take.pk]))
    assert response.status_code == 403
    score.refresh_from_db()
    assert score.state == TakeScore.State.SCORED
    assert sent == []


def test_a_reviewer_has_a_take_scored_again(
    client, members, take, mina, sent, django_capture_on_commit_callbacks
):
    score = _flagged(take, mina)
    TakeScore.objects.filter(pk=score.pk).update(
        claimed_by="worker:1", claimed_at=timezone.now() - timezone.timedelta(hours=2)
    )
    client.force_login(members["reviewer"])
    slug = take.scene.episode.series.workspace.slug
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("take_score_again", args=[slug, take.pk]), follow=True)
    score.refresh_from_db()
    assert score.state == TakeScore.State.PENDING
    assert (score.claimed_by, score.claimed_at) == ("", None)
    assert not score.flagged
    assert sent == [(SCORE_TASK, (take.pk,))]
    text = visible_text(response.content.decode())
    assert f"Take {take.pk} is being scored again." in text
    assert "Scoring…" in text


def test_scoring_again_by_htmx_answers_the_scores_fragment(
    client, members, take, mina, sent, django_capture_on_commit_callbacks
):
    _flagged(take, mina)
    client.force_login(members["editor"])
    slug = take.scene.episode.series.workspace.slug
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("take_score_again", args=[slug, take.pk]), headers={"HX-Request": "true"}
        )
    page = response.content.decode()
    assert "<html" not in page
    assert '<div id="scores" hx-get=' in page
    assert len(sent) == 1


def test_a_take_being_scored_right_now_is_not_sent_twice(client, members, take, sent):
    TakeScore.objects.create(take=take, claimed_by="worker:1", claimed_at=timezone.now())
    client.force_login(members["reviewer"])
    slug = take.scene.episode.series.workspace.slug
    response = client.post(reverse("take_score_again", args=[slug, take.pk]), follow=True)
    assert f"Take {take.pk} is being scored right now." in visible_text(response.content.decode())
    assert TakeScore.objects.get(take=take).claimed_by == "worker:1"
    assert sent == []
