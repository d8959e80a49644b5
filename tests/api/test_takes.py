"""Takes through the REST API: reading and filtering them, quoting a scene, generating one
take or an episode's worth (paid through the same services as the web, refused in plain words
with nothing made), the generation rate limit shared with the web, and each take's actions
with the web's roles."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from jobs.models import Budget, ErrorCode, Job, JobState, LedgerEntry
from studio.models import Take
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory, TakeFactory
from tests.jobs.factories import ProviderAccountFactory, studio_scene
from tests.support.api import Api, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def openai(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai", model="sora-2")


@pytest.fixture
def relay(workspace):
    return ProviderAccountFactory(workspace=workspace, name="Relay", kind="sora_relay", model="")


@pytest.fixture
def episode(workspace):
    series = SeriesFactory(workspace=workspace, title="Harbour Lights")
    return EpisodeFactory(series=series, title="Launch day")


@pytest.fixture
def scene(episode):
    """4 s at 1280x720: OpenAI's sora-2 makes it ($0.40); the relay makes only 5, 10, 15 s."""
    return SceneFactory(episode=episode, prompt="The lamp turns over a grey sea.", duration=4)


RELAY_CANNOT = [
    "Sora relay makes videos of 5, 10, 15 seconds; this scene asks for 4.",
    "Sora relay cannot make 1280x720; it makes 720x1280.",
]


def _generate(api: Api, scene, **body):
    return api.post(f"/api/v1/scenes/{scene.pk}/takes", body)


def _finished(scene, account, **fields) -> Take:
    """A take whose job succeeded at `account`, with a stored video and still."""
    take = TakeFactory(scene=scene, account=account, job__provider_job_id="video_1", **fields)
    take.job.video.save("video.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42 video"))
    take.job.thumbnail.save("thumb.jpg", ContentFile(b"\xff\xd8\xff jpeg"))
    return take


# --- Reading -----------------------------------------------------------------------------------


def test_a_new_take_reads_with_its_provider_routing_estimate_and_review(api, scene, openai):
    made = _generate(api, scene).json()

    response = api.get(f"/api/v1/takes/{made['id']}")

    assert response.status_code == 200
    take = response.json()
    assert take == made
    series = scene.episode.series
    assert {k: take[k] for k in ("scene_id", "episode_id", "series_id", "kind", "state")} == {
        "scene_id": scene.pk,
        "episode_id": scene.episode_id,
        "series_id": series.pk,
        "kind": "generate",
        "state": "pending",
    }
    assert take["provider_account"] == {"id": openai.pk, "name": "OpenAI", "kind": "openai"}
    assert take["routing_policy"] == "cost"
    assert take["routing_reason"]
    assert (take["estimate"], take["cost"]) == ("0.40", None)
    assert take["prompt"].startswith("The lamp turns over a grey sea.")
    assert take["review"]["state"] == "pending"
    assert (take["is_selected"], take["parent_id"], take["finished_at"]) == (False, None, None)
    assert (take["video_url"], take["thumbnail_url"]) == (None, None)


def test_a_failed_take_says_why_in_plain_words_and_keeps_its_prompt(api, scene, openai):
    take = TakeFactory(
        scene=scene,
        account=openai,
        state=JobState.FAILED,
        job__error_code=ErrorCode.MODERATION,
        job__error_message="OpenAI refused the prompt (moderation).",
    )

    body = api.get(f"/api/v1/takes/{take.pk}").json()

    assert (body["state"], body["error_code"]) == ("failed", "moderation")
    assert body["error_message"] == "OpenAI refused the prompt (moderation)."
    assert body["prompt"] == "A harbour"  # the job's request, as it was sent


def test_a_finished_takes_files_download_with_the_token_only(api, api_as, scene, openai):
    take = _finished(scene, openai)

    body = api.get(f"/api/v1/takes/{take.pk}").json()

    assert body["video_url"] == f"http://testserver/api/v1/takes/{take.pk}/content"
    assert body["thumbnail_url"].endswith(f"/takes/{take.pk}/content?variant=thumbnail")
    assert api_as("none").get(body["video_url"]).status_code == 401
    assert api_as("outsider").get(body["video_url"]).status_code == 404
    video = api_as("viewer").get(body["video_url"])
    assert (video.status_code, video["Content-Type"]) == (200, "video/mp4")
    assert b"".join(video.streaming_content).endswith(b"ftypmp42 video")  # closes it
    ranged = api_as("viewer").get(body["video_url"], headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206
    with take.job.video.open("rb") as stored:
        assert b"".join(ranged.streaming_content) == stored.read(4)


def test_a_take_not_finished_has_no_content_yet(api, scene, openai):
    take = TakeFactory(scene=scene, account=openai)

    response = api.get(f"/api/v1/takes/{take.pk}/content")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_takes_are_listed_newest_first_a_page_at_a_time(api, scene, openai):
    ids = [TakeFactory(scene=scene, account=openai).pk for _ in range(5)]

    first = api.get("/api/v1/takes", {"limit": 2}).json()
    second = api.get("/api/v1/takes", {"limit": 2, "cursor": first["next_cursor"]}).json()
    third = api.get("/api/v1/takes", {"limit": 2, "cursor": second["next_cursor"]}).json()

    listed = [t["id"] for page in (first, second, third) for t in page["items"]]
    assert listed == sorted(ids, reverse=True)
    assert third["next_cursor"] is None


def test_takes_are_filtered_by_scene_episode_series_state_review_and_selection(
    api, workspace, scene, openai
):
    other_scene = SceneFactory(episode=scene.episode)
    elsewhere = SceneFactory(episode__series__workspace=workspace)
    chosen = TakeFactory(scene=scene, account=openai, is_selected=True, review_state="approved")
    running = TakeFactory(scene=scene, account=openai, state=JobState.RUNNING)
    rejected = TakeFactory(scene=other_scene, account=openai, review_state="rejected")
    far = TakeFactory(scene=elsewhere, account=openai)

    def listed(**filters) -> set[int]:
        response = api.get("/api/v1/takes", filters)
        assert response.status_code == 200
        return {t["id"] for t in response.json()["items"]}

    assert listed() == {chosen.pk, running.pk, rejected.pk, far.pk}
    assert listed(scene_id=scene.pk) == {chosen.pk, running.pk}
    assert listed(episode_id=scene.episode_id) == {chosen.pk, running.pk, rejected.pk}
    assert listed(series_id=elsewhere.episode.series_id) == {far.pk}
    assert listed(state="running") == {running.pk}
    assert listed(review="rejected") == {rejected.pk}
    assert listed(selected="true") == {chosen.pk}
    assert listed(selected="false", scene_id=scene.pk) == {running.pk}
    assert api.get("/api/v1/takes", {"state": "melted"}).status_code == 422


def test_another_workspaces_takes_are_never_listed_and_are_404(api_as, scene, openai):
    take = TakeFactory(scene=scene, account=openai)
    outsider = api_as("outsider")

    assert outsider.get("/api/v1/takes").json()["items"] == []
    assert outsider.get(f"/api/v1/takes/{take.pk}").status_code == 404
    assert outsider.get(f"/api/v1/takes?scene_id={scene.pk}").json()["items"] == []
    assert api_as("viewer").get(f"/api/v1/takes/{take.pk}").status_code == 200


# --- Quoting -------------------------------------------------------------------------------------


def test_the_estimate_names_the_chosen_account_and_why_the_others_are_out(
    api, scene, openai, relay
):
    response = api.post(f"/api/v1/scenes/{scene.pk}/estimate", {})

    assert response.status_code == 200
    quote = response.json()
    assert quote["policy"] == "cost"
    assert quote["chosen"]["account"]["id"] == openai.pk
    assert quote["chosen"]["estimate"] == "0.40"
    assert quote["problems"] == []
    by_name = {option["account"]["name"]: option for option in quote["options"]}
    assert (by_name["OpenAI"]["place"], by_name["OpenAI"]["estimate"]) == (1, "0.40")
    assert by_name["Relay"]["place"] is None
    assert by_name["Relay"]["problems"] == RELAY_CANNOT
    assert not Job.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_an_estimate_at_an_account_chosen_by_hand_says_what_it_cannot_do(api, scene, relay):
    quote = api.post(f"/api/v1/scenes/{scene.pk}/estimate", {"account_id": relay.pk}).json()

    assert (quote["policy"], quote["chosen"]) == ("manual", None)
    assert quote["problems"] == RELAY_CANNOT


def test_an_estimate_with_no_provider_says_so(api, scene):
    quote = api.post(f"/api/v1/scenes/{scene.pk}/estimate", {}).json()

    assert quote["chosen"] is None
    assert quote["problems"] == ["No provider account is switched on in this workspace."]


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("reviewer", 403), ("outsider", 404)]
)
def test_only_owners_and_editors_quote(api_as, scene, openai, role, status):
    assert api_as(role).post(f"/api/v1/scenes/{scene.pk}/estimate", {}).status_code == status


# --- Generating one take -------------------------------------------------------------------------


def test_generating_reserves_the_estimate_and_answers_201_with_the_take(api, scene, openai):
    response = _generate(api, scene)

    assert response.status_code == 201
    take = Take.objects.get()
    assert response["Location"] == f"/api/v1/takes/{take.pk}"
    assert response.json()["id"] == take.pk
    assert take.scene == scene
    assert take.created_by.memberships.get().role == "owner"  # the token's owner
    reserve = LedgerEntry.objects.get()
    assert (reserve.kind, reserve.amount, reserve.job) == ("reserve", Decimal("0.4000"), take.job)


def test_a_post_without_a_body_lets_the_routing_policy_choose(client, tokens, scene, openai):
    bearer = {"Authorization": f"Bearer {tokens['editor']}"}  # as `curl -X POST` sends it

    quoted = client.generic("POST", f"/api/v1/scenes/{scene.pk}/estimate", headers=bearer)
    made = client.generic("POST", f"/api/v1/scenes/{scene.pk}/takes", headers=bearer)

    assert quoted.json()["chosen"]["account"]["id"] == openai.pk
    assert made.status_code == 201
    assert made.json()["provider_account"]["id"] == openai.pk


def test_an_account_chosen_by_hand_is_used_as_it_is(api, scene, openai, workspace):
    pricier = ProviderAccountFactory(workspace=workspace, name="Backup", kind="openai")
    pricier.price_override = Decimal("0.50")
    pricier.save()

    body = _generate(api, scene, account_id=pricier.pk).json()

    assert body["provider_account"]["name"] == "Backup"
    assert body["routing_policy"] == "manual"
    assert body["routing_reason"] == "Chosen by hand: Backup (about $2.00)."


def test_a_policy_for_one_request_leaves_the_scene_as_it_was(api, scene, openai):
    body = _generate(api, scene, policy="stability").json()

    assert body["routing_policy"] == "stability"
    scene.refresh_from_db()
    assert scene.routing_policy == ""


@pytest.mark.parametrize("which", ["another workspace's", "switched off"])
def test_an_account_that_is_not_available_is_refused_in_plain_words(
    api, scene, openai, members, which
):
    if which == "switched off":
        account = ProviderAccountFactory(workspace=scene.episode.series.workspace, enabled=False)
    else:
        account = ProviderAccountFactory(workspace=members["outsider"].memberships.get().workspace)

    response = _generate(api, scene, account_id=account.pk)

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "account_id",
            "message": "That provider account is not available in this workspace.",
        }
    ]
    assert not Job.objects.exists()


def test_an_account_and_a_policy_at_once_are_refused(api, scene, openai):
    response = _generate(api, scene, account_id=openai.pk, policy="cost")

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "policy"


def test_over_budget_is_a_422_in_plain_words_and_nothing_is_made(api, workspace, scene, openai):
    Budget.objects.create(workspace=workspace, cap=Decimal("0.10"))

    response = _generate(api, scene)

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == (
        "This would cost about $0.40, but the workspace has $0.10 left this month of its "
        "$0.10 budget. An owner can raise the cap on the Costs page."
    )
    assert not Take.objects.exists()
    assert not Job.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_no_provider_able_to_make_the_scene_is_a_422_naming_why(api, scene, relay):
    response = _generate(api, scene)

    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith("No provider can make this scene as it stands. Relay: ")
    assert [e["message"] for e in body["errors"]][1:] == ["Relay: " + " ".join(RELAY_CANNOT)]
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("reviewer", 403), ("outsider", 404)]
)
def test_only_owners_and_editors_generate(api_as, scene, openai, role, status):
    assert _generate(api_as(role), scene).status_code == status
    assert not Job.objects.exists()


@pytest.mark.redis
def test_generating_too_fast_is_a_429_with_retry_after_and_nothing_made(
    api, settings, scene, openai
):
    settings.RATE_LIMIT_GENERATE = "2/60"
    assert [_generate(api, scene).status_code for _ in range(2)] == [201, 201]

    refused = _generate(api, scene)

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["detail"].startswith(
        "That is more takes than you may start in a short while; nothing was made or charged."
    )
    assert Job.objects.count() == 2


@pytest.mark.redis
def test_a_token_shares_its_owners_generation_allowance_with_the_web(
    client, api, owner, settings, scene, openai
):
    settings.RATE_LIMIT_GENERATE = "2/60"
    client.force_login(owner)  # the owner the test tokens act for
    url = reverse("scene_generate", args=[scene.episode.series.workspace.slug, scene.pk])
    assert [client.post(url, {"account": "auto"}).status_code for _ in range(2)] == [302, 302]

    assert _generate(api, scene).status_code == 429
    assert Job.objects.count() == 2


# --- Generating an episode -----------------------------------------------------------------------


@pytest.fixture
def board(episode, scene, openai):
    """Scene 1 (the `scene` fixture) waits; scene 2 has a selected take; scene 3 mentions a
    character nobody has; scene 4 has a take on its way."""
    selected = SceneFactory(episode=episode, duration=4)
    TakeFactory(scene=selected, account=openai, is_selected=True)
    unknown = SceneFactory(episode=episode, duration=4, prompt="@nobody waves.")
    busy = SceneFactory(episode=episode, duration=4)
    TakeFactory(scene=busy, account=openai, state=JobState.RUNNING)
    return {"waiting": scene, "selected": selected, "unknown": unknown, "busy": busy}


def test_a_batch_makes_a_take_of_each_waiting_scene_and_says_why_not_for_the_others(
    api, episode, board
):
    response = api.post(f"/api/v1/episodes/{episode.pk}/takes", {})

    assert response.status_code == 201
    batch = response.json()
    assert [t["scene_id"] for t in batch["made"]] == [board["waiting"].pk]
    assert batch["estimate_total"] == "0.40"
    [refused] = batch["refused"]
    assert (refused["scene_id"], refused["scene_number"]) == (board["unknown"].pk, 3)
    assert refused["reasons"][0] == "No provider can make this scene as it stands."
    assert "@nobody is not a character in this workspace" in refused["reasons"][1]
    assert [(s["scene_id"], s["reason"]) for s in batch["skipped"]] == [
        (board["selected"].pk, "It has a selected take."),
        (board["busy"].pk, "A take of it is on its way."),
    ]
    assert Take.objects.filter(scene=board["waiting"]).count() == 1
    assert Take.objects.filter(scene=board["unknown"]).count() == 0


def test_a_batch_of_named_scenes_makes_them_even_when_they_have_takes(api, episode, board):
    named = [board["selected"].pk, board["waiting"].pk, board["waiting"].pk]

    batch = api.post(f"/api/v1/episodes/{episode.pk}/takes", {"scene_ids": named}).json()

    assert [t["scene_id"] for t in batch["made"]] == [board["waiting"].pk, board["selected"].pk]
    assert batch["skipped"] == []


def test_a_batch_naming_a_scene_of_another_episode_is_refused_and_makes_nothing(
    api, workspace, episode, board
):
    stranger = SceneFactory(episode__series__workspace=workspace)

    response = api.post(
        f"/api/v1/episodes/{episode.pk}/takes", {"scene_ids": [board["waiting"].pk, stranger.pk]}
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "scene_ids", "message": f"Not scenes of this episode: {stranger.pk}."}
    ]
    assert not Take.objects.filter(scene=board["waiting"]).exists()


def test_a_batch_at_an_account_chosen_by_hand(api, workspace, episode, board):
    backup = ProviderAccountFactory(workspace=workspace, name="Backup", kind="openai")

    batch = api.post(f"/api/v1/episodes/{episode.pk}/takes", {"account_id": backup.pk}).json()

    assert [t["provider_account"]["name"] for t in batch["made"]] == ["Backup"]
    assert batch["made"][0]["routing_policy"] == "manual"


def test_a_batch_where_nothing_can_go_is_a_422_naming_each_scene(api, workspace, episode, board):
    Budget.objects.create(workspace=workspace, cap=Decimal("0"))

    response = api.post(f"/api/v1/episodes/{episode.pk}/takes", {})

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [
        f"scenes.{board['waiting'].pk}",
        f"scenes.{board['unknown'].pk}",
        f"scenes.{board['unknown'].pk}",
    ]
    assert errors[0]["message"].startswith("Scene 1: This would cost about $0.40, but the ")
    assert not Job.objects.filter(take__scene=board["waiting"]).exists()


def test_a_batch_with_nothing_waiting_says_so(api, workspace, openai):
    episode = EpisodeFactory(series__workspace=workspace)
    done = SceneFactory(episode=episode, duration=4)
    TakeFactory(scene=done, account=openai, is_selected=True)

    response = api.post(f"/api/v1/episodes/{episode.pk}/takes", {})

    assert response.status_code == 422
    assert response.json()["detail"].startswith("Every scene of this episode has a selected take")


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("reviewer", 403), ("outsider", 404)]
)
def test_only_owners_and_editors_generate_an_episode(api_as, episode, board, role, status):
    before = Job.objects.count()
    assert api_as(role).post(f"/api/v1/episodes/{episode.pk}/takes", {}).status_code == status
    assert Job.objects.count() == before


# --- One take's actions --------------------------------------------------------------------------


def test_cancelling_a_waiting_take_stops_it_and_releases_its_reservation(api, scene, openai):
    made = _generate(api, scene).json()

    response = api.post(f"/api/v1/takes/{made['id']}/cancel")

    assert response.status_code == 200
    body = response.json()
    assert body["outcome"] == "stopped"
    assert body["message"] == f"Take {made['id']} was cancelled; nothing more is charged for it."
    assert body["take"]["state"] == "cancelled"
    kinds = sorted(LedgerEntry.objects.values_list("kind", "amount"))
    assert kinds == [
        ("charge", Decimal("0")),
        ("release", Decimal("0.4")),
        ("reserve", Decimal("0.4")),
    ]
    again = api.post(f"/api/v1/takes/{made['id']}/cancel")
    assert again.status_code == 422
    assert (
        again.json()["detail"] == f"Take {made['id']} has already finished; nothing was cancelled."
    )


def test_selecting_a_finished_take_unselects_the_scenes_other(api, scene, openai):
    before = TakeFactory(scene=scene, account=openai, is_selected=True)
    after = TakeFactory(scene=scene, account=openai)

    response = api.post(f"/api/v1/takes/{after.pk}/select")

    assert response.status_code == 200
    assert response.json()["is_selected"] is True
    before.refresh_from_db()
    assert before.is_selected is False


def test_an_unfinished_take_cannot_be_selected(api, scene, openai):
    running = TakeFactory(scene=scene, account=openai, state=JobState.RUNNING)

    response = api.post(f"/api/v1/takes/{running.pk}/select")

    assert response.status_code == 422
    assert response.json()["detail"] == "Only a finished take can be selected."


def test_a_reviewer_approves_with_notes_and_scores(api_as, scene, openai, owner):
    take = TakeFactory(scene=scene, account=openai)
    body = {"decision": "approve", "notes": "Lovely light.", "scores": {"face": 90, "style": 70}}

    response = api_as("reviewer").post(f"/api/v1/takes/{take.pk}/review", body)

    assert response.status_code == 200
    review = response.json()["review"]
    assert (review["state"], review["notes"]) == ("approved", "Lovely light.")
    assert review["scores"] == {"face": 90, "clothing": None, "style": 70}
    take.refresh_from_db()
    assert take.reviewed_by == owner  # the token's owner


def test_a_rejection_needs_a_reason_and_keeps_its_codes(api_as, scene, openai):
    take = TakeFactory(scene=scene, account=openai)
    reviewer = api_as("reviewer")

    bare = reviewer.post(f"/api/v1/takes/{take.pk}/review", {"decision": "reject"})
    assert bare.status_code == 422
    assert bare.json()["detail"].startswith("Say why the take is rejected")
    unknown = reviewer.post(
        f"/api/v1/takes/{take.pk}/review", {"decision": "reject", "codes": ["vibes"]}
    )
    assert unknown.status_code == 422

    response = reviewer.post(
        f"/api/v1/takes/{take.pk}/review",
        {"decision": "reject", "codes": ["face", "motion"], "reason": "Her face drifts."},
    )

    review = response.json()["review"]
    assert (review["state"], review["codes"], review["reason"]) == (
        "rejected",
        ["face", "motion"],
        "Her face drifts.",
    )


def test_an_unfinished_take_cannot_be_reviewed(api, scene, openai):
    running = TakeFactory(scene=scene, account=openai, state=JobState.RUNNING)

    response = api.post(f"/api/v1/takes/{running.pk}/review", {"decision": "approve"})

    assert response.status_code == 422
    assert response.json()["detail"] == "Only a finished take can be reviewed."


@pytest.mark.parametrize(
    ("role", "action", "status"),
    [
        ("viewer", "review", 403),
        ("viewer", "select", 403),
        ("viewer", "cancel", 403),
        ("reviewer", "select", 403),
        ("reviewer", "cancel", 403),
        ("reviewer", "retry", 403),
        ("outsider", "review", 404),
        ("outsider", "select", 404),
    ],
)
def test_roles_act_on_takes_as_on_the_web(api_as, scene, openai, role, action, status):
    take = TakeFactory(scene=scene, account=openai)

    response = api_as(role).post(f"/api/v1/takes/{take.pk}/{action}", {"decision": "approve"})

    assert response.status_code == status
    take.refresh_from_db()
    assert (take.review_state, take.is_selected) == ("pending", False)


def test_a_failed_take_is_retried_at_the_same_account(api, scene, openai):
    failed = TakeFactory(scene=scene, account=openai, state=JobState.FAILED)

    response = api.post(f"/api/v1/takes/{failed.pk}/retry")

    assert response.status_code == 201
    again = response.json()
    assert again["id"] != failed.pk
    assert (again["state"], again["provider_account"]["id"]) == ("pending", openai.pk)
    assert again["routing_reason"] == f"A retry of take {failed.pk}."
    assert response["Location"] == f"/api/v1/takes/{again['id']}"
    finished = TakeFactory(scene=scene, account=openai)
    refused = api.post(f"/api/v1/takes/{finished.pk}/retry")
    assert refused.status_code == 422
    assert refused.json()["detail"] == "Only a failed or cancelled take can be retried."


def test_a_finished_take_is_remixed_and_extended_at_its_provider(api, scene, openai):
    source = _finished(scene, openai)

    remix = api.post(f"/api/v1/takes/{source.pk}/remix", {"prompt": "The same, at night."})
    extend = api.post(f"/api/v1/takes/{source.pk}/extend", {"prompt": "It sets.", "seconds": 4})

    assert (remix.status_code, extend.status_code) == (201, 201)
    assert (remix.json()["kind"], remix.json()["parent_id"]) == ("remix", source.pk)
    assert (extend.json()["kind"], extend.json()["parent_id"]) == ("extend", source.pk)
    assert remix.json()["routing_policy"] == "same"
    assert LedgerEntry.objects.filter(kind="reserve").count() == 2


def test_an_extension_of_a_length_the_provider_does_not_offer_is_refused(api, scene, openai):
    source = _finished(scene, openai)

    response = api.post(f"/api/v1/takes/{source.pk}/extend", {"prompt": "It sets.", "seconds": 5})

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "seconds"
    assert "5 is not one of the available choices" in error["message"]
    assert Take.objects.count() == 1


# --- All the way through a provider -------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_take_made_through_the_api_succeeds_and_its_video_downloads_with_the_token(
    studio, wait_for_job, client
):
    scene = studio_scene(studio, "@mina walks along the pier.")
    api = Api(make_token(studio["workspace"], role="editor"))

    made = _generate(api, scene)

    assert made.status_code == 201
    wait_for_job(Take.objects.get(pk=made.json()["id"]).job)
    take = api.get(f"/api/v1/takes/{made.json()['id']}").json()
    assert (take["state"], take["progress"]) == ("succeeded", 100)
    assert take["provider_account"]["name"] == "OpenAI"
    assert take["cost"] == take["estimate"]
    assert take["finished_at"] is not None
    assert client.get(take["video_url"]).status_code == 401  # no token
    video = api.get(take["video_url"])
    assert (video.status_code, video["Content-Type"]) == (200, "video/mp4")
    assert b"ftyp" in b"".join(video.streaming_content)[:64]
    video.close()
    thumbnail = api.get(take["thumbnail_url"])
    thumbnail.close()
    assert (thumbnail.status_code, thumbnail["Content-Type"]) == (200, "image/jpeg")
