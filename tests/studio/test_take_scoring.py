"""The scoring service: a finished take is scored once, against the versions it was made with;
what cannot be scored says why; the sweep finds takes whose message was lost."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import av
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from characters.services import asset_add, character_version_latest
from jobs.models import JobState
from studio import tasks
from studio.consistency import services
from studio.models import CharacterScore, TakeScore
from tests.factories import CharacterFactory, SceneFactory, TakeFactory

pytestmark = pytest.mark.django_db

MEDIA = Path(__file__).resolve().parents[2] / "studio" / "demo_media"


def _video_of(picture: Image.Image, *, seconds: float = 2.0, fps: int = 6) -> bytes:
    """A small H.264 clip showing `picture` on a grey stage, as a provider's take would."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        frame = Image.new("RGB", (640, 360), (70, 76, 88))
        shown = picture.copy()
        shown.thumbnail((320, 320))
        frame.paste(shown, ((640 - shown.width) // 2, 360 - shown.height))
        for index in range(round(seconds * fps)):
            video_frame = av.VideoFrame.from_image(frame)
            video_frame.pts = index
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def _take_with_video(character, video: bytes, **fields):
    take = TakeFactory(scene=SceneFactory(episode__series__workspace=character.workspace), **fields)
    take.job.video.save("take.mp4", ContentFile(video), save=True)
    take.character_versions.add(character_version_latest(character))
    return take


@pytest.fixture
def mina(workspace):
    character = CharacterFactory(workspace=workspace, handle="mina", name="Mina")
    asset_add(
        character=character,
        upload=SimpleUploadedFile("mina.jpg", (MEDIA / "astronaut.jpg").read_bytes(), "image/jpeg"),
    )
    return character


def test_a_take_showing_its_character_is_scored_high_and_kept_per_character(mina):
    portrait = Image.open(MEDIA / "astronaut.jpg").convert("RGB")
    take = _take_with_video(mina, _video_of(portrait))

    score = services.take_score(take_id=take.pk)

    assert score.state == TakeScore.State.SCORED, score.message
    assert score.face >= 70
    assert not score.flagged
    assert score.threshold == mina.workspace.drift_threshold
    (row,) = score.characters.all()
    assert (row.character, row.version.number) == (mina, 1)
    assert row.method in CharacterScore.Method.values
    assert len(row.frames) == score.frames_sampled > 0
    for frame in row.worst:  # the worst frames are stored pictures of this workspace
        assert frame["image"].startswith(f"workspaces/{mina.workspace_id}/scores/")
        assert default_storage.exists(frame["image"])


def test_another_person_in_the_take_is_flagged_on_face(mina):
    other = Image.open(MEDIA / "grace_hopper.jpg").convert("RGB")
    take = _take_with_video(mina, _video_of(other))

    score = services.take_score(take_id=take.pk)

    assert score.flagged
    assert "face" in [reason["axis"] for reason in score.flag_reasons]
    assert score.flag_summary.startswith("Face ")
    assert "(Mina)" in score.flag_summary


def test_a_take_is_scored_once(mina):
    portrait = Image.open(MEDIA / "astronaut.jpg").convert("RGB")
    take = _take_with_video(mina, _video_of(portrait))
    assert services.take_score(take_id=take.pk) is not None

    assert services.take_score(take_id=take.pk) is None  # a duplicate message does nothing
    assert TakeScore.objects.filter(take=take).count() == 1


def test_a_take_claimed_by_a_live_worker_is_left_to_it(mina):
    portrait = Image.open(MEDIA / "astronaut.jpg").convert("RGB")
    take = _take_with_video(mina, _video_of(portrait))
    TakeScore.objects.create(take=take, claimed_by="other", claimed_at=timezone.now())

    assert services.take_score(take_id=take.pk) is None


def test_a_take_without_characters_is_skipped_and_says_why(workspace):
    take = TakeFactory(scene=SceneFactory(episode__series__workspace=workspace))
    take.job.video.save("take.mp4", ContentFile(_video_of(Image.new("RGB", (64, 64)))))

    score = services.take_score(take_id=take.pk)

    assert score.state == TakeScore.State.SKIPPED
    assert score.message == "The take shows no character."


def test_a_take_that_is_not_a_video_fails_in_plain_words(mina):
    take = _take_with_video(mina, b"this is not a video at all")

    score = services.take_score(take_id=take.pk)

    assert score.state == TakeScore.State.FAILED
    assert "video" in score.message.lower()


def test_an_unfinished_take_is_not_scored(mina):
    take = TakeFactory(
        scene=SceneFactory(episode__series__workspace=mina.workspace), state=JobState.RUNNING
    )
    assert services.take_score(take_id=take.pk) is None
    assert not TakeScore.objects.filter(take=take).exists()


def test_the_task_for_a_job_of_no_take_returns_quietly(mina):
    tasks.score_take.run(job_id=987654)  # a registration's job, say: nothing happens


def test_the_sweep_finds_takes_whose_message_was_lost(mina, settings):
    portrait = Image.open(MEDIA / "astronaut.jpg").convert("RGB")
    lost = _take_with_video(mina, _video_of(portrait))
    fresh = _take_with_video(mina, _video_of(portrait))
    long_ago = timezone.now() - timedelta(seconds=settings.CONSISTENCY_SWEEP_AFTER_SECONDS + 5)
    type(lost.job).objects.filter(pk=lost.job_id).update(finished_at=long_ago)
    type(fresh.job).objects.filter(pk=fresh.job_id).update(finished_at=timezone.now())

    assert services.takes_to_score() == [lost.pk]
