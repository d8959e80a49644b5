"""Takes from the storyboard: generate one or all, and each take action's page or fragment."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from jobs.models import Job, JobState
from studio.models import Take
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory, TakeFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.studio.test_generate_all import run_batches
from tests.support.pages import is_fragment

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
FROM_STORYBOARD = {"from": "storyboard"}


@pytest.fixture
def episode(workspace):
    return EpisodeFactory(series=SeriesFactory(workspace=workspace))


@pytest.fixture
def scene(episode):
    return SceneFactory(episode=episode, prompt="Gulls.", duration=8, size="1280x720")


@pytest.fixture
def accounts(workspace):
    return {
        "openai": ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai"),
        "relay": ProviderAccountFactory(
            workspace=workspace, name="Relay", kind="sora_relay", model=""
        ),
    }


def _slug(scene) -> str:
    return scene.episode.series.workspace.slug


# --- Generating one take -------------------------------------------------------------


def test_the_generate_panel_prices_each_provider_or_says_why_not(owner_client, scene, accounts):
    url = reverse("scene_generate", args=[_slug(scene), scene.pk])
    response = owner_client.get(url, headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert is_fragment(response)
    assert page.lstrip().startswith('<form method="post"')
    assert 'class="generate-panel"' in page
    assert f'hx-post="{url}"' in page
    assert "about $0.80" in page
    assert "Sora relay makes videos of 5, 10, 15 seconds; this scene asks for 8." in page
    assert "Generate 1 take" in page


def test_the_generate_panel_offers_no_button_when_no_provider_can(owner_client, scene, accounts):
    accounts["openai"].enabled = False
    accounts["openai"].save()
    page = owner_client.get(
        reverse("scene_generate", args=[_slug(scene), scene.pk]), headers=HTMX
    ).content.decode()
    assert "Generate 1 take" not in page
    assert "OpenAI" not in page  # a switched-off account is not offered


def test_the_generate_panel_without_javascript_is_the_scene_page(owner_client, scene, accounts):
    response = owner_client.get(reverse("scene_generate", args=[_slug(scene), scene.pk]))
    assert response.status_code == 302
    assert response.url == scene.get_absolute_url()


def test_generating_with_htmx_answers_with_the_card_now_in_flight(owner_client, scene, accounts):
    url = reverse("scene_generate", args=[_slug(scene), scene.pk])
    response = owner_client.post(url, {"account": accounts["openai"].pk}, headers=HTMX)
    page = response.content.decode()
    take = Take.objects.get(scene=scene)
    assert response.status_code == 200
    assert is_fragment(response)
    assert response.headers["HX-Retarget"] == f"#scene-{scene.pk}"
    assert response.headers["HX-Reswap"] == "outerHTML"
    assert page.lstrip().startswith(f'<li class="scene-card card" id="scene-{scene.pk}"')
    assert "status-in-flight" in page
    assert f'sse-swap="scene-{scene.pk}"' in page  # the page's event stream keeps it current
    assert f"Take {take.pk} of scene 1 is on its way to OpenAI (about $0.80)." in page


def test_generating_without_javascript_returns_to_the_page_it_came_from(
    owner_client, scene, accounts
):
    url = reverse("scene_generate", args=[_slug(scene), scene.pk])
    back = f"{scene.episode.get_absolute_url()}#scene-{scene.pk}"
    response = owner_client.post(url, {"account": accounts["openai"].pk, "next": back})
    assert response.status_code == 302
    assert response.url == back
    response = owner_client.post(url, {"account": accounts["openai"].pk})
    newest = Take.objects.filter(scene=scene).latest("pk")
    assert response.url == f"{scene.get_absolute_url()}#take-{newest.pk}"
    response = owner_client.post(
        url, {"account": accounts["openai"].pk, "next": "https://evil.example/"}
    )
    assert response.url.startswith(scene.get_absolute_url())


def test_a_refused_generation_with_htmx_says_why_on_the_unchanged_card(
    owner_client, scene, accounts
):
    url = reverse("scene_generate", args=[_slug(scene), scene.pk])
    response = owner_client.post(url, {"account": accounts["relay"].pk}, headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Sora relay makes videos of 5, 10, 15 seconds; this scene asks for 8." in page
    assert "No take yet" in page
    assert not Take.objects.exists()


# --- One take's actions ------------------------------------------------------------------


def test_a_take_card_is_a_fragment_that_polls_until_its_job_ends(owner_client, scene, accounts):
    take = TakeFactory(scene=scene, account=accounts["openai"], state=JobState.QUEUED)
    url = reverse("take_card", args=[_slug(scene), take.pk])
    response = owner_client.get(url, headers=HTMX)
    assert response.status_code == 200
    assert is_fragment(response)
    assert f'hx-get="{url}" hx-trigger="every 1s"' in response.content.decode()
    Job.objects.filter(pk=take.job_id).update(
        state=JobState.SUCCEEDED, result={"duration": 4.0, "width": 1280, "height": 720}
    )
    response = owner_client.get(url, headers=HTMX)
    assert response.status_code == 286
    assert "hx-trigger" not in response.content.decode()


def test_cancelling_with_htmx_answers_with_the_take_card(owner_client, scene, accounts):
    take = TakeFactory(scene=scene, account=accounts["openai"], state=JobState.PENDING)
    response = owner_client.post(reverse("take_cancel", args=[_slug(scene), take.pk]), headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 286  # the card is final: its polling stops
    assert is_fragment(response)
    assert page.lstrip().startswith(f'<li class="card take" id="take-{take.pk}"')
    assert '<span class="badge state-cancelled">Cancelled</span>' in page
    assert f"Take {take.pk} was cancelled; nothing more is charged for it." in page


def test_cancelling_from_the_storyboard_answers_with_the_scene_card(owner_client, scene, accounts):
    take = TakeFactory(scene=scene, account=accounts["openai"], state=JobState.PENDING)
    response = owner_client.post(
        reverse("take_cancel", args=[_slug(scene), take.pk]), FROM_STORYBOARD, headers=HTMX
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == f"#scene-{scene.pk}"
    assert page.lstrip().startswith(f'<li class="scene-card card" id="scene-{scene.pk}"')
    assert "This take was stopped." in page


def test_cancelling_without_javascript_redirects_to_the_take(owner_client, scene, accounts):
    take = TakeFactory(scene=scene, account=accounts["openai"], state=JobState.PENDING)
    response = owner_client.post(reverse("take_cancel", args=[_slug(scene), take.pk]))
    assert response.status_code == 302
    assert response.url == f"{scene.get_absolute_url()}#take-{take.pk}"
    take.job.refresh_from_db()
    assert take.job.state == JobState.CANCELLED


def test_cancelling_a_finished_take_says_so(owner_client, scene, accounts):
    take = TakeFactory(scene=scene, account=accounts["openai"])
    response = owner_client.post(reverse("take_cancel", args=[_slug(scene), take.pk]), headers=HTMX)
    assert f"Take {take.pk} has already finished." in response.content.decode()
    take.job.refresh_from_db()
    assert take.job.state == JobState.SUCCEEDED


def test_selecting_with_htmx_refreshes_the_whole_takes_panel(owner_client, scene, accounts):
    old = TakeFactory(scene=scene, account=accounts["openai"], is_selected=True)
    new = TakeFactory(scene=scene, account=accounts["openai"])
    response = owner_client.post(reverse("take_select", args=[_slug(scene), new.pk]), headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert is_fragment(response)
    assert response.headers["HX-Retarget"] == "#takes"
    assert page.lstrip().startswith('<ul class="takes" id="takes">')
    assert f'<li class="card take selected" id="take-{new.pk}"' in page
    assert f'<li class="card take" id="take-{old.pk}"' in page
    assert f"Take {new.pk} is now the scene&#x27;s selected take." in page


def test_selecting_from_the_storyboard_answers_with_the_scene_card(owner_client, scene, accounts):
    take = TakeFactory(scene=scene, account=accounts["openai"])
    response = owner_client.post(
        reverse("take_select", args=[_slug(scene), take.pk]), FROM_STORYBOARD, headers=HTMX
    )
    page = response.content.decode()
    assert response.headers["HX-Retarget"] == f"#scene-{scene.pk}"
    assert f"Take {take.pk} chosen" in page


def test_selecting_without_javascript_redirects_to_the_take(owner_client, scene, accounts):
    take = TakeFactory(scene=scene, account=accounts["openai"])
    response = owner_client.post(reverse("take_select", args=[_slug(scene), take.pk]))
    assert response.status_code == 302
    assert response.url == f"{scene.get_absolute_url()}#take-{take.pk}"
    assert Take.objects.get(is_selected=True) == take


def test_retrying_from_the_storyboard_answers_with_the_card_in_flight_again(
    owner_client, scene, accounts
):
    failed = TakeFactory(
        scene=scene,
        account=accounts["openai"],
        state=JobState.FAILED,
        job__error_message="The provider was busy.",
        job__cost_estimate=Decimal("0.80"),
    )
    response = owner_client.post(
        reverse("take_retry", args=[_slug(scene), failed.pk]), FROM_STORYBOARD, headers=HTMX
    )
    page = response.content.decode()
    retry = Take.objects.exclude(pk=failed.pk).get()
    assert response.status_code == 200
    assert is_fragment(response)
    assert response.headers["HX-Retarget"] == f"#scene-{scene.pk}"
    assert "status-in-flight" in page
    assert "The provider was busy." not in page
    assert f"Take {retry.pk} retries take {failed.pk} at OpenAI" in page
    assert (retry.job.request, retry.job.cost_estimate) == (failed.job.request, Decimal("0.80"))


def test_retrying_on_the_scene_page_with_htmx_refreshes_the_takes_panel(
    owner_client, scene, accounts
):
    failed = TakeFactory(scene=scene, account=accounts["openai"], state=JobState.CANCELLED)
    response = owner_client.post(
        reverse("take_retry", args=[_slug(scene), failed.pk]), headers=HTMX
    )
    retry = Take.objects.exclude(pk=failed.pk).get()
    assert response.headers["HX-Retarget"] == "#takes"
    assert f'id="take-{retry.pk}"' in response.content.decode()


def test_retrying_without_javascript_redirects_to_the_new_take(owner_client, scene, accounts):
    failed = TakeFactory(scene=scene, account=accounts["openai"], state=JobState.FAILED)
    response = owner_client.post(reverse("take_retry", args=[_slug(scene), failed.pk]))
    retry = Take.objects.exclude(pk=failed.pk).get()
    assert response.status_code == 302
    assert response.url == f"{scene.get_absolute_url()}#take-{retry.pk}"


def test_a_finished_take_is_not_retried(owner_client, scene, accounts):
    take = TakeFactory(scene=scene, account=accounts["openai"])
    response = owner_client.post(
        reverse("take_retry", args=[_slug(scene), take.pk]), FROM_STORYBOARD, headers=HTMX
    )
    assert "Only a failed or cancelled take can be retried." in response.content.decode()
    assert Take.objects.count() == 1


def test_deleting_a_take_with_htmx_answers_with_only_the_message(owner_client, scene, accounts):
    take = TakeFactory(scene=scene, account=accounts["openai"])
    response = owner_client.post(reverse("take_delete", args=[_slug(scene), take.pk]), headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert is_fragment(response)
    assert page.lstrip().startswith('<div id="messages"')
    assert f"Take {take.pk} deleted." in page
    assert not Take.objects.exists()
    assert Job.objects.filter(pk=take.job_id).exists()  # what it cost stays on record


def test_deleting_a_take_without_javascript_asks_first_then_redirects(
    owner_client, scene, accounts
):
    take = TakeFactory(scene=scene, account=accounts["openai"])
    url = reverse("take_delete", args=[_slug(scene), take.pk])
    page = owner_client.get(url).content.decode()
    assert "<html" in page
    assert "Its video leaves the scene; what it cost stays on record." in page
    assert Take.objects.exists()
    response = owner_client.post(url)
    assert response.status_code == 302
    assert response.url == scene.get_absolute_url()
    assert not Take.objects.exists()


# --- Generating every missing take ---------------------------------------------------------


@pytest.fixture
def board(episode, accounts):
    """Five scenes: two OpenAI can make, one only the relay can, one chosen, one generating."""
    openai = accounts["openai"]
    fresh = SceneFactory(episode=episode, title="Fresh", duration=8, size="1280x720")
    chosen = SceneFactory(episode=episode, title="Chosen", duration=8, size="1280x720")
    TakeFactory(scene=chosen, account=openai, is_selected=True)
    busy = SceneFactory(episode=episode, title="Busy", duration=8, size="1280x720")
    TakeFactory(scene=busy, account=openai, state=JobState.RUNNING)
    tall = SceneFactory(episode=episode, title="Tall", duration=10, size="720x1280")
    failed = SceneFactory(episode=episode, title="Failed", duration=4, size="1280x720")
    TakeFactory(scene=failed, account=openai, state=JobState.FAILED)
    return {"fresh": fresh, "chosen": chosen, "busy": busy, "tall": tall, "failed": failed}


def test_generate_all_lists_the_takes_and_each_providers_total(
    owner_client, episode, accounts, board
):
    url = reverse("episode_generate", args=[episode.series.workspace.slug, episode.pk])
    response = owner_client.get(url)
    page = " ".join(response.content.decode().split())
    assert response.status_code == 200
    assert "3 of 5 scenes have no chosen take; 1 more is already generating" in page
    assert '<strong>OpenAI</strong>: 2 takes, about <strong class="price">$1.20</strong>' in page
    assert '<strong>Relay</strong>: 1 take, about <strong class="price">$0.12</strong>' in page
    assert (
        "Scene 4 is skipped: OpenAI makes videos of 4, 8, 12 seconds; this scene asks for 10."
        in (page)
    )
    assert "Scene 1 is skipped: Sora relay makes videos of 5, 10, 15 seconds" in page


def test_generate_all_makes_one_take_per_scene_still_missing_one(
    owner_client, episode, accounts, board
):
    before = {name: set(s.takes.values_list("pk", flat=True)) for name, s in board.items()}
    url = reverse("episode_generate", args=[episode.series.workspace.slug, episode.pk])
    response = owner_client.post(url, {"account": accounts["openai"].pk}, follow=True)
    assert "Creating 2 takes at OpenAI (about $1.20, reserved now)." in response.content.decode()
    run_batches()  # the worker's part: the takes are made by a task
    made = {name: list(s.takes.exclude(pk__in=before[name])) for name, s in board.items()}
    assert {name: len(takes) for name, takes in made.items()} == {
        "fresh": 1,
        "chosen": 0,
        "busy": 0,
        "tall": 0,  # OpenAI cannot make it: skipped, as the plan said
        "failed": 1,
    }
    for take in made["fresh"] + made["failed"]:
        assert take.job.provider_account == accounts["openai"]
        assert take.job.state == JobState.PENDING
    assert response.redirect_chain[-1][0] == episode.get_absolute_url()
    page = owner_client.get(episode.get_absolute_url()).content.decode()
    assert "2 takes on their way to OpenAI." in page


def test_generate_all_with_no_scene_the_provider_can_make_makes_nothing(
    owner_client, episode, accounts
):
    SceneFactory(episode=episode, duration=8, size="1280x720")
    url = reverse("episode_generate", args=[episode.series.workspace.slug, episode.pk])
    response = owner_client.post(url, {"account": accounts["relay"].pk})
    assert response.status_code == 200
    assert "No scene can go to Relay as it stands." in response.content.decode()
    assert not Take.objects.exists()


def test_generate_all_with_nothing_missing_says_so(owner_client, episode, accounts):
    TakeFactory(scene=SceneFactory(episode=episode), account=accounts["openai"], is_selected=True)
    url = reverse("episode_generate", args=[episode.series.workspace.slug, episode.pk])
    assert "Nothing to generate." in owner_client.get(url).content.decode()


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("reviewer", 403), ("outsider", 404)]
)
def test_generate_all_is_refused_to_those_who_may_not_generate(
    client, members, episode, accounts, board, role, status
):
    client.force_login(members[role])
    url = reverse("episode_generate", args=[episode.series.workspace.slug, episode.pk])
    assert client.get(url).status_code == status
    assert client.post(url, {"account": accounts["openai"].pk}).status_code == status
    assert Take.objects.count() == 3
