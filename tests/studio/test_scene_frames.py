"""The pictures a scene starts from and ends on: kept like references (checked by content),
shown on the scene page, refused in plain words where a provider cannot take them, and
sent as first and last frames where it can (Veo: both; Runway: a first)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs.emulators.base import serve
from jobs.emulators.google import VertexVeoEmulator
from jobs.emulators.runway import RunwayEmulator
from jobs.models import ProviderAccount
from jobs.services import account_save
from studio.generation import scene_compile, take_create
from studio.models import SceneFrame
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory
from tests.jobs.factories import ProviderAccountFactory, build_studio
from tests.samples import clip_bytes, image_bytes
from tests.support.emulators import emulator_log
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY

pytestmark = pytest.mark.django_db


def _picture(name: str = "dawn.png", color=(240, 180, 90)) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, image_bytes(size=(320, 180), color=color), "image/png")


@pytest.fixture
def scene(workspace):
    series = SeriesFactory(workspace=workspace)
    return SceneFactory(episode=EpisodeFactory(series=series), duration=8, size="1280x720")


def _frame_url(workspace, scene, position: str) -> str:
    return reverse("scene_frame", args=[workspace.slug, scene.pk, position])


def test_an_editor_sets_the_first_picture_and_sees_it_on_the_scene_page(
    owner_client, workspace, scene
):
    response = owner_client.post(
        _frame_url(workspace, scene, "first"), {"picture": _picture()}, follow=True
    )

    page = response.content.decode()
    assert "Saved dawn.png as the picture the scene starts from." in page
    frame = SceneFrame.objects.get(scene=scene, position="first")
    assert (frame.width, frame.height, frame.content_type) == (320, 180, "image/png")
    thumbnail = reverse("scene_frame_file", args=[workspace.slug, scene.pk, "first", "thumbnail"])
    assert thumbnail in page
    answer = owner_client.get(thumbnail)
    assert answer.status_code == 200
    assert answer["Content-Type"] == "image/jpeg"
    assert b"".join(answer.streaming_content).startswith(b"\xff\xd8")  # a JPEG
    answer.close()


def test_a_new_picture_replaces_the_old_and_remove_forgets_it(owner_client, workspace, scene):
    url = _frame_url(workspace, scene, "last")
    owner_client.post(url, {"picture": _picture("one.png")})
    owner_client.post(url, {"picture": _picture("two.png", color=(20, 40, 200))})
    assert SceneFrame.objects.filter(scene=scene, position="last").count() == 1

    response = owner_client.post(url, {"remove": "1"}, follow=True)

    assert "Removed the picture the scene ends on." in response.content.decode()
    assert not SceneFrame.objects.filter(scene=scene).exists()


@pytest.mark.parametrize(
    ("upload", "reason"),
    [
        (SimpleUploadedFile("dawn.png", b"not a picture at all", "image/png"), "dawn.png"),
        (SimpleUploadedFile("walk.mp4", clip_bytes(seconds=1.0), "video/mp4"), "is a clip"),
    ],
)
def test_what_is_not_a_picture_is_refused_by_its_content_and_nothing_is_kept(
    owner_client, workspace, scene, upload, reason
):
    response = owner_client.post(
        _frame_url(workspace, scene, "first"), {"picture": upload}, follow=True
    )

    said = [str(m) for m in response.context["messages"]]
    assert any(reason in m for m in said), said
    assert not SceneFrame.objects.filter(scene=scene).exists()


def test_a_duplicated_scene_keeps_its_pictures(owner_client, workspace, scene):
    from studio import services

    owner_client.post(_frame_url(workspace, scene, "first"), {"picture": _picture()})

    copy = services.scene_duplicate(scene=scene)

    (frame,) = copy.frames.all()
    assert frame.position == "first"
    assert frame.file.name == scene.frames.get().file.name


def test_another_teams_scene_frames_are_not_found(client, members, workspace, scene):
    SceneFrame.objects.create(
        scene=scene, position="first", file="x.png", thumbnail="x.jpg", width=1, height=1
    )
    client.force_login(members["outsider"])
    outsider = members["outsider"].memberships.get().workspace

    for url in (
        reverse("scene_frame_file", args=[outsider.slug, scene.pk, "first", "thumbnail"]),
        reverse("scene_frame_file", args=[workspace.slug, scene.pk, "first", "thumbnail"]),
    ):
        assert client.get(url).status_code == 404
    upload = client.post(
        reverse("scene_frame", args=[outsider.slug, scene.pk, "last"]), {"picture": _picture()}
    )
    assert upload.status_code == 404
    assert SceneFrame.objects.filter(scene=scene).count() == 1


def test_a_provider_that_takes_no_frames_is_refused_before_anything_is_paid(
    owner_client, workspace, scene
):
    owner_client.post(_frame_url(workspace, scene, "first"), {"picture": _picture()})
    seedance = ProviderAccountFactory(workspace=workspace, kind="seedance", model="")
    veo = ProviderAccountFactory(workspace=workspace, kind="veo", model="veo-3.1-generate-001")

    refused = scene_compile(scene=scene, account=seedance)
    taken = scene_compile(scene=scene, account=veo)

    assert "Seedance cannot start a video from a given picture." in refused.problems
    assert not taken.problems
    page = owner_client.get(reverse("scene_detail", args=[workspace.slug, scene.pk]))
    assert "cannot start a video from a given picture" in page.content.decode()


def test_veo_is_told_to_end_on_a_picture_only_with_one_to_start_from(
    owner_client, workspace, scene
):
    owner_client.post(_frame_url(workspace, scene, "last"), {"picture": _picture()})
    veo = ProviderAccountFactory(workspace=workspace, kind="veo", model="veo-3.1-generate-001")

    assert (
        "Veo needs a first frame to go with a last frame."
        in scene_compile(scene=scene, account=veo).problems
    )


# --- Through the worker, at the providers' emulators ----------------------------------------


@pytest.fixture
def at_emulator(live_server, settings, fast_engine, celery_worker, openai_emulator):
    settings.PUBLIC_BASE_URL = live_server.url
    built = build_studio(openai_url=openai_emulator.api_url)
    running = []

    def account(emulator_class, kind: str, model: str) -> tuple[ProviderAccount, object]:
        emulator = serve(emulator_class(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
        running.append(emulator)
        made = account_save(
            account=ProviderAccount(
                workspace=built["workspace"],
                name=kind,
                kind=kind,
                base_url=emulator.api_url,
                model=model,
            ),
            api_key="test-key-1234",
        )
        return made, emulator

    yield {**built, "account": account}
    for emulator in running:
        emulator.stop()


def _framed_scene(studio, positions) -> object:
    from studio import services

    scene = SceneFactory(
        episode=studio["episode"], prompt="The lamp turns.", duration=8, size="1280x720"
    )
    for position, color in zip(positions, ((240, 180, 90), (30, 30, 90)), strict=False):
        services.scene_frame_set(scene=scene, position=position, upload=_picture(color=color))
    return scene


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_veo_makes_the_take_from_the_first_picture_to_the_last(at_emulator, wait_for_job):
    veo, emulator = at_emulator["account"](VertexVeoEmulator, "veo", "veo-3.1-generate-001")
    scene = _framed_scene(at_emulator, ("first", "last"))

    take = take_create(scene=scene, account=veo)
    job = wait_for_job(take.job, timeout=60)

    assert job.state == "succeeded", job.error_message
    inputs = " ".join(job.sent.inputs)
    assert "first frame" in inputs
    assert "last frame" in inputs
    (create,) = emulator_log(emulator, "create")
    assert create["status"] == 200


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_runway_starts_the_take_from_the_first_picture(at_emulator, wait_for_job):
    runway, emulator = at_emulator["account"](RunwayEmulator, "runway", "gen4_turbo")
    scene = _framed_scene(at_emulator, ("first",))
    scene.duration = 5
    scene.save()

    take = take_create(scene=scene, account=runway)
    job = wait_for_job(take.job, timeout=60)

    assert job.state == "succeeded", job.error_message
    (create,) = emulator_log(emulator, "create")
    assert create["path"].endswith("/v1/image_to_video")
    assert "first frame" in " ".join(job.sent.inputs)
