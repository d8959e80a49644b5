"""Drift scores end to end: a take made at an emulator is stored, scored by the worker against
its character's pinned version, and flagged on the right axis, without anyone opening it.

A real worker on a real Redis, the Seedance emulator over real HTTP (it composites the
character's own pictures into its frames, and `[[emulate:drift=…]]` makes a take drift), and
the default scorer (dlib face descriptors, colour and texture).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from characters.services import asset_add
from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.seedance import SeedanceEmulator
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
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

PORTRAIT = Path(__file__).resolve().parents[2] / "studio" / "demo_media" / "astronaut.jpg"


@pytest.fixture
def seedance_emulator() -> Iterator[RunningEmulator]:
    running = serve(SeedanceEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
    yield running
    running.stop()


@pytest.fixture
def studio(live_server, settings, fast_engine, celery_worker, seedance_emulator):
    """A workspace with Mina (a real portrait), a series, a Seedance account and a worker
    that scores every finished take."""
    settings.PUBLIC_BASE_URL = live_server.url
    settings.JOBS_SUCCEEDED_TASKS = ("studio.tasks.score_take",)
    workspace = WorkspaceFactory()
    mina = CharacterFactory(workspace=workspace, handle="mina", name="Mina")
    asset_add(
        character=mina,
        upload=SimpleUploadedFile("mina.jpg", PORTRAIT.read_bytes(), "image/jpeg"),
    )
    account = account_save(
        account=ProviderAccount(
            workspace=workspace,
            name="Seedance",
            kind="seedance",
            base_url=seedance_emulator.api_url,
        ),
        api_key="ark-test-1234",
    )
    series = SeriesFactory(workspace=workspace, style_guide="", default_size="1280x720")
    return {"workspace": workspace, "episode": EpisodeFactory(series=series), "account": account}


def _take(studio, prompt: str):
    scene = SceneFactory(episode=studio["episode"], prompt=prompt, duration=4, size="1280x720")
    return take_create(scene=scene, account=studio["account"])


def test_a_faithful_take_is_scored_high_and_not_flagged(studio, wait_for_score):
    take = _take(studio, "@mina looks out to sea.")

    score = wait_for_score(take)

    assert score.state == TakeScore.State.SCORED, score.message
    assert not score.flagged, score.flag_reasons
    (character,) = score.characters.all()
    assert character.method == CharacterScore.Method.IMAGES  # Seedance keeps no characters
    assert character.version.number == 1
    for axis in ("face", "clothing", "style"):
        assert getattr(character, axis) >= 70, axis
    assert character.persistence >= 0.8
    assert len(character.frames) == score.frames_sampled


@pytest.mark.parametrize("axis", ["face", "clothing", "style"])
def test_a_take_that_drifts_is_flagged_on_its_axis(studio, client, axis, wait_for_score):
    take = _take(studio, f"@mina looks out to sea. [[emulate:drift={axis}]]")

    score = wait_for_score(take)

    assert score.state == TakeScore.State.SCORED, score.message
    assert score.flagged
    assert axis in [reason["axis"] for reason in score.flag_reasons]
    assert getattr(score, axis) < studio["workspace"].drift_threshold
    # The storyboard says so on the scene's card: nobody has to open the take.
    client.force_login(MembershipFactory(workspace=studio["workspace"], role=Role.REVIEWER).user)
    page = client.get(
        reverse("episode_detail", args=[studio["workspace"].slug, studio["episode"].pk])
    ).content.decode()
    assert "Flagged" in page
    assert score.flag_summary.split(":")[0] in page
