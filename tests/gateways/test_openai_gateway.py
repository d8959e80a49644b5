"""The OpenAI Videos gateway as a script sees it: OpenAI's own SDK (and plain httpx) over
real HTTP against the live server, every exchange checked against OpenAI's spec."""

from __future__ import annotations

import time
from decimal import Decimal

import openai
import pytest

from characters.models import Character
from jobs.models import Budget, Job, LedgerEntry
from studio.models import Role, Scene, Take
from tests.factories import WorkspaceFactory
from tests.gateways.conftest import assert_openai_error
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import clip_bytes, image_bytes
from tests.support.api import Api, make_token

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    # The SDK marks the Videos API deprecated (OpenAI shut Sora down); the protocol lives on.
    pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning"),
]


def _series(studio: dict):
    return studio["episode"].series


def _take(video) -> Take:
    return Take.objects.select_related("job__provider_account", "scene__episode").get(
        pk=int(video.id.removeprefix("video_"))
    )


def _wait(client: openai.OpenAI, video_id: str, timeout: float = 60.0):
    """Poll as the SDK's poll() does (sleeping what openai-poll-after-ms says), with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        raw = client.videos.with_raw_response.retrieve(video_id)
        video = raw.parse()
        if video.status in ("completed", "failed"):
            assert "openai-poll-after-ms" not in raw.headers
            return video
        assert time.monotonic() < deadline, f"{video_id} still {video.status}"
        time.sleep(int(raw.headers["openai-poll-after-ms"]) / 1000)


def test_a_script_makes_polls_downloads_remixes_lists_and_deletes_videos_with_the_sdk(
    studio, gateway
):
    series = _series(studio)
    token = make_token(studio["workspace"], role=Role.EDITOR, series=series)
    client = gateway.sdk(token)

    made = client.videos.create(
        prompt="A lighthouse turns over a grey sea.", seconds="4", size="1280x720"
    )
    assert (made.object, made.status, made.seconds, made.size) == (
        "video",
        "queued",
        "4",
        "1280x720",
    )
    assert made.prompt == "A lighthouse turns over a grey sea."
    # The take is on the series' storyboard, in its Inbox, made the way the web makes one.
    take = _take(made)
    assert take.scene.episode.inbox
    assert take.scene.episode.series == series
    assert take.job.provider_account == studio["accounts"]["openai"]
    assert take.job.routing["policy"] == series.routing_policy
    assert take.job.budget_scope == f"series:{series.pk}"
    assert LedgerEntry.objects.filter(job=take.job, kind="reserve", amount=Decimal("0.40")).exists()

    done = _wait(client, made.id)
    assert (done.status, done.progress, done.model) == ("completed", 100, "sora-2")
    assert done.completed_at >= done.created_at
    assert done.expires_at is None
    assert done.error is None

    video = client.videos.download_content(made.id)
    assert video.content[4:8] == b"ftyp"  # an MP4
    thumbnail = client.videos.download_content(made.id, variant="thumbnail")
    assert thumbnail.content[:4] == b"RIFF"
    assert thumbnail.content[8:12] == b"WEBP"
    assert client.videos.download_content(made.id, variant="spritesheet").content[8:12] == b"WEBP"

    remix = client.videos.remix(made.id, prompt="The lighthouse goes dark.")
    assert remix.remixed_from_video_id == made.id
    assert remix.prompt == "The lighthouse goes dark."
    assert _take(remix).parent == take
    assert _take(remix).job.kind == "remix"

    first = client.videos.list(limit=1)
    assert [v.id for v in first.data] == [remix.id]
    assert first.has_more
    assert (first.first_id, first.last_id) == (remix.id, remix.id)
    rest = client.videos.list(limit=1, after=first.last_id)
    assert [v.id for v in rest.data] == [made.id]
    assert not rest.has_more
    assert [v.id for v in client.videos.list(order="asc").data] == [made.id, remix.id]

    # An extension (not in this SDK's typed calls as JSON): its seconds are the stitched total.
    extended = gateway.http(token).post(
        "/videos/extensions",
        json={"prompt": "The beam sweeps on.", "seconds": "4", "video": {"id": made.id}},
    )
    assert extended.status_code == 200
    assert (extended.json()["seconds"], extended.json()["remixed_from_video_id"]) == ("8", None)
    assert _take(client.videos.retrieve(extended.json()["id"])).job.kind == "extend"

    # Deleting a take (cancelled first if it is still being made, as the web does) leaves its
    # job on record.
    remix_job = _take(remix).job
    deleted = client.videos.delete(remix.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (remix.id, "video.deleted", True)
    assert not Take.objects.filter(pk=int(remix.id.removeprefix("video_"))).exists()
    assert Job.objects.filter(pk=remix_job.pk).exists()
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(remix.id)
    assert [v.id for v in client.videos.list().data] == [extended.json()["id"], made.id]
    # Once none of its takes is left, the Inbox scene goes too.
    scene = _take(made).scene
    client.videos.delete(extended.json()["id"])
    client.videos.delete(made.id)
    assert not Scene.objects.filter(pk=scene.pk).exists()

    seen = gateway.check()
    assert ("GET", f"/gateway/openai/v1/videos/{made.id}/content", 200) in seen
    assert ("POST", f"/gateway/openai/v1/videos/{made.id}/remix", 200) in seen
    assert ("POST", "/gateway/openai/v1/videos/extensions", 200) in seen


def test_a_video_is_not_made_when_the_budget_has_no_room_or_too_many_were_started(
    quiet_studio, gateway, settings
):
    workspace = quiet_studio["workspace"]
    client = gateway.sdk(make_token(workspace, series=_series(quiet_studio)))
    Budget.objects.create(workspace=workspace, scope="workspace", cap=Decimal("0.10"))

    with pytest.raises(openai.RateLimitError) as refused:
        client.videos.create(prompt="A storm at the harbour.", seconds="4", size="1280x720")
    error = assert_openai_error(refused.value.response)
    assert error["code"] == "insufficient_quota"
    assert "$0.10" in error["message"]  # what is left, in words
    assert (Take.objects.count(), Job.objects.count(), Scene.objects.count()) == (0, 0, 0)

    Budget.objects.all().delete()
    settings.RATE_LIMIT_GENERATE = "2/60"  # the refused create counted, as it does on the web
    client.videos.create(prompt="A storm at the harbour.", seconds="4", size="1280x720")
    with pytest.raises(openai.RateLimitError) as throttled:
        client.videos.create(prompt="Another storm.", seconds="4", size="1280x720")
    assert assert_openai_error(throttled.value.response)["code"] == "rate_limit_exceeded"
    assert int(throttled.value.response.headers["Retry-After"]) >= 1
    assert Take.objects.count() == 1
    gateway.check()


def test_the_series_routing_policy_picks_the_provider(quiet_studio, gateway):
    series = _series(quiet_studio)
    relay = quiet_studio["accounts"]["relay"]
    series.routing_policy, series.pinned_account, series.default_duration = "pinned", relay, 10
    series.save()
    client = gateway.sdk(make_token(quiet_studio["workspace"], series=series))

    # No `seconds`: the series' default length, one the relay makes.
    made = client.videos.create(prompt="The jetty at dawn.", size="720x1280")
    assert (made.model, made.seconds) == ("sora_relay", "10")
    take = _take(made)
    assert take.job.provider_account == relay
    assert take.job.routing["policy"] == "pinned"

    # A length the pinned relay cannot make is refused in words, and nothing is made.
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.create(prompt="The jetty at noon.", seconds="8", size="720x1280")
    assert "8" in assert_openai_error(refused.value.response)["message"]
    assert Take.objects.count() == 1
    gateway.check()


def test_only_the_workspace_sees_its_videos_and_only_editors_make_them(quiet_studio, gateway):
    workspace = quiet_studio["workspace"]
    made = gateway.sdk(make_token(workspace)).videos.create(prompt="A quiet harbour.", seconds="4")
    # A token bound to no series makes its takes in the workspace's "From the API" series.
    assert _take(made).scene.episode.series.title == "From the API"

    outsider = gateway.sdk(make_token(WorkspaceFactory()))
    for call in (
        lambda: outsider.videos.retrieve(made.id),
        lambda: outsider.videos.download_content(made.id),
        lambda: outsider.videos.delete(made.id),
        lambda: outsider.videos.remix(made.id, prompt="Mine now."),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert outsider.videos.list().data == []
    assert Take.objects.filter(pk=_take(made).pk).exists()

    viewer = gateway.sdk(make_token(workspace, role=Role.VIEWER))
    assert viewer.videos.retrieve(made.id).id == made.id
    with pytest.raises(openai.PermissionDeniedError):
        viewer.videos.create(prompt="Not allowed.", seconds="4")
    with pytest.raises(openai.PermissionDeniedError):
        viewer.videos.delete(made.id)
    with pytest.raises(openai.AuthenticationError):
        gateway.sdk("cb_not_a_token").videos.list()
    assert gateway.http(None).get("/videos").status_code == 401

    editor = gateway.http(make_token(workspace))
    # Its content is a 404 until the video is made, as at OpenAI.
    not_ready = editor.get(f"/videos/{made.id}/content")
    assert (not_ready.status_code, assert_openai_error(not_ready)["code"]) == (
        404,
        "video_not_ready",
    )
    edit = editor.post("/videos/edits", json={"prompt": "Brighter.", "video": {"id": made.id}})
    assert edit.status_code == 400
    assert "edit" in assert_openai_error(edit)["message"]
    # No provider of this workspace starts a video from a given picture: said, nothing made.
    framed = editor.post(
        "/videos",
        data={"prompt": "From this picture.", "seconds": "4", "size": "1280x720"},
        files={"input_reference": ("start.png", image_bytes(size=(1280, 720)), "image/png")},
    )
    assert framed.status_code == 400
    assert "cannot start a video from a given picture" in assert_openai_error(framed)["message"]
    unknown = editor.post("/videos", json={"prompt": "Hi", "characters": [{"id": "char_999"}]})
    assert assert_openai_error(unknown) == {
        "message": "Character 'char_999' not found.",
        "type": "invalid_request_error",
        "param": "characters",
        "code": "character_not_found",
    }
    assert Take.objects.count() == 1
    gateway.check()


def test_a_character_made_from_a_clip_is_cast_in_a_video(quiet_studio, gateway):
    series = _series(quiet_studio)
    client = gateway.sdk(make_token(quiet_studio["workspace"], series=series))

    made = client.videos.create_character(
        name="Captain Rosa", video=("rosa.mp4", clip_bytes(seconds=3.0), "video/mp4")
    )
    assert made.id.startswith("char_")
    assert made.name == "Captain Rosa"
    rosa = Character.objects.get(pk=int(made.id.removeprefix("char_")))
    assert (rosa.workspace, rosa.handle) == (quiet_studio["workspace"], "captain_rosa")
    assert [asset.kind for asset in rosa.assets.all()] == ["clip"]
    assert client.videos.get_character(made.id).model_dump() == made.model_dump()

    video = client.videos.create(
        prompt="Captain Rosa walks along the pier.",
        seconds="4",
        size="1280x720",
        extra_body={"characters": [{"id": made.id}]},
    )
    scene = _take(video).scene
    assert list(scene.mentions.all()) == [rosa]
    assert scene.prompt == "@captain_rosa walks along the pier."

    with pytest.raises(openai.NotFoundError):
        gateway.sdk(make_token(WorkspaceFactory())).videos.get_character(made.id)
    gateway.check()


def test_a_repeated_create_with_an_idempotency_key_makes_one_video_and_odd_calls_are_refused(
    workspace,
):
    """Without a live server: what the middleware and the URLs answer around the views."""
    ProviderAccountFactory(workspace=workspace, kind="openai", model="sora-2")
    api = Api(make_token(workspace))
    body = {"prompt": "A kite over the dunes.", "seconds": "4", "size": "1280x720"}
    key = {"Idempotency-Key": "kite-1"}
    first = api.post("/gateway/openai/v1/videos", json=body, headers=key)
    again = api.post("/gateway/openai/v1/videos", json=body, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Take.objects.count() == 1

    unknown = api.get("/gateway/openai/v1/videos/video_1/thumbnails")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_url"
    wrong = api.client.put(
        "/gateway/openai/v1/videos", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert (wrong.status_code, wrong["Allow"]) == (405, "GET, POST")
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    typo = api.post("/gateway/openai/v1/videos", json={**body, "duration": 4})
    assert typo.json()["error"] == {
        "message": "Unknown parameter: 'duration'.",
        "type": "invalid_request_error",
        "param": "duration",
        "code": "unknown_parameter",
    }
