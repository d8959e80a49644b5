"""The consistency report from real takes: one character, a scene made at every provider the
demo serves, each take scored by the worker, and the report comparing them.

A real worker on a real Redis and each provider's emulator over real HTTP (the emulators
composite the character's own pictures into their frames, whichever way the picture reached
them: a registered character, reference images, or a clip).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from characters.services import asset_add
from jobs.emulators.base import serve
from jobs.emulators.render import CastMember, reference_picture, render_video
from jobs.models import ProviderAccount
from jobs.services import account_save
from studio.generation import take_create
from studio.models import CharacterScore, Role, TakeScore
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    MembershipFactory,
    SceneFactory,
    SeriesFactory,
    WorkspaceFactory,
)
from tests.studio.test_takes_at_every_provider import ROWS, _scene_shape
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

PORTRAIT = Path(__file__).resolve().parents[2] / "studio" / "demo_media" / "astronaut.jpg"
NATIVE = {"openai", "sora_relay", "kling"}  # they keep characters: registered once, by id


def _turnaround() -> bytes:
    """A 4 s clip of the portrait, as a team would upload (Kling and OpenAI register from it)."""
    from PIL import Image

    picture = reference_picture(Image.open(PORTRAIT))
    return render_video(
        prompt="Turnaround",
        seconds=4,
        width=480,
        height=480,
        cast=[CastMember("Mina", "#8a8f99", picture=picture)],
    ).video


def _close_up() -> bytes:
    import io

    from PIL import Image

    image = Image.open(PORTRAIT).convert("RGB")
    crop = image.crop((image.width // 6, 0, image.width * 5 // 6, image.height * 2 // 3))
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=90)
    return out.getvalue()


def test_every_provider_keeps_the_face_and_the_report_compares_them(
    live_server, settings, fast_engine, celery_worker, wait_for_job, wait_for_score, client
):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.JOBS_SUCCEEDED_TASKS = ("studio.tasks.score_take",)
    workspace = WorkspaceFactory()
    mina = CharacterFactory(workspace=workspace, handle="mina", name="Mina")
    asset_add(
        character=mina,
        upload=SimpleUploadedFile("mina.jpg", PORTRAIT.read_bytes(), "image/jpeg"),
    )
    asset_add(  # Kling makes its element from two pictures or more
        character=mina,
        upload=SimpleUploadedFile("mina-close.jpg", _close_up(), "image/jpeg"),
    )
    asset_add(character=mina, upload=SimpleUploadedFile("mina.mp4", _turnaround(), "video/mp4"))
    episode = EpisodeFactory(series=SeriesFactory(workspace=workspace, style_guide=""))
    running, takes = [], {}
    try:
        for kind, row in sorted(ROWS.items()):
            emulator = serve(
                row.emulator_class()(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS)
            )
            running.append(emulator)
            account = account_save(
                account=ProviderAccount(
                    workspace=workspace,
                    name=row.account,
                    kind=kind,
                    base_url=emulator.api_url,
                    model=row.model,
                ),
                api_key="test-key-1234",
            )
            seconds, size = _scene_shape(kind, row.model)
            scene = SceneFactory(
                episode=episode, prompt="@mina looks out to sea.", duration=seconds, size=size
            )
            takes[kind] = take_create(scene=scene, account=account)
        for kind, take in takes.items():
            job = wait_for_job(take.job, timeout=90)
            assert job.state == "succeeded", (kind, job.error_message)
        scores = {kind: wait_for_score(take) for kind, take in takes.items()}
    finally:
        for emulator in running:
            emulator.stop()

    for kind, score in scores.items():
        assert score.state == TakeScore.State.SCORED, (kind, score.message)
        (character,) = score.characters.all()
        assert character.face is not None, (kind, character.notes)
        assert character.face >= 70, (kind, character.face)
        assert character.persistence >= 0.5, (kind, character.persistence)
        assert not score.flagged, (kind, score.flag_reasons)
        if kind in NATIVE:
            assert character.method == CharacterScore.Method.NATIVE, kind
        else:
            assert character.method in (
                CharacterScore.Method.IMAGES,
                CharacterScore.Method.CLIP,
            ), kind

    client.force_login(MembershipFactory(workspace=workspace, role=Role.VIEWER).user)
    report = client.get(reverse("consistency_report", args=[workspace.slug])).content.decode()
    for row in ROWS.values():
        assert row.account in report
    for method in ("Native character", "Reference"):
        assert method in report
    csv = client.get(reverse("consistency_report_csv", args=[workspace.slug])).content.decode()
    assert len([line for line in csv.splitlines() if line.strip()]) > len(ROWS)
