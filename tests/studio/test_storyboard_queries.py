"""The storyboard's queries and size do not grow with the episode: 300 scenes cost what 3 do.

The page holds one slice of cards and its header counts come from an aggregate query; a
later slice, and the answer to a change, cost what the first slice does.
`storyboard_episode` builds a large episode fast (bulk inserts); benchmarks/storyboard.py
times the page on the same data.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from characters.models import Character, ReferenceAsset
from jobs.models import Job, JobState, ProviderAccount
from studio.models import Episode, Scene, Series, Take, Workspace
from studio.storyboard import slice_size, storyboard_scenes
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

RESULT = {"duration": 8.0, "width": 1280, "height": 720}
# Each scene's three takes, oldest first: (state, selected), cycling through the episode.
# The first three patterns are the small episode's; the large one repeats all six.
TAKE_PATTERNS = [
    [(JobState.SUCCEEDED, False), (JobState.SUCCEEDED, True), (JobState.FAILED, False)],
    [(JobState.FAILED, False), (JobState.SUCCEEDED, False), (JobState.RUNNING, False)],
    [(JobState.SUCCEEDED, False), (JobState.CANCELLED, False), (JobState.FAILED, False)],
    [(JobState.SUCCEEDED, False), (JobState.SUCCEEDED, False), (JobState.SUCCEEDED, False)],
    [(JobState.SUCCEEDED, True), (JobState.PENDING, False), (JobState.QUEUED, False)],
    [(JobState.SUCCEEDED, False), (JobState.DOWNLOADING, False), (JobState.SUCCEEDED, True)],
]
CHARACTERS = 6


def storyboard_episode(
    workspace: Workspace, *, scenes: int, takes_per_scene: int = 3, mentions: int = 2
) -> Episode:
    """An episode of `scenes` scenes, each mentioning `mentions` characters (each with two
    images) and holding takes in mixed states: some chosen, some in flight, some failed."""
    account = ProviderAccount.objects.create(
        workspace=workspace, name="OpenAI", kind="openai", base_url="http://127.0.0.1:9/v1"
    )
    series = Series.objects.create(workspace=workspace, title="Harbour Lights")
    episode = Episode.objects.create(series=series, number=1, title="Pilot")
    cast = Character.objects.bulk_create(
        Character(workspace=workspace, name=f"Keeper {i}", handle=f"keeper{i}")
        for i in range(CHARACTERS)
    )
    ReferenceAsset.objects.bulk_create(
        ReferenceAsset(
            character=character,
            kind=ReferenceAsset.Kind.IMAGE,
            label=view,
            file=f"refs/{character.handle}-{view}.png",
            thumbnail=f"refs/{character.handle}-{view}.thumb.jpg",
            content_type="image/png",
            size_bytes=1000,
            width=512,
            height=512,
        )
        for character in cast
        for view in ("front", "profile")
    )
    rows = Scene.objects.bulk_create(
        Scene(
            episode=episode,
            position=i,
            title=f"Shot {i + 1}",
            prompt=" and ".join(f"@{cast[(i + k) % CHARACTERS].handle}" for k in range(mentions))
            + f" walk along the harbour, shot {i + 1}.",
            duration=8,
            size="1280x720",
        )
        for i in range(scenes)
    )
    Scene.mentions.through.objects.bulk_create(
        Scene.mentions.through(scene_id=scene.pk, character_id=cast[(i + k) % CHARACTERS].pk)
        for i, scene in enumerate(rows)
        for k in range(mentions)
    )
    plan = [
        (scene, state, selected)
        for i, scene in enumerate(rows)
        for state, selected in _takes_of(i, takes_per_scene)
    ]
    jobs = Job.objects.bulk_create(
        Job(
            workspace=workspace,
            provider_account=account,
            state=state,
            progress=40 if state == JobState.RUNNING else 0,
            cost_estimate=Decimal("0.80"),
            cost_actual=Decimal("0.80") if state == JobState.SUCCEEDED else None,
            result=RESULT if state == JobState.SUCCEEDED else {},
            thumbnail=f"jobs/{n}/thumbnail.jpg" if state == JobState.SUCCEEDED else "",
            error_message="The provider refused the prompt." if state == JobState.FAILED else "",
        )
        for n, (_, state, _) in enumerate(plan)
    )
    Take.objects.bulk_create(
        Take(scene=scene, job=job, is_selected=selected)
        for (scene, _, selected), job in zip(plan, jobs, strict=True)
    )
    return episode


def _takes_of(index: int, count: int) -> list[tuple[str, bool]]:
    pattern = TAKE_PATTERNS[index % len(TAKE_PATTERNS)]
    if count <= len(pattern):
        return pattern[-count:]
    # Longer histories: finished takes first, then the pattern (so at most one is selected).
    return [(JobState.SUCCEEDED, False)] * (count - len(pattern)) + pattern


@pytest.fixture
def new_workspace(client, owner):
    """A fresh workspace of the logged-in owner, one per episode being compared."""
    client.force_login(owner)
    return lambda: MembershipFactory(user=owner, role="owner").workspace


def _queries(client, url: str, **headers) -> tuple[list[str], str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=headers)
    assert response.status_code in (200, 286)
    return [q["sql"] for q in captured.captured_queries], response.content.decode()


def _same_count(small: list[str], large: list[str]) -> None:
    """Equal query counts, or a failure that prints both lists of SQL."""
    if len(small) != len(large):
        listing = "\n".join(
            [f"small ({len(small)}):", *small, "", f"large ({len(large)}):", *large]
        )
        pytest.fail(f"{len(small)} queries for the small episode, {len(large)}:\n{listing}")


def test_the_storyboard_of_300_scenes_costs_the_queries_of_3(client, new_workspace):
    small = storyboard_episode(new_workspace(), scenes=3)
    large = storyboard_episode(new_workspace(), scenes=300)
    assert Take.objects.filter(scene__episode=large).count() == 900
    small_sql, _ = _queries(client, small.get_absolute_url())
    large_sql, page = _queries(client, large.get_absolute_url())
    _same_count(small_sql, large_sql)
    # ...and the large page shows its first slice of cards, whole, and a loader for the rest.
    size = slice_size()
    assert page.count('class="scene-card card"') == size
    shown = storyboard_scenes(episode=large)[:size]
    assert page.count('class="chip mention"') == 2 * size
    assert page.count('<img src="/w/') == 2 * size + sum(1 for s in shown if s.board.pictured)
    assert page.count('role="progressbar"') == sum(1 for s in shown if s.board.in_flight)
    assert page.count('<div class="failure" role="alert">') == sum(
        1 for s in shown if s.board.stopped
    )
    assert page.count("data-later") == 1


def test_the_header_counts_every_scene_not_only_the_shown_ones(client, new_workspace):
    large = storyboard_episode(new_workspace(), scenes=300)
    scenes = storyboard_scenes(episode=large)
    flying = sum(1 for s in scenes if s.board.in_flight)
    missing = sum(1 for s in scenes if s.board.selected is None and s.board.in_flight is None)
    ready = sum(1 for s in scenes if s.board.status == "ready")
    failed = sum(1 for s in scenes if s.board.stopped and s.board.stopped.job.state == "failed")
    _, page = _queries(client, large.get_absolute_url())
    figures = [f"{flying} generating", f"{ready} ready to choose", f"{failed} failed"]
    figures = [figure for figure in figures if not figure.startswith("0 ")]
    header = " · ".join(["300 scenes", *figures, f"{missing} without a chosen take"])
    assert header in page


def test_a_later_slice_costs_the_queries_of_the_first(client, new_workspace):
    small = storyboard_episode(new_workspace(), scenes=3)
    large = storyboard_episode(new_workspace(), scenes=300)
    htmx = {"HX-Request": "true"}

    def slice_url(episode: Episode, after: int) -> str:
        slug = episode.series.workspace.slug
        return reverse("episode_scenes", args=[slug, episode.pk]) + f"?after={after}"

    small_sql, _ = _queries(client, slice_url(small, 0), **htmx)
    large_sql, page = _queries(client, slice_url(large, 149), **htmx)
    _same_count(small_sql, large_sql)
    assert page.count('class="scene-card card"') == slice_size()
    assert 'data-position="150"' in page


@pytest.mark.parametrize("change", ["create", "duplicate", "move", "delete"])
def test_a_change_to_a_long_episode_answers_with_one_slice_of_cards(client, new_workspace, change):
    large = storyboard_episode(new_workspace(), scenes=300)

    def answer(episode: Episode) -> str:
        slug = episode.series.workspace.slug
        first = Scene.objects.get(episode=episode, position=0)
        url, data = {
            "create": (
                reverse("scene_create", args=[slug, episode.pk]),
                {"prompt": "Gulls.", "duration": 8, "size": "1280x720", "after": first.pk},
            ),
            "duplicate": (reverse("scene_duplicate", args=[slug, first.pk]), {}),
            "move": (reverse("scene_move", args=[slug, first.pk]), {"position": 1}),
            "delete": (reverse("scene_delete", args=[slug, first.pk]), {}),
        }[change]
        response = client.post(url, data, headers={"HX-Request": "true"})
        assert response.status_code == 200
        assert response.headers["Storyboard-From"] in ("0", "1")
        return response.content.decode()

    page = answer(large)
    assert page.count('class="scene-card card"') == slice_size()
    assert page.count("data-later") == 1  # the rest loads as the list is scrolled


def test_the_storyboard_costs_no_query_per_scene_that_mentions_no_one(client, new_workspace):
    small = storyboard_episode(new_workspace(), scenes=3, mentions=0)
    large = storyboard_episode(new_workspace(), scenes=60, mentions=0)
    _same_count(
        _queries(client, small.get_absolute_url())[0],
        _queries(client, large.get_absolute_url())[0],
    )


@pytest.mark.parametrize("terminal", [False, True], ids=["in-flight", "finished"])
def test_a_cards_status_costs_the_same_queries_whatever_its_number_of_takes(
    client, new_workspace, terminal
):
    workspace = new_workspace()
    # Pattern 1 has a take in flight; pattern 0 has everything finished.
    start = 0 if terminal else 1
    few = Scene.objects.get(episode=storyboard_episode(workspace, scenes=start + 1), position=start)
    many_episode = Episode.objects.create(series=few.episode.series, number=2, title="Long")
    many = _scene_with_takes(many_episode, like=few, takes=60)
    headers = {"HX-Request": "true"}
    slug = workspace.slug
    few_sql, _ = _queries(client, reverse("scene_status", args=[slug, few.pk]), **headers)
    many_sql, page = _queries(client, reverse("scene_status", args=[slug, many.pk]), **headers)
    _same_count(few_sql, many_sql)
    assert "hx-trigger" not in page  # the page's event stream keeps it current, not a poll
    assert f'sse-swap="scene-{many.pk}"' in page
    assert "60 takes" in page


def _scene_with_takes(episode: Episode, *, like: Scene, takes: int) -> Scene:
    """A copy of `like` (same mentions, the same pattern of takes) with a longer history."""
    scene = Scene.objects.create(
        episode=episode, position=0, prompt=like.prompt, duration=like.duration, size=like.size
    )
    scene.mentions.set(like.mentions.all())
    account = ProviderAccount.objects.get(workspace=episode.series.workspace)
    states = _takes_of(like.position, takes)
    jobs = Job.objects.bulk_create(
        Job(
            workspace=account.workspace,
            provider_account=account,
            state=state,
            cost_actual=Decimal("0.80") if state == JobState.SUCCEEDED else None,
            result=RESULT if state == JobState.SUCCEEDED else {},
        )
        for state, _ in states
    )
    Take.objects.bulk_create(
        Take(scene=scene, job=job, is_selected=selected)
        for (_, selected), job in zip(states, jobs, strict=True)
    )
    return scene
