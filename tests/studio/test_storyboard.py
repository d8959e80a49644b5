"""The storyboard: what each card shows, and each scene view's page versus its htmx fragment."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from characters.models import CharacterShare, ReferenceAsset
from jobs.models import JobState
from studio.models import Scene
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
    WorkspaceFactory,
)
from tests.jobs.factories import ProviderAccountFactory
from tests.support.pages import is_fragment

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def episode(workspace):
    return EpisodeFactory(series=SeriesFactory(workspace=workspace, default_duration=8))


@pytest.fixture
def openai(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")


def _image(character, name: str = "front") -> ReferenceAsset:
    """An image reference row (its files are never read by the storyboard)."""
    return ReferenceAsset.objects.create(
        character=character,
        kind=ReferenceAsset.Kind.IMAGE,
        file=f"refs/{name}.png",
        thumbnail=f"refs/{name}.thumb.jpg",
        content_type="image/png",
        size_bytes=100,
        width=64,
        height=64,
    )


def _url(name: str, *args) -> str:
    return reverse(name, args=[*args])


def _slug(episode) -> str:
    return episode.series.workspace.slug


def _card(page: str, scene: Scene) -> str:
    """One scene's card out of a storyboard page or fragment."""
    start = page.index(f'id="scene-{scene.pk}"')
    return page[start : page.index("</li>", start)]


# --- What the storyboard shows -------------------------------------------------------


def test_a_card_shows_the_selected_takes_thumbnail_provider_and_cost(owner_client, episode, openai):
    scene = SceneFactory(episode=episode, duration=8, size="1280x720")
    TakeFactory(scene=scene, account=openai, job__cost_actual=Decimal("0.80"))
    chosen = TakeFactory(
        scene=scene, account=openai, is_selected=True, job__cost_actual=Decimal("1.20")
    )
    TakeFactory(scene=scene, account=openai, job__cost_actual=Decimal("0.40"))
    page = owner_client.get(episode.get_absolute_url()).content.decode()
    card = _card(page, scene)
    slug = _slug(episode)
    assert f'<img src="{_url("take_media", slug, chosen.pk, "thumbnail")}"' in card
    assert "placeholder" not in card
    assert f"Take {chosen.pk} chosen" in card
    assert "OpenAI · $1.20" in card
    assert "3 takes · $2.40 spent" in card
    assert "8 s · 1280x720" in card
    assert "Takes (3)" in card


def test_a_scene_without_takes_shows_the_placeholder(owner_client, episode):
    scene = SceneFactory(episode=episode, duration=4, size="720x1280")
    card = _card(owner_client.get(episode.get_absolute_url()).content.decode(), scene)
    assert '<span class="placeholder"' in card
    assert "No take yet" in card
    assert "4 s · 720x1280" in card
    assert "status-empty" in card


def test_an_unselected_finished_take_is_pictured_and_ready_to_choose(owner_client, episode, openai):
    scene = SceneFactory(episode=episode)
    finished = TakeFactory(scene=scene, account=openai, job__cost_actual=Decimal("0.80"))
    card = _card(owner_client.get(episode.get_absolute_url()).content.decode(), scene)
    assert _url("take_media", _slug(episode), finished.pk, "thumbnail") in card
    assert "Ready to choose" in card
    assert "OpenAI · $0.80" in card


def test_a_take_in_flight_shows_its_state_progress_and_estimate_and_listens(
    owner_client, episode, openai
):
    scene = SceneFactory(episode=episode)
    take = TakeFactory(
        scene=scene,
        account=openai,
        state=JobState.RUNNING,
        job__progress=40,
        job__cost_estimate=Decimal("0.8"),
    )
    card = _card(owner_client.get(episode.get_absolute_url()).content.decode(), scene)
    assert "status-in-flight" in card
    assert '<span class="badge state-running">Generating</span>' in card
    assert f'aria-label="Take {take.pk} progress"' in card
    assert 'aria-valuenow="40"' in card
    assert '<progress class="progress" max="100" value="40"' in card  # filled, with no style=
    assert "OpenAI · 40% · about $0.80" in card
    # Kept current by the page's one event stream (studio/views/live.py), not by polling.
    assert f'sse-swap="scene-{scene.pk}" hx-swap="outerHTML"' in card
    assert "hx-trigger" not in card


def test_a_failed_take_shows_its_plain_reason_with_retry_and_edit_prompt(
    owner_client, episode, openai
):
    scene = SceneFactory(episode=episode)
    failed = TakeFactory(
        scene=scene,
        account=openai,
        state=JobState.FAILED,
        job__error_message="The provider refused the prompt: it names a real person.",
    )
    card = _card(owner_client.get(episode.get_absolute_url()).content.decode(), scene)
    slug = _slug(episode)
    assert '<span class="badge state-failed">Failed</span>' in card
    assert '<div class="failure" role="alert">' in card
    assert "The provider refused the prompt: it names a real person." in card
    assert f'action="{_url("take_retry", slug, failed.pk)}"' in card
    assert '<input type="hidden" name="from" value="storyboard">' in card
    assert ">Retry</button>" in card
    assert f'hx-get="{_url("scene_edit", slug, scene.pk)}"' in card
    assert ">Edit prompt</a>" in card
    assert "hx-trigger" not in card  # nothing in flight: no polling


def test_a_cancelled_take_without_a_reason_says_it_was_stopped(owner_client, episode, openai):
    scene = SceneFactory(episode=episode)
    TakeFactory(scene=scene, account=openai, state=JobState.CANCELLED)
    card = _card(owner_client.get(episode.get_absolute_url()).content.decode(), scene)
    assert "This take was stopped." in card


def test_mentions_show_as_chips_with_the_characters_first_image(owner_client, workspace, episode):
    mina = CharacterFactory(workspace=workspace, handle="mina", name="Mina")
    first = _image(mina, "front")
    _image(mina, "profile")
    ilse = CharacterFactory(workspace=workspace, handle="ilse", name="Ilse")  # no image
    scene = SceneFactory(episode=episode, prompt="@mina meets @Ilse <b>at</b> the pier.")
    scene.mentions.set([mina, ilse])
    card = _card(owner_client.get(episode.get_absolute_url()).content.decode(), scene)
    slug = workspace.slug
    assert (
        f'<a class="chip mention" href="{_url("character_detail", slug, mina.pk)}" title="Mina">'
        f'<img src="{_url("asset_file", slug, mina.pk, first.pk, "thumbnail")}" alt="" '
        'loading="lazy">@mina</a>'
    ) in card
    assert (
        f'<a class="chip mention" href="{_url("character_detail", slug, ilse.pk)}" '
        'title="Ilse">@Ilse</a>'
    ) in card
    assert "&lt;b&gt;at&lt;/b&gt;" in card  # the rest of the prompt is escaped


def test_the_episode_header_counts_what_is_missing_and_generating(owner_client, episode, openai):
    SceneFactory(episode=episode)
    TakeFactory(scene=SceneFactory(episode=episode), account=openai, state=JobState.QUEUED)
    TakeFactory(scene=SceneFactory(episode=episode), account=openai, is_selected=True)
    page = owner_client.get(episode.get_absolute_url()).content.decode()
    assert "3 scenes · 1 generating · 1 without a chosen take" in page
    assert "Generate 1 missing take…" in page


# --- Scene views: a page without JavaScript, a fragment with htmx ------------------------


def test_adding_a_scene_with_htmx_opens_an_in_place_form(owner_client, episode):
    response = owner_client.get(_url("scene_create", _slug(episode), episode.pk), headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert is_fragment(response)
    assert page.lstrip().startswith('<li class="scene-card card editing" id="new-scene">')
    assert 'data-mention-url="' in page
    assert 'value="8"' in page  # the series' default duration


def test_adding_a_scene_after_another_with_htmx_names_it(owner_client, episode):
    first = SceneFactory(episode=episode, title="Dawn")
    url = _url("scene_create", _slug(episode), episode.pk) + f"?after={first.pk}"
    response = owner_client.get(url, headers=HTMX)
    page = response.content.decode()
    assert is_fragment(response)
    assert f'id="new-after-{first.pk}"' in page
    assert "New scene after scene 1" in page
    assert f'<input type="hidden" name="after" value="{first.pk}">' in page
    assert f'id="id_new{first.pk}_prompt"' in page  # ids apart from other open forms


def test_adding_a_scene_without_javascript_is_a_page(owner_client, episode):
    first = SceneFactory(episode=episode, title="Dawn")
    url = _url("scene_create", _slug(episode), episode.pk) + f"?after={first.pk}"
    response = owner_client.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" in page
    assert "New scene after “Dawn”" in page


def test_an_after_of_another_episode_is_ignored(owner_client, workspace, episode):
    elsewhere = SceneFactory(episode__series=episode.series, title="Elsewhere")
    url = _url("scene_create", _slug(episode), episode.pk) + f"?after={elsewhere.pk}"
    page = owner_client.get(url, headers=HTMX).content.decode()
    assert 'id="new-scene"' in page
    assert 'name="after"' not in page


def test_saving_a_new_scene_after_another_with_htmx_answers_with_the_cards_from_it_on(
    owner_client, episode
):
    first = SceneFactory(episode=episode, title="Dawn")
    SceneFactory(episode=episode, title="Dusk")
    response = owner_client.post(
        _url("scene_create", _slug(episode), episode.pk),
        {"title": "Noon", "prompt": "Gulls.", "duration": 8, "size": "1280x720", "after": first.pk},
        headers=HTMX,
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert is_fragment(response)
    assert response.headers["HX-Retarget"] == "#scene-list"
    assert response.headers["HX-Reswap"] == "beforeend"
    assert response.headers["Storyboard-From"] == "1"  # Dawn's card stays as it is
    assert ">Dawn<" not in page
    assert page.index(">Noon<") < page.index(">Dusk<")
    assert 'aria-label="Scene 3">3</span>' in page  # Dusk renumbered
    assert "Scene 2 added." in page
    assert 'id="messages"' in page
    assert 'hx-swap-oob="true"' in page


def test_saving_a_new_scene_without_javascript_redirects_to_its_card(owner_client, episode):
    response = owner_client.post(
        _url("scene_create", _slug(episode), episode.pk),
        {"title": "Noon", "prompt": "Gulls.", "duration": 8, "size": "1280x720"},
    )
    scene = Scene.objects.get(title="Noon")
    assert response.status_code == 302
    assert response.url == f"{episode.get_absolute_url()}?at={scene.pk}#scene-{scene.pk}"


def test_a_refused_new_scene_with_htmx_is_a_422_with_what_was_typed(owner_client, episode):
    response = owner_client.post(
        _url("scene_create", _slug(episode), episode.pk),
        {"title": "Dusk", "prompt": "@nobody at dusk", "duration": 8, "size": "1280x720"},
        headers=HTMX,
    )
    page = response.content.decode()
    assert response.status_code == 422
    assert is_fragment(response)
    assert "@nobody is not a character in this workspace or shared with it." in page
    assert "@nobody at dusk</textarea>" in page
    assert not Scene.objects.exists()


def test_editing_a_scene_with_htmx_swaps_the_card_for_a_form(owner_client, episode):
    scene = SceneFactory(episode=episode, prompt="Gulls over the pier.")
    response = owner_client.get(_url("scene_edit", _slug(episode), scene.pk), headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert is_fragment(response)
    assert page.lstrip().startswith(f'<li class="scene-card card editing" id="scene-{scene.pk}">')
    assert "Edit scene 1" in page
    assert "Gulls over the pier.</textarea>" in page
    assert f'hx-get="{_url("scene_card", _slug(episode), scene.pk)}"' in page  # Cancel


def test_editing_a_scene_without_javascript_is_a_page(owner_client, episode):
    scene = SceneFactory(episode=episode)
    response = owner_client.get(_url("scene_edit", _slug(episode), scene.pk))
    assert response.status_code == 200
    assert "<html" in response.content.decode()
    assert "Edit scene 1" in response.content.decode()


def test_saving_an_edited_scene_with_htmx_answers_with_its_card(owner_client, workspace, episode):
    CharacterFactory(workspace=workspace, handle="mina", name="Mina")
    scene = SceneFactory(episode=episode, prompt="Gulls.")
    response = owner_client.post(
        _url("scene_edit", _slug(episode), scene.pk),
        {"title": "Pier", "prompt": "@mina on the pier.", "duration": 4, "size": "1280x720"},
        headers=HTMX,
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert is_fragment(response)
    assert page.lstrip().startswith(f'<li class="scene-card card" id="scene-{scene.pk}"')
    assert "@mina</a> on the pier." in page
    assert "4 s · 1280x720" in page
    assert "Scene 1 saved." in page


def test_saving_an_edited_scene_without_javascript_redirects_to_its_card(owner_client, episode):
    scene = SceneFactory(episode=episode, prompt="Gulls.")
    response = owner_client.post(
        _url("scene_edit", _slug(episode), scene.pk),
        {"title": "Pier", "prompt": "Terns.", "duration": 4, "size": "1280x720"},
    )
    assert response.status_code == 302
    assert response.url == f"{episode.get_absolute_url()}?at={scene.pk}#scene-{scene.pk}"
    scene.refresh_from_db()
    assert (scene.prompt, scene.duration) == ("Terns.", 4)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            {"prompt": "@ghost on the pier", "duration": 8},
            "@ghost is not a character in this workspace or shared with it.",
        ),
        ({"prompt": "@ghost on the pier", "duration": 99}, "less than or equal to 60"),
    ],
    ids=["unknown-handle", "bad-duration"],
)
def test_a_refused_edit_with_htmx_is_a_422_keeping_what_was_typed(
    owner_client, episode, data, error
):
    scene = SceneFactory(episode=episode, prompt="Gulls.")
    response = owner_client.post(
        _url("scene_edit", _slug(episode), scene.pk),
        {"title": "Pier", "size": "1280x720", **data},
        headers=HTMX,
    )
    page = response.content.decode()
    assert response.status_code == 422
    assert is_fragment(response)
    assert page.lstrip().startswith(f'<li class="scene-card card editing" id="scene-{scene.pk}">')
    assert error in page
    assert "@ghost on the pier</textarea>" in page
    assert 'value="Pier"' in page
    scene.refresh_from_db()
    assert scene.prompt == "Gulls."


def test_a_refused_edit_without_javascript_is_the_page_with_the_error(owner_client, episode):
    scene = SceneFactory(episode=episode, prompt="Gulls.")
    response = owner_client.post(
        _url("scene_edit", _slug(episode), scene.pk),
        {"prompt": "@ghost on the pier", "duration": 8, "size": "1280x720"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" in page
    assert "@ghost is not a character in this workspace or shared with it." in page
    assert "@ghost on the pier</textarea>" in page


def test_a_scene_card_is_a_fragment_with_htmx_and_a_redirect_without(owner_client, episode):
    scene = SceneFactory(episode=episode)
    url = _url("scene_card", _slug(episode), scene.pk)
    response = owner_client.get(url, headers=HTMX)
    assert response.status_code == 200
    assert (
        response.content.decode()
        .lstrip()
        .startswith(f'<li class="scene-card card" id="scene-{scene.pk}"')
    )
    assert is_fragment(response)
    response = owner_client.get(url)
    assert response.status_code == 302
    assert response.url == f"{episode.get_absolute_url()}?at={scene.pk}#scene-{scene.pk}"


def test_a_cards_status_fragment_shows_a_take_in_flight_and_after(owner_client, episode, openai):
    scene = SceneFactory(episode=episode)
    take = TakeFactory(scene=scene, account=openai, state=JobState.RUNNING, job__progress=60)
    url = _url("scene_status", _slug(episode), scene.pk)
    response = owner_client.get(url, headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert is_fragment(response)
    assert page.lstrip().startswith('<div class="scene-status status-in-flight"')
    assert f'sse-swap="scene-{scene.pk}" hx-swap="outerHTML"' in page  # not polled
    assert "hx-trigger" not in page
    assert 'aria-valuenow="60"' in page
    take.job.state, take.job.cost_actual = JobState.SUCCEEDED, Decimal("0.80")
    take.job.save()
    response = owner_client.get(url, headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 286  # htmx stops polling
    assert "hx-trigger" not in page
    assert "hx-get" not in page
    assert 'role="progressbar"' not in page
    assert "Ready to choose" in page


def test_deleting_a_scene_with_htmx_answers_with_the_renumbered_cards_after_it(
    owner_client, episode
):
    first, second = (
        SceneFactory(episode=episode, title="Dawn"),
        SceneFactory(episode=episode, title="Dusk"),
    )
    response = owner_client.post(_url("scene_delete", _slug(episode), first.pk), headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert is_fragment(response)
    assert response.headers["HX-Retarget"] == "#scene-list"
    assert response.headers["Storyboard-From"] == "0"
    assert f'id="scene-{first.pk}"' not in page
    assert 'aria-label="Scene 1">1</span>' in _card(page, second)
    assert "Scene “Dawn” deleted." in page


def test_deleting_a_scene_without_javascript_asks_first_then_redirects(
    owner_client, episode, openai
):
    scene = SceneFactory(episode=episode, title="Dawn")
    TakeFactory(scene=scene, account=openai)
    TakeFactory(scene=scene, account=openai)
    url = _url("scene_delete", _slug(episode), scene.pk)
    page = owner_client.get(url).content.decode()
    assert "<html" in page
    assert "Its 2 takes leave the storyboard; what they cost stays on record." in page
    assert Scene.objects.filter(pk=scene.pk).exists()
    response = owner_client.post(url)
    assert response.status_code == 302
    assert response.url == episode.get_absolute_url()
    assert not Scene.objects.filter(pk=scene.pk).exists()


def test_duplicating_a_scene_with_htmx_answers_with_the_cards_from_the_copy_on(
    owner_client, episode
):
    first = SceneFactory(episode=episode, title="Dawn")
    SceneFactory(episode=episode, title="Dusk")
    response = owner_client.post(_url("scene_duplicate", _slug(episode), first.pk), headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert is_fragment(response)
    assert response.headers["HX-Retarget"] == "#scene-list"
    assert response.headers["Storyboard-From"] == "1"
    assert ">Dawn<" not in page
    assert page.index(">Dawn (copy)<") < page.index(">Dusk<")
    assert "Scene duplicated as scene 2." in page


def test_duplicating_a_scene_without_javascript_redirects_to_the_copy(owner_client, episode):
    first = SceneFactory(episode=episode, title="Dawn")
    response = owner_client.post(_url("scene_duplicate", _slug(episode), first.pk))
    copy = Scene.objects.get(title="Dawn (copy)")
    assert response.status_code == 302
    assert response.url == f"{episode.get_absolute_url()}?at={copy.pk}#scene-{copy.pk}"


def test_moving_a_scene_answers_with_the_cards_from_its_old_place_or_a_redirect(
    owner_client, episode
):
    SceneFactory(episode=episode, title="Dawn")
    last = SceneFactory(episode=episode, title="Dusk")
    url = _url("scene_move", _slug(episode), last.pk)
    response = owner_client.post(url, {"position": "0"}, headers=HTMX)
    assert response.status_code == 200
    assert is_fragment(response)
    assert response.headers["HX-Retarget"] == "#scene-list"
    assert response.headers["Storyboard-From"] == "0"
    page = response.content.decode()
    assert page.index(">Dusk<") < page.index(">Dawn<")
    response = owner_client.post(url, {"position": "1"})
    assert response.status_code == 302
    assert response.url == f"{episode.get_absolute_url()}?at={last.pk}#scene-{last.pk}"
    assert owner_client.post(url, {"position": "up"}, headers=HTMX).status_code == 400


# --- @-suggestions ----------------------------------------------------------------------


def test_suggestions_list_own_characters_first_then_shared_ones_by_prefix(owner_client, workspace):
    partner = WorkspaceFactory(name="Lighthouse Films")
    mina = CharacterFactory(workspace=workspace, handle="mina", name="Mina")
    front = _image(mina)
    CharacterFactory(workspace=workspace, handle="mira", name="Mira")
    CharacterFactory(workspace=workspace, handle="ilse", name="Ilse")
    shared = CharacterFactory(workspace=partner, handle="maat", name="Maat")
    CharacterShare.objects.create(
        character=shared,
        workspace=workspace,
        offered_slug=workspace.slug,
        status=CharacterShare.Status.ACCEPTED,
    )
    CharacterFactory(workspace=partner, handle="mole", name="Mole")  # not shared with us
    url = _url("mention_suggestions", workspace.slug)
    response = owner_client.get(url, {"q": "@Mi"}, headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert is_fragment(response)
    assert page.index('data-handle="mina"') < page.index('data-handle="mira"')
    assert "ilse" not in page
    assert "maat" not in page
    assert _url("asset_file", workspace.slug, mina.pk, front.pk, "thumbnail") in page
    assert '<span class="avatar" aria-hidden="true">M</span>' in page  # Mira has no image
    page = owner_client.get(url, {"q": "m"}, headers=HTMX).content.decode()
    handles = [h.split('"')[0] for h in page.split('data-handle="')[1:]]
    assert handles == ["mina", "mira", "maat"]
    assert "Maat · from Lighthouse Films" in page
    assert "Mina · from" not in page
    assert "mole" not in page


def test_suggestions_say_so_when_no_character_starts_with_what_was_typed(owner_client, workspace):
    CharacterFactory(workspace=workspace, handle="mina", name="Mina")
    url = _url("mention_suggestions", workspace.slug)
    page = owner_client.get(url, {"q": "zz"}, headers=HTMX).content.decode()
    assert "No character starts with “zz”." in page
    assert "data-handle" not in page
