"""Queries compiled once per process (jobs.compiled): the same rows as Django's, one query
each, new values in the old SQL, and a loud refusal of what cannot be compiled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.compiled import Compiled, PlanRefused
from studio.models import Membership, Scene
from tests.factories import EpisodeFactory, MembershipFactory, SceneFactory

pytestmark = pytest.mark.django_db


def scenes_of(episode_id, ids):
    return Scene.objects.filter(episode_id=episode_id, pk__in=ids).order_by("position", "pk")


def test_it_answers_as_django_does_for_new_values_with_one_query_each():
    episodes = [EpisodeFactory(), EpisodeFactory()]
    scenes = {e.pk: [SceneFactory(episode=e, position=i) for i in range(3)] for e in episodes}
    compiled = Compiled(scenes_of)
    for episode in episodes:
        ids = [scene.pk for scene in scenes[episode.pk]]
        with CaptureQueriesContext(connection) as queries:
            rows = compiled(episode_id=episode.pk, ids=ids)
        assert rows == list(scenes_of(episode.pk, ids))
        assert [row.prompt for row in rows] == [s.prompt for s in scenes[episode.pk]]
        assert len(queries) == 1
    # Another episode's scenes are not this one's: the values really are the new ones.
    other = [scene.pk for scene in scenes[episodes[1].pk]]
    assert compiled(episode_id=episodes[0].pk, ids=other) == []


def test_the_sql_is_compiled_once_per_shape(settings):
    settings.COMPILED_QUERIES_VERIFY = False  # (verifying compiles every time, by design)
    episode = EpisodeFactory()
    a, b, c = (SceneFactory(episode=episode, position=i) for i in range(3))
    built = []

    def build(episode_id, ids):
        built.append(len(ids))
        return scenes_of(episode_id, ids)

    compiled = Compiled(build)
    assert compiled(episode_id=episode.pk, ids=[a.pk, b.pk]) == [a, b]
    assert compiled(episode_id=episode.pk, ids=[b.pk, c.pk]) == [b, c]
    assert compiled(episode_id=episode.pk, ids=[c.pk]) == [c]
    assert built == [2, 1]  # two lengths, two plans; the second list reused the first's
    # Duplicates are dropped as Django's `in` drops them (same length as [a, c]: one plan).
    assert compiled(episode_id=episode.pk, ids=[a.pk, a.pk, c.pk]) == [a, c]
    assert built == [2, 1]


def test_models_come_with_their_select_related_rows():
    membership = MembershipFactory()
    compiled = Compiled(
        lambda user_id, slug: Membership.objects.select_related("workspace").filter(
            user_id=user_id, workspace__slug=slug
        )[:1]
    )
    [found] = compiled(user_id=membership.user_id, slug=membership.workspace.slug)
    with CaptureQueriesContext(connection) as queries:
        assert found.workspace.name == membership.workspace.name
        assert found.role == membership.role
    assert len(queries) == 0  # the workspace came with it
    assert compiled(user_id=membership.user_id, slug="elsewhere") == []


def test_values_list_rows_and_fixed_values():
    episode = EpisodeFactory()
    scenes = [SceneFactory(episode=episode, position=i) for i in range(5)]
    compiled = Compiled(
        lambda episode_id, after, limit: (
            Scene.objects.filter(episode_id=episode_id, position__gt=after)
            .order_by("position")
            .values_list("pk", "position")[:limit]
        ),
        fixed=("limit",),
    )
    assert compiled(episode_id=episode.pk, after=0, limit=2) == [
        (scenes[1].pk, 1),
        (scenes[2].pk, 2),
    ]
    assert compiled(episode_id=episode.pk, after=2, limit=3) == [
        (scenes[3].pk, 3),
        (scenes[4].pk, 4),
    ]


def test_an_empty_list_answers_nothing_as_django_does():
    episode = EpisodeFactory()
    SceneFactory(episode=episode)
    with CaptureQueriesContext(connection) as queries:
        assert Compiled(scenes_of)(episode_id=episode.pk, ids=[]) == []
    assert len(queries) == 0


def test_a_query_whose_values_django_rewrites_is_refused_loudly_in_tests():
    SceneFactory(prompt="A lighthouse at dusk")
    compiled = Compiled(lambda word: Scene.objects.filter(prompt__icontains=word))
    with pytest.raises(PlanRefused, match="word"):
        compiled(word="lighthouse")


def test_a_query_answers_even_when_refused(settings):
    settings.COMPILED_QUERIES_VERIFY = False
    scene = SceneFactory(prompt="A lighthouse at dusk")
    compiled = Compiled(lambda word: Scene.objects.filter(prompt__icontains=word))
    assert compiled(word="lighthouse") == [scene]
    assert compiled(word="harbour") == []


def test_verifying_catches_a_builder_that_branches_on_its_values():
    episode = EpisodeFactory()
    scene = SceneFactory(episode=episode)

    def build(episode_id, ids):  # wrong: the plan is made from stand-ins
        queryset = Scene.objects.filter(episode_id=episode_id, pk__in=ids)
        return queryset.order_by("position" if episode_id < 10**9 else "-position")

    with pytest.raises(AssertionError, match="differs from Django's"):
        Compiled(build)(episode_id=episode.pk, ids=[scene.pk])


def test_moments_are_put_in_place_as_the_backend_takes_them():
    episode = EpisodeFactory()
    scene = SceneFactory(episode=episode)
    compiled = Compiled(
        lambda episode_id, since: Scene.objects.filter(episode_id=episode_id, updated_at__gt=since)
    )
    hour = timedelta(hours=1)
    assert compiled(episode_id=episode.pk, since=scene.updated_at - hour) == [scene]
    assert compiled(episode_id=episode.pk, since=scene.updated_at + hour) == []


def test_a_signed_in_member_keeps_their_session_and_loses_it_when_it_expires(client):
    membership = MembershipFactory()
    client.force_login(membership.user)
    home = f"/w/{membership.workspace.slug}/"
    assert client.get(home).status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(home)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_shapes_past_the_bound_run_as_usual(monkeypatch):
    monkeypatch.setattr("jobs.compiled.MAX_PLANS", 2)
    episode = EpisodeFactory()
    scenes = [SceneFactory(episode=episode, position=i) for i in range(4)]
    compiled = Compiled(scenes_of)
    for length in (1, 2, 3, 4):
        ids = [scene.pk for scene in scenes[:length]]
        assert compiled(episode_id=episode.pk, ids=ids) == scenes[:length]
    assert len(compiled._plans) == 2


def test_first_is_the_first_row_or_none():
    episode = EpisodeFactory()
    a, b = (SceneFactory(episode=episode, position=i) for i in range(2))
    first_scene = Compiled(
        lambda episode_id: Scene.objects.filter(episode_id=episode_id).order_by("position")[:1]
    )
    assert first_scene.first(episode_id=episode.pk) == a
    assert first_scene.first(episode_id=EpisodeFactory().pk) is None
    a.delete()
    assert first_scene.first(episode_id=episode.pk) == b
