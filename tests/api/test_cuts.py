"""Cuts through the REST API: the preflight (what would be assembled, what is missing, what
speech costs), starting a cut (paid speech through the ledger, refused in plain words with
nothing made), and each cut's progress, files and staleness."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jobs.models import Budget, Job, JobKind, LedgerEntry
from jobs.services import budget_set
from studio import cut_assembly, services
from studio.dialogue import scene_dialogue_set
from studio.models import Cut, LineReading, series_scope
from tests.factories import CharacterFactory, EpisodeFactory, SceneFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.support.cuts import episode_to_cut, give_voice, take_with_video

pytestmark = pytest.mark.django_db


@pytest.fixture
def episode(workspace):
    """Two scenes ("Launch", 1 s, and "The harbour", 1.5 s), each with a selected silent take."""
    return episode_to_cut(workspace, seconds=(1.0, 1.5))


@pytest.fixture
def speech(workspace):
    """An ElevenLabs account (quoting asks it nothing)."""
    return ProviderAccountFactory(
        workspace=workspace,
        name="ElevenLabs",
        kind="elevenlabs",
        base_url="http://127.0.0.1:9/v1",
        model="eleven_multilingual_v2",
    )


@pytest.fixture
def mina(workspace):
    return CharacterFactory(workspace=workspace, name="Mina Okafor", handle="mina")


def _scene(episode, number: int):
    return episode.scenes.get(position=number - 1)


# --- Preflight ---------------------------------------------------------------------------------


def test_the_preflight_lists_the_scenes_takes_and_how_long_the_cut_will_be(api_as, episode):
    response = api_as("viewer").get(f"/api/v1/episodes/{episode.pk}/cut/preflight")

    assert response.status_code == 200
    preflight = response.json()
    assert (preflight["ready"], preflight["missing"]) == (True, [])
    assert [(s["number"], s["title"], s["seconds"], s["dubbed"]) for s in preflight["scenes"]] == [
        (1, "Launch", 1.0, True),
        (2, "The harbour", 1.5, True),
    ]
    first = _scene(episode, 1)
    assert preflight["scenes"][0]["take_id"] == first.takes.get(is_selected=True).pk
    assert preflight["duration"] == 6.5  # two cards of 2 s and the takes
    assert preflight["speech_cost"] == "0.00"


def test_the_preflight_takes_the_cut_forms_options(api, episode):
    response = api.get(
        f"/api/v1/episodes/{episode.pk}/cut/preflight",
        {"crossfade": 0.5, "title_card": "false", "end_card": "false"},
    )

    assert response.json()["duration"] == 2.0  # 1 + 1.5 less one half-second crossfade
    too_long = api.get(f"/api/v1/episodes/{episode.pk}/cut/preflight", {"crossfade": 3})
    assert too_long.status_code == 422


def test_the_preflight_names_scenes_without_a_selected_take(api, episode):
    SceneFactory(episode=episode, title="Night")

    preflight = api.get(f"/api/v1/episodes/{episode.pk}/cut/preflight").json()

    assert preflight["ready"] is False
    assert preflight["missing"] == ["Scene 3 has no selected take."]
    assert preflight["scenes"][2]["take_id"] is None


def test_the_preflight_prices_the_speech_of_silent_takes_and_says_which_lines_have_no_voice(
    api, episode, mina, speech
):
    give_voice(mina, speech)
    scene_dialogue_set(scene=_scene(episode, 1), text="@mina: We launch at dawn.")
    scene_dialogue_set(scene=_scene(episode, 2), text=": The sea waits.")

    preflight = api.get(f"/api/v1/episodes/{episode.pk}/cut/preflight").json()

    spoken, unvoiced = preflight["lines"]
    assert (spoken["scene_number"], spoken["speaker"], spoken["text"], spoken["sound"]) == (
        1,
        "Mina Okafor",
        "We launch at dawn.",
        "new_reading",
    )
    assert Decimal(spoken["estimate"]) > 0
    assert preflight["speech_cost"] == spoken["estimate"]
    assert (unvoiced["sound"], unvoiced["estimate"]) == ("none", None)
    assert unvoiced["problem"] == "A voice off screen has no voice to read it."
    assert not Job.objects.filter(kind=JobKind.SPEECH).exists()


def test_another_workspaces_episode_is_404(api_as, episode):
    outsider = api_as("outsider")

    assert outsider.get(f"/api/v1/episodes/{episode.pk}/cut/preflight").status_code == 404
    assert outsider.get(f"/api/v1/episodes/{episode.pk}/cuts").status_code == 404
    assert outsider.post(f"/api/v1/episodes/{episode.pk}/cuts", {}).status_code == 404
    assert not Cut.objects.exists()


# --- Starting a cut ----------------------------------------------------------------------------


def test_starting_a_cut_answers_201_and_sends_it_to_be_assembled(api, episode):
    response = api.post(
        f"/api/v1/episodes/{episode.pk}/cuts", {"crossfade": 0.5, "burn_subtitles": True}
    )

    assert response.status_code == 201
    cut = Cut.objects.get()
    assert response["Location"] == f"/api/v1/cuts/{cut.pk}"
    body = response.json()
    assert (body["id"], body["number"], body["state"]) == (cut.pk, 1, "rendering")
    assert body["status"] == "Assembling 0%"
    assert body["options"] | {"size": None, "fps": None} == {
        "crossfade": 0.5,
        "title_card": True,
        "end_card": True,
        "burn_subtitles": True,
        "size": None,
        "fps": None,
    }
    assert cut.created_by.memberships.get().role == "owner"  # the token's owner
    assert all(url is None for url in body["files"].values())


def test_a_cut_started_without_a_body_takes_the_forms_defaults(client, tokens, episode):
    bearer = {"Authorization": f"Bearer {tokens['editor']}"}  # as `curl -X POST` sends it

    response = client.generic("POST", f"/api/v1/episodes/{episode.pk}/cuts", headers=bearer)

    assert response.status_code == 201
    assert Cut.objects.get().options["title_card"] is True


def test_a_cut_is_refused_while_a_scene_has_no_selected_take_and_nothing_is_made(api, episode):
    SceneFactory(episode=episode, title="Night")

    response = api.post(f"/api/v1/episodes/{episode.pk}/cuts", {})

    assert response.status_code == 422
    assert response.json()["detail"] == (
        "This episode cannot be assembled yet. Scene 3 has no selected take."
    )
    assert not Cut.objects.exists()


def test_a_cut_pays_for_its_speech_through_the_ledger(api, episode, mina, speech):
    give_voice(mina, speech)
    scene_dialogue_set(scene=_scene(episode, 1), text="@mina: We launch at dawn.")

    body = api.post(f"/api/v1/episodes/{episode.pk}/cuts", {}).json()

    assert (body["state"], body["status"]) == ("dubbing", "Making speech 0 of 1 line")
    reading = LineReading.objects.get()
    reserve = LedgerEntry.objects.get(job=reading.job)
    assert (reserve.kind, reserve.scope) == ("reserve", series_scope(episode.series_id))
    assert reserve.amount == reading.job.cost_estimate > 0


def test_speech_over_the_budget_is_a_422_and_starts_nothing(api, episode, mina, speech):
    give_voice(mina, speech)
    scene_dialogue_set(scene=_scene(episode, 1), text="@mina: We launch at dawn.")
    budget_set(
        workspace=episode.series.workspace,
        scope=series_scope(episode.series_id),
        cap=Decimal("0"),
        period=Budget.Period.MONTH,
        label="Harbour Lights",
    )

    response = api.post(f"/api/v1/episodes/{episode.pk}/cuts", {})

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("The speech for this cut was not started: This would cost about $")
    assert "Harbour Lights has $0.00 left this month" in detail
    assert not Cut.objects.exists()
    assert not Job.objects.filter(kind=JobKind.SPEECH).exists()


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_only_owners_and_editors_start_cuts(api_as, episode, role):
    assert api_as(role).post(f"/api/v1/episodes/{episode.pk}/cuts", {}).status_code == 403
    assert not Cut.objects.exists()


@pytest.mark.redis
def test_starting_cuts_too_fast_is_a_429_with_retry_after(api, settings, episode):
    settings.RATE_LIMIT_GENERATE = "1/60"
    assert api.post(f"/api/v1/episodes/{episode.pk}/cuts", {}).status_code == 201

    refused = api.post(f"/api/v1/episodes/{episode.pk}/cuts", {})

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert "nothing was made or charged" in refused.json()["detail"]
    assert Cut.objects.count() == 1


# --- Reading cuts ------------------------------------------------------------------------------


@pytest.fixture
def cut(api, episode):
    """A finished cut of the episode, assembled in this process as a worker would."""
    started = api.post(f"/api/v1/episodes/{episode.pk}/cuts", {}).json()
    return cut_assembly.cut_assemble(cut_id=started["id"])


def test_a_finished_cut_has_its_length_and_files_which_download_with_the_token(
    api, api_as, episode, cut
):
    response = api.get(f"/api/v1/cuts/{cut.pk}")

    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["progress"], body["stale"]) == ("done", 100, [])
    assert body["duration"] == pytest.approx(6.5, abs=0.2)
    files = body["files"]
    assert files["video"] == f"http://testserver/api/v1/cuts/{cut.pk}/files/video"
    assert {name for name, url in files.items() if url} >= {
        "video",
        "subtitles_vtt",
        "subtitles_srt",
        "chapters",
        "otio",
        "fcpxml",
        "edl",
        "zip",
    }
    assert api_as("none").get(files["video"]).status_code == 401
    assert api_as("outsider").get(files["video"]).status_code == 404
    video = api_as("viewer").get(files["video"])
    assert (video.status_code, video["Content-Type"]) == (200, "video/mp4")
    assert b"ftyp" in b"".join(video.streaming_content)[:64]  # read to the end: closes it
    package = api_as("viewer").get(files["zip"])
    assert package["Content-Type"] == "application/zip"
    assert b"".join(package.streaming_content).startswith(b"PK")
    assert f"episode-{episode.number}-cut-1.zip" in package["Content-Disposition"]


def test_a_cut_says_why_it_is_stale_once_the_episode_changes(api, episode, cut):
    scene = _scene(episode, 2)
    other = take_with_video(scene, scene.takes.get().job.provider_account, seconds=1.0,
                            selected=False)  # fmt: skip
    services.take_select(take=other)

    body = api.get(f"/api/v1/cuts/{cut.pk}").json()

    assert body["stale"] == ["Scene 2's selected take changed since this cut."]


def test_an_episodes_cuts_are_listed_newest_first(api, episode, cut):
    second = api.post(f"/api/v1/episodes/{episode.pk}/cuts", {}).json()

    first_page = api.get(f"/api/v1/episodes/{episode.pk}/cuts", {"limit": 1}).json()
    second_page = api.get(
        f"/api/v1/episodes/{episode.pk}/cuts", {"limit": 1, "cursor": first_page["next_cursor"]}
    ).json()

    assert [c["number"] for c in first_page["items"]] == [2]
    assert first_page["items"][0]["id"] == second["id"]
    assert [c["number"] for c in second_page["items"]] == [1]
    assert second_page["next_cursor"] is None


def test_another_workspaces_cut_is_404(api_as, workspace, cut):
    assert api_as("outsider").get(f"/api/v1/cuts/{cut.pk}").status_code == 404
    assert api_as("viewer").get(f"/api/v1/cuts/{cut.pk}").status_code == 200
    other = EpisodeFactory(series__workspace=workspace)
    assert api_as("viewer").get(f"/api/v1/episodes/{other.pk}/cuts").json()["items"] == []
