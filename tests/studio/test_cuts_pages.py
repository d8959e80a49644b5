"""The cut pages: the episode's cut page (what is missing, with links to the scenes' cards;
lines to dub and their price; the options; Assemble; every cut), a cut's progress that
updates itself, its player with subtitles and chapters, contact sheet, downloads and speech
charges, its files (the video answers byte ranges), and the episode page's cut panel.
Viewers watch and download; owners and editors assemble; another team gets a 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from studio import cut_assembly, cuts, services
from studio.dialogue import scene_dialogue_set
from studio.models import Cut
from tests.factories import CharacterFactory, MembershipFactory, SceneFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.support.cuts import episode_to_cut, give_voice, stored_bytes, take_with_video
from tests.support.pages import messages_of, visible_text

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def episode(workspace):
    episode = episode_to_cut(workspace, seconds=(1.0, 1.5))
    CharacterFactory(workspace=workspace, name="Mina Okafor", handle="mina")
    scene_dialogue_set(scene=episode.scenes.get(position=0), text="@mina: We launch at dawn.")
    return episode


@pytest.fixture
def done(episode, owner) -> Cut:
    cut = cuts.cut_start(episode=episode, options=cuts.CutOptions(), user=owner)
    return cut_assembly.cut_assemble(cut_id=cut.pk)


def _page_url(episode) -> str:
    return reverse("episode_cut", args=[episode.series.workspace.slug, episode.pk])


def _file_url(cut: Cut, variant: str) -> str:
    episode = cut.episode
    return reverse(
        "cut_file", args=[episode.series.workspace.slug, episode.pk, cut.number, variant]
    )


# --- The episode's cut page -------------------------------------------------------------------


def test_the_cut_page_lists_scenes_without_a_take_with_links_to_their_cards(owner_client, episode):
    night = SceneFactory(episode=episode, title="Night")

    response = owner_client.get(_page_url(episode))

    page = response.content.decode()
    assert "Scene 3: Night has no selected take" in visible_text(page)
    assert f'href="{episode.get_absolute_url()}#scene-{night.pk}"' in page
    assert "disabled>Assemble" in page


def test_the_cut_page_prices_the_lines_to_dub_and_lists_those_without_a_voice(
    owner_client, workspace, episode
):
    speech = ProviderAccountFactory(
        workspace=workspace, name="ElevenLabs", kind="elevenlabs", model="eleven_multilingual_v2"
    )
    ilse = CharacterFactory(workspace=workspace, name="Ilse", handle="ilse")
    give_voice(ilse, speech)
    scene_dialogue_set(scene=episode.scenes.get(position=1), text="@ilse: Then we sleep now.")

    text = visible_text(owner_client.get(_page_url(episode)).content.decode())

    preflight = cuts.cut_preflight(episode)
    price = f"${preflight.speech_cost:.2f}"
    assert (
        f"Scene 2 Ilse : “Then we sleep now.” in Rachel’s voice at ElevenLabs, about {price}"
        in text
    )
    assert "Lines without a voice" in text
    assert "Mina Okafor : “We launch at dawn.” Mina Okafor has no voice yet" in text
    assert f"Assemble (speech about {price})" in text


def test_assemble_starts_a_cut_and_shows_its_page(owner_client, episode):
    response = owner_client.post(
        _page_url(episode), {"crossfade": "0.5", "title_card": "on", "burn_subtitles": "on"}
    )

    cut = Cut.objects.get(episode=episode)
    assert response.status_code == 302
    assert response.url == cut.get_absolute_url()
    assert (cut.number, cut.state) == (1, Cut.State.RENDERING)
    assert cut.options | {"size": None, "fps": None} == {
        "crossfade": 0.5,
        "title_card": True,
        "end_card": False,
        "burn_subtitles": True,
        "size": None,
        "fps": None,
    }


def test_assemble_with_every_box_unticked_makes_a_plain_cut(owner_client, episode):
    response = owner_client.post(_page_url(episode), {})

    assert response.status_code == 302
    cut = Cut.objects.get(episode=episode)
    assert (cut.options["title_card"], cut.options["end_card"], cut.options["crossfade"]) == (
        False,
        False,
        0.0,
    )


def test_assemble_is_refused_with_the_missing_scenes_and_keeps_the_options(owner_client, episode):
    SceneFactory(episode=episode, title="Night")

    response = owner_client.post(_page_url(episode), {"crossfade": "1.5", "end_card": "on"})

    assert response.status_code == 400
    assert messages_of(response) == [
        "This episode cannot be assembled yet.",
        "Scene 3 has no selected take.",
    ]
    assert not Cut.objects.exists()
    page = response.content.decode()
    assert 'value="1.5"' in page


def test_a_crossfade_out_of_range_is_refused_on_the_form(owner_client, episode):
    response = owner_client.post(_page_url(episode), {"crossfade": "5"})

    assert response.status_code == 400
    assert "Ensure this value is less than or equal to 2" in response.content.decode()
    assert not Cut.objects.exists()


def test_the_cut_page_lists_every_cut_with_its_state_and_a_stale_mark(owner_client, episode, done):
    second = cuts.cut_start(episode=episode, options=cuts.CutOptions())
    scene = episode.scenes.get(position=1)
    services.take_select(
        take=take_with_video(
            scene, scene.takes.get().job.provider_account, seconds=1.0, selected=False
        )
    )

    page = owner_client.get(_page_url(episode)).content.decode()

    text = visible_text(page)
    assert "Cut 2 Assembling" in text
    assert f"Cut 1 Done {done.created_at:%-d %b %Y}" in text
    assert 'title="Scene 2&#x27;s selected take changed since this cut."' in page
    assert page.count('class="badge stale"') == 1  # only a finished cut is called stale
    assert second.get_absolute_url() in page


# --- A cut --------------------------------------------------------------------------------


def test_a_finished_cut_plays_with_its_subtitles_chapters_and_downloads(client, members, done):
    client.force_login(members["viewer"])

    response = client.get(done.get_absolute_url())

    page = response.content.decode()
    video, subtitles = _file_url(done, "video"), _file_url(done, "subtitles-vtt")
    assert f'<video id="cut-video" controls preload="metadata" playsinline src="{video}">' in page
    assert (
        f'<track kind="subtitles" src="{subtitles}" srclang="en" label="Subtitles" default>' in page
    )
    assert f'<track kind="chapters" src="{_file_url(done, "chapters")}"' in page
    scenes = done.manifest["scenes"]
    assert 'data-seek="2.000"' in page  # the title card first, then scene 1
    assert f'href="{done.episode.get_absolute_url()}#scene-{scenes[1]["scene"]}"' in page
    assert _file_url(done, "contact-sheet") in page
    for variant in ("video", "subtitles-vtt", "subtitles-srt", "otio", "fcpxml", "edl", "zip"):
        assert f'href="{_file_url(done, variant)}" download' in page
    text = visible_text(page)
    assert "1. Launch 2.0 s card 2. The harbour 3.0 s card" in text
    assert "stale" not in text
    assert "Assemble again" not in text  # a viewer watches; owners and editors assemble


def test_a_stale_cut_says_why(owner_client, episode, done):
    scene_dialogue_set(scene=episode.scenes.get(position=0), text="@mina: We launch at noon.")

    text = visible_text(owner_client.get(done.get_absolute_url()).content.decode())

    assert (
        "This cut is stale: the episode changed since it was made. Scene 1's dialogue changed."
        in text
    )


def test_a_cut_in_progress_updates_itself_until_it_is_done(owner_client, episode):
    cut = cuts.cut_start(episode=episode, options=cuts.CutOptions())
    Cut.objects.filter(pk=cut.pk).update(progress=40)

    page = owner_client.get(cut.get_absolute_url()).content.decode()
    assert "Assembling 40%" in page
    assert f'hx-get="{cut.get_absolute_url()}" hx-trigger="every 1s"' in page
    assert 'aria-valuenow="40"' in page

    fragment = owner_client.get(cut.get_absolute_url(), headers=HTMX)
    assert "<html" not in fragment.content.decode()
    assert "Assembling 40%" in fragment.content.decode()
    assert "HX-Refresh" not in fragment

    cut_assembly.cut_assemble(cut_id=cut.pk)
    finished = owner_client.get(cut.get_absolute_url(), headers=HTMX)
    assert finished["HX-Refresh"] == "true"  # the page reloads to show the player


def test_a_failed_cut_says_why(owner_client, episode):
    cut = cuts.cut_start(episode=episode, options=cuts.CutOptions())
    Cut.objects.filter(pk=cut.pk).update(
        state=Cut.State.FAILED, message="Scene 2's take is missing its video file."
    )

    text = visible_text(owner_client.get(cut.get_absolute_url()).content.decode())

    assert "This cut failed. Scene 2's take is missing its video file." in text


def test_the_speech_charges_of_a_cut_link_to_the_costs_page(owner_client, workspace, episode):
    speech = ProviderAccountFactory(
        workspace=workspace, name="ElevenLabs", kind="elevenlabs", model="eleven_multilingual_v2"
    )
    give_voice(episode.scenes.get(position=0).lines.get().character, speech)
    cut = cuts.cut_start(episode=episode, options=cuts.CutOptions())
    estimate = cut.manifest and cuts.cut_speech_charges(cut)[0].job.cost_estimate

    page = owner_client.get(cut.get_absolute_url()).content.decode()

    text = visible_text(page)
    assert "Making speech 0 of 1 line" in text
    assert f"1 Mina Okafor : “We launch at dawn.” ElevenLabs Waiting about ${estimate:.4f}" in text
    assert reverse("costs", args=[workspace.slug]) in page


# --- Files --------------------------------------------------------------------------------


def test_the_video_answers_whole_and_in_byte_ranges(owner_client, done):
    whole = owner_client.get(_file_url(done, "video"))
    assert whole.status_code == 200
    assert whole["Content-Type"] == "video/mp4"
    assert whole["Accept-Ranges"] == "bytes"
    data = b"".join(whole.streaming_content)
    assert data == stored_bytes(done.video.name)

    part = owner_client.get(_file_url(done, "video"), headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert b"".join(part.streaming_content) == data[100:200]


@pytest.mark.parametrize(
    ("variant", "content_type", "starts"),
    [
        ("subtitles-vtt", "text/vtt; charset=utf-8", b"WEBVTT"),
        ("subtitles-srt", "application/x-subrip; charset=utf-8", b"1\n"),
        ("chapters", "text/vtt; charset=utf-8", b"WEBVTT"),
        ("contact-sheet", "image/jpeg", b"\xff\xd8"),
        ("otio", "application/json", b"{"),
        ("fcpxml", "application/xml", b"<?xml"),
        ("edl", "text/plain; charset=utf-8", b"TITLE"),
        ("zip", "application/zip", b"PK"),
    ],
)
def test_each_file_of_a_cut_has_its_content_type(
    client, members, done, variant, content_type, starts
):
    client.force_login(members["viewer"])

    response = client.get(_file_url(done, variant))

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response.getvalue().startswith(starts)
    assert "harbour-lights-episode-1-cut-1" in response["Content-Disposition"]


def test_an_unknown_file_or_one_not_made_yet_is_a_404(owner_client, episode, done):
    assert owner_client.get(_file_url(done, "script")).status_code == 404
    waiting = cuts.cut_start(episode=episode, options=cuts.CutOptions())
    assert owner_client.get(_file_url(waiting, "video")).status_code == 404


def test_another_teams_cut_and_its_files_are_a_404(client, done):
    stranger = MembershipFactory(role="owner")
    client.force_login(stranger.user)
    episode = done.episode
    for url in (
        reverse("cut_detail", args=[stranger.workspace.slug, episode.pk, done.number]),
        reverse("cut_file", args=[stranger.workspace.slug, episode.pk, done.number, "video"]),
        reverse("episode_cut", args=[stranger.workspace.slug, episode.pk]),
        done.get_absolute_url(),
    ):
        assert client.get(url).status_code == 404


# --- The episode page's panel ---------------------------------------------------------------


def test_the_episode_page_shows_the_current_cut_and_links_to_it(owner_client, episode, done):
    page = owner_client.get(episode.get_absolute_url()).content.decode()

    assert f'<a href="{done.get_absolute_url()}"><strong>Cut 1</strong></a>' in page
    assert "Done · 6.5 s" in visible_text(page)
    assert "hx-trigger" not in page.split('id="cut-panel"')[1].split(">")[0]


def test_the_episode_page_panel_updates_itself_while_a_cut_is_made(owner_client, episode):
    page = owner_client.get(episode.get_absolute_url()).content.decode()
    assert "No cut yet. Assemble the episode…" in visible_text(page)

    cut = cuts.cut_start(episode=episode, options=cuts.CutOptions())
    Cut.objects.filter(pk=cut.pk).update(progress=40)
    page = owner_client.get(episode.get_absolute_url()).content.decode()
    status = reverse("episode_cut_status", args=[episode.series.workspace.slug, episode.pk])
    assert f'hx-get="{status}" hx-trigger="every 2s"' in page
    assert "Assembling 40%" in page

    polled = owner_client.get(status, headers=HTMX)
    assert polled.status_code == 200
    assert "Assembling 40%" in polled.content.decode()
    cut_assembly.cut_assemble(cut_id=cut.pk)
    assert owner_client.get(status, headers=HTMX).status_code == 286  # stop polling


def test_the_episode_page_panel_marks_a_stale_cut(owner_client, episode, done):
    SceneFactory(episode=episode, title="Night")

    text = visible_text(owner_client.get(episode.get_absolute_url()).content.decode())

    assert "stale" in text
    assert "Scene 3 was added since this cut." in text


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner", 200), ("editor", 200), ("reviewer", 200), ("viewer", 200), ("outsider", 404)],
)
def test_every_member_may_download_a_cut_and_an_outsider_gets_a_404(
    client, members, done, role, status
):
    client.force_login(members[role])

    response = client.get(_file_url(done, "zip"))

    assert response.status_code == status
    response.close()
