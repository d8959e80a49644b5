"""Media on S3: uploads, results, signed redirects, range requests and deletes, against a real
S3-compatible server (moto in server mode) reached over HTTP.

What moto checks and what it does not: an object read without a signature is refused (403);
moto does not verify a presigned URL's signature value nor its expiry, so those are asserted
on the URL the studio hands out (its X-Amz-Expires is the configured lifetime).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.urls import reverse
from PIL import Image
from storages.backends.s3 import S3Storage

from characters.models import Character, ReferenceAsset
from characters.services import asset_add, character_version_latest
from jobs.models import JobState
from studio import cuts
from studio.consistency import services as consistency
from studio.models import CharacterScore, Cut, TakeScore
from studio.project.csp import storage_origins
from tests.factories import CharacterFactory, MembershipFactory, SceneFactory, TakeFactory
from tests.jobs.factories import studio_scene
from tests.samples import clip_bytes, gif_bytes, image_bytes
from tests.support.cuts import episode_to_cut, wait_for_cut
from tests.support.library import create_url

DEMO_MEDIA = Path(__file__).resolve().parents[2] / "studio" / "demo_media"


# --- Helpers -------------------------------------------------------------------------------


def new_character(**fields) -> dict:
    return {"name": "Mina", "handle": "mina", "description": "Red scarf."} | fields


def take_with_video(workspace, video: bytes | None = None, **fields):
    """A finished take whose job's video, thumbnail and spritesheet are stored."""
    take = TakeFactory(scene=SceneFactory(episode__series__workspace=workspace), **fields)
    take.job.video.save("video.mp4", ContentFile(video or clip_bytes(seconds=1.0)), save=False)
    take.job.thumbnail.save("thumbnail.jpg", ContentFile(image_bytes("JPEG")), save=False)
    take.job.spritesheet.save("spritesheet.jpg", ContentFile(image_bytes("JPEG")), save=False)
    take.job.save()
    return take


def media_url(take, variant: str = "video") -> str:
    return reverse("take_media", args=[take.scene.episode.series.workspace.slug, take.pk, variant])


def signed_redirect(client, url: str) -> str:
    """The signed S3 URL a media view redirects a member to."""
    response = client.get(url)
    assert response.status_code == 302, response.status_code
    return response["Location"]


def cut_file_url(cut, variant: str) -> str:
    episode = cut.episode
    slug = episode.series.workspace.slug
    return reverse("cut_file", args=[slug, episode.pk, cut.number, variant])


def job_files(take) -> list[str]:
    job = take.job
    return [job.video.name, job.thumbnail.name, job.spritesheet.name]


# --- The storage in use --------------------------------------------------------------------


@pytest.mark.django_db
def test_every_file_field_stores_through_the_default_storage_so_the_bucket_applies(s3):
    fields = [
        field
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, models.FileField)
    ]
    assert fields
    for field in fields:
        assert field.storage is default_storage, f"{field} binds its own storage"
    assert isinstance(default_storage, S3Storage)


def test_the_settings_build_the_same_s3_storage_from_the_aws_variables(s3_server):
    """What the tests point at the bucket is what settings.py makes of S3Server.env()."""
    script = (
        "import json; from studio.project import settings as s; "
        "print(json.dumps({'storage': s.STORAGES['default'], 'csp': s.SECURE_CSP}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DEBUG"))}
    result = subprocess.run(  # noqa: S603 - our own settings module, fixed arguments
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env={**clean, **s3_server.env("media")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    built = json.loads(result.stdout)
    assert built["storage"] == s3_server.storage_settings("media")
    origins = storage_origins(bucket="media", endpoint_url=s3_server.endpoint_url)
    assert s3_server.endpoint_url in origins
    for directive in ("img-src", "media-src"):
        assert set(origins) <= set(built["csp"][directive])


# --- Uploads -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_reference_uploaded_through_the_library_form_lands_in_the_bucket(
    s3, owner_client, workspace
):
    picture = image_bytes("PNG", size=(64, 48))
    upload = SimpleUploadedFile("front.png", picture, "image/png")

    response = owner_client.post(create_url(workspace), new_character(references=[upload]))

    assert response.status_code == 302
    asset = ReferenceAsset.objects.get(character__workspace=workspace)
    folder = f"workspaces/{workspace.pk}/characters/{asset.character_id}/"
    assert s3.names() == sorted([asset.file.name, asset.thumbnail.name])
    assert asset.file.name.startswith(folder)
    assert asset.file.name.endswith(".png")
    assert s3.read(asset.file.name) == picture
    assert s3.size(asset.file.name) == asset.size_bytes == len(picture)
    assert asset.thumbnail.name.startswith(folder)
    assert Image.open(io.BytesIO(s3.read(asset.thumbnail.name))).format == "JPEG"


@pytest.mark.django_db
def test_a_refused_upload_leaves_nothing_in_the_bucket(s3, owner_client, workspace, settings):
    settings.REFERENCE_IMAGE_MAX_BYTES = 4 * 1024
    references = [
        SimpleUploadedFile("wave.gif", gif_bytes(), "image/gif"),
        SimpleUploadedFile("big.png", image_bytes("PNG", size=(64, 48)) * 200, "image/png"),
    ]

    response = owner_client.post(create_url(workspace), new_character(references=references))

    assert response.status_code == 200
    assert "wave.gif" in response.content.decode()
    assert not Character.objects.exists()
    assert s3.names() == []


@pytest.mark.django_db
def test_a_reference_is_served_to_a_member_from_a_signed_url_and_hidden_from_an_outsider(
    s3, client, members, workspace
):
    character = CharacterFactory(workspace=workspace, handle="mina")
    picture = image_bytes("PNG")
    asset = asset_add(
        character=character, upload=SimpleUploadedFile("front.png", picture, "image/png")
    )
    url = reverse("asset_file", args=[workspace.slug, character.pk, asset.pk, "original"])

    client.force_login(members["viewer"])
    location = signed_redirect(client, url)
    client.force_login(members["outsider"])
    hidden = client.get(url)

    assert httpx.get(location).content == picture
    assert hidden.status_code == 404
    assert "Location" not in hidden


# --- Results -------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_generated_result_is_downloaded_into_the_bucket_and_played_from_a_signed_url(
    s3, studio, wait_for_job, client
):
    from studio.generation import take_create

    take = take_create(
        scene=studio_scene(studio, "@mina walks in."), account=studio["accounts"]["openai"]
    )
    job = wait_for_job(take.job)

    assert job.state == JobState.SUCCEEDED, job.error_message
    folder = f"workspaces/{job.workspace_id}/jobs/{job.pk}/"
    assert {job.video.name, job.thumbnail.name, job.spritesheet.name} <= set(s3.names())
    assert job.video.name == f"{folder}video.mp4"
    video = s3.read(job.video.name)
    assert len(video) == job.result["bytes"]
    client.force_login(MembershipFactory(workspace=studio["workspace"]).user)
    location = signed_redirect(client, media_url(take))
    played = httpx.get(location)
    assert played.status_code == 200
    assert played.content == video
    assert played.headers["content-type"] == "video/mp4"
    poster = httpx.get(signed_redirect(client, media_url(take, "thumbnail")))
    assert Image.open(io.BytesIO(poster.content)).format == "JPEG"


# --- Signed redirects ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_take_redirects_a_member_to_a_short_lived_signed_url_that_is_never_cached(
    s3, client, members, workspace
):
    take = take_with_video(workspace)
    client.force_login(members["viewer"])

    response = client.get(media_url(take))

    assert response.status_code == 302
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}" == s3.server.endpoint_url
    assert location.path == f"/{s3.name}/{take.job.video.name}"
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["600"]  # querystring_expire
    assert query["X-Amz-Signature"][0]
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 120
    # The players' and thumbnails' origin is one the Content-Security-Policy allows.
    origins = storage_origins(bucket=s3.name, endpoint_url=s3.server.endpoint_url)
    assert f"{location.scheme}://{location.netloc}" in origins


@pytest.mark.django_db
def test_the_signed_urls_lifetime_follows_the_setting(s3, settings, client, owner, workspace):
    take = take_with_video(workspace)
    options = settings.STORAGES["default"]["OPTIONS"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**options, "querystring_expire": 60},
        },
    }
    client.force_login(owner)

    query = parse_qs(urlsplit(signed_redirect(client, media_url(take))).query)

    assert query["X-Amz-Expires"] == ["60"]


@pytest.mark.django_db
def test_s3_refuses_the_object_without_its_signature(s3, client, owner, workspace):
    take = take_with_video(workspace)
    client.force_login(owner)
    location = urlsplit(signed_redirect(client, media_url(take)))

    signed = httpx.get(location.geturl())
    bare = httpx.get(location._replace(query="").geturl())

    assert signed.status_code == 200
    assert bare.status_code == 403
    assert bare.content != signed.content


@pytest.mark.django_db
def test_an_outsider_gets_404_and_no_url(s3, client, members, workspace):
    take = take_with_video(workspace)
    client.force_login(members["outsider"])

    for variant in ("video", "thumbnail", "spritesheet"):
        response = client.get(media_url(take, variant))
        assert response.status_code == 404
        assert "Location" not in response
        assert s3.name.encode() not in response.content


@pytest.mark.django_db
def test_a_provider_fetches_an_input_from_a_signed_url_on_the_bucket(s3):
    from jobs.signing import public_file_url

    picture = image_bytes("PNG")
    name = default_storage.save("workspaces/1/frames/first.png", ContentFile(picture))

    fetched = httpx.get(public_file_url(name))

    assert fetched.status_code == 200
    assert fetched.content == picture


# --- Range requests ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_player_seeks_with_a_range_request_on_the_signed_url(s3, client, owner, workspace):
    video = clip_bytes(seconds=1.0)
    take = take_with_video(workspace, video)
    client.force_login(owner)
    location = signed_redirect(client, media_url(take))

    middle = httpx.get(location, headers={"Range": "bytes=100-299"})
    tail = httpx.get(location, headers={"Range": "bytes=-50"})

    assert middle.status_code == 206
    assert middle.content == video[100:300]
    assert middle.headers["content-range"] == f"bytes 100-299/{len(video)}"
    assert tail.status_code == 206
    assert tail.content == video[-50:]
    assert tail.headers["content-range"] == f"bytes {len(video) - 50}-{len(video) - 1}/{len(video)}"


# --- Deletes (on local storage and on the bucket alike) -----------------------------------


@pytest.mark.django_db
def test_deleting_a_reference_removes_its_files(media, owner_client, workspace):
    character = CharacterFactory(workspace=workspace, handle="mina")
    front, profile = (
        asset_add(character=character, upload=SimpleUploadedFile(n, image_bytes(), "image/png"))
        for n in ("front.png", "profile.png")
    )
    url = reverse("asset_delete", args=[workspace.slug, character.pk, front.pk])

    owner_client.post(url)

    assert media.names() == sorted([profile.file.name, profile.thumbnail.name])


@pytest.mark.django_db
def test_deleting_a_character_removes_all_its_files(media, owner_client, workspace):
    character = CharacterFactory(workspace=workspace, handle="mina")
    for name in ("front.png", "profile.png"):
        asset_add(character=character, upload=SimpleUploadedFile(name, image_bytes(), "image/png"))
    assert len(media.names()) == 4

    owner_client.post(reverse("character_delete", args=[workspace.slug, character.pk]))

    assert media.names() == []


@pytest.mark.django_db
def test_deleting_a_character_removes_its_voice_sample(media, owner_client, workspace):
    character = CharacterFactory(workspace=workspace, handle="mina")
    version = character_version_latest(character)
    version.voice_sample.save("sample.mp3", ContentFile(b"ID3 a short line"), save=True)
    assert media.names() == [version.voice_sample.name]

    owner_client.post(reverse("character_delete", args=[workspace.slug, character.pk]))

    assert media.names() == []


@pytest.mark.django_db
def test_deleting_a_take_removes_its_result_and_score_files_and_keeps_its_job_on_record(
    media, owner_client, workspace, django_capture_on_commit_callbacks
):
    kept = take_with_video(workspace)
    take = take_with_video(workspace)
    frame = _worst_frame_of(take)
    assert frame in media.names()
    url = reverse("take_delete", args=[workspace.slug, take.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(url)

    assert response.status_code == 302
    assert media.names() == sorted(job_files(kept))
    take.job.refresh_from_db()
    assert take.job.state == JobState.SUCCEEDED  # what was paid stays on record
    assert not take.job.video
    assert not take.job.thumbnail


@pytest.mark.django_db
def test_deleting_an_episode_removes_its_takes_and_cuts_files(
    media, owner_client, workspace, django_capture_on_commit_callbacks
):
    take = take_with_video(workspace)
    episode = take.scene.episode
    _worst_frame_of(take)
    cut = Cut.objects.create(episode=episode, number=1, state=Cut.State.DONE)
    cut.video.save("cut.mp4", ContentFile(clip_bytes(seconds=1.0)), save=False)
    cut.subtitles_vtt.save("cut.vtt", ContentFile(b"WEBVTT\n"))
    other = take_with_video(workspace)
    assert len(media.names()) == 9

    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("episode_delete", args=[workspace.slug, episode.pk]))

    assert media.names() == sorted(job_files(other))


@pytest.mark.django_db
def test_a_delete_that_rolls_back_keeps_the_files(media, workspace):
    from django.db import transaction

    take = take_with_video(workspace)

    def delete_then_fail() -> None:
        with transaction.atomic():
            take.delete()
            raise RuntimeError

    with pytest.raises(RuntimeError):
        delete_then_fail()

    assert media.names() == sorted(job_files(take))


def _worst_frame_of(take) -> str:
    """A stored worst-frame picture on the take's scores, as the scorer leaves one."""
    character = CharacterFactory(workspace=take.scene.episode.series.workspace)
    name = default_storage.save(
        f"workspaces/{take.job.workspace_id}/scores/take-{take.pk}-face-0.jpg",
        ContentFile(image_bytes("JPEG")),
    )
    score = TakeScore.objects.create(take=take, state=TakeScore.State.SCORED)
    CharacterScore.objects.create(
        take_score=score,
        character=character,
        method=CharacterScore.Method.values[0],
        persistence=1.0,
        worst=[{"axis": "face", "seconds": 0.5, "score": 40.0, "image": name}],
    )
    return name


# --- Code that reads stored media ----------------------------------------------------------


@pytest.mark.django_db
def test_a_take_in_the_bucket_is_scored_for_drift(s3, workspace):
    mina = CharacterFactory(workspace=workspace, handle="mina", name="Mina")
    portrait = (DEMO_MEDIA / "astronaut.jpg").read_bytes()
    asset_add(character=mina, upload=SimpleUploadedFile("mina.jpg", portrait, "image/jpeg"))
    take = take_with_video(workspace, _video_showing(Image.open(io.BytesIO(portrait))))
    take.character_versions.add(character_version_latest(mina))

    score = consistency.take_score(take_id=take.pk)

    assert score.state == TakeScore.State.SCORED, score.message
    assert score.face >= 70
    frames = [frame["image"] for row in score.characters.all() for frame in row.worst]
    assert frames
    assert set(frames) <= set(s3.names())


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_cut_is_assembled_from_takes_in_the_bucket_stored_there_and_downloaded_by_name(
    s3, workspace, celery_worker, owner, client
):
    episode = episode_to_cut(workspace, seconds=(1.0, 1.0))

    cut = wait_for_cut(cuts.cut_start(episode=episode, options=cuts.CutOptions(), user=owner))

    assert (cut.state, cut.message) == (Cut.State.DONE, "")
    stored = [cut.video.name, cut.package.name, cut.contact_sheet.name, cut.subtitles_vtt.name]
    assert set(stored) <= set(s3.names())
    client.force_login(owner)
    package = httpx.get(signed_redirect(client, cut_file_url(cut, "zip")))
    assert package.headers["content-type"] == "application/zip"
    assert package.headers["content-disposition"] == (
        'inline; filename="harbour-lights-episode-1-cut-1.zip"'
    )
    with zipfile.ZipFile(io.BytesIO(package.content)) as bundle:
        names = bundle.namelist()
        takes = sorted(name for name in names if name.startswith("media/scene-"))
        assert len(takes) == 2
        assert "episode.mp4" in names
        first = episode.scenes.order_by("position").first().takes.get()
        assert bundle.read(takes[0]) == s3.read(first.job.video.name)
    # Text tracks come from the studio's own origin (a <track> elsewhere would need CORS).
    subtitles = client.get(cut_file_url(cut, "subtitles-vtt"))
    assert subtitles.status_code == 200
    assert subtitles.content.startswith(b"WEBVTT")


def _video_showing(picture: Image.Image, *, seconds: float = 2.0, fps: int = 6) -> bytes:
    """A small H.264 clip showing `picture` on a grey stage, as a provider's take would."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        frame = Image.new("RGB", (640, 360), (70, 76, 88))
        shown = picture.convert("RGB")
        shown.thumbnail((320, 320))
        frame.paste(shown, ((640 - shown.width) // 2, 360 - shown.height))
        for index in range(round(seconds * fps)):
            video_frame = av.VideoFrame.from_image(frame)
            video_frame.pts = index
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    return buffer.getvalue()
