"""Fixtures the studio's permission and edit-control tests share."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from characters.models import CharacterShare
from characters.services import asset_add
from jobs.models import Budget, JobState
from jobs.services import budget_set
from studio.models import Take
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.jobs.factories import JobFactory, ProviderAccountFactory
from tests.samples import image_bytes


@pytest.fixture
def world(workspace, members) -> dict:
    """One of everything an action can change, by name; values are primary keys."""
    account = ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    series = SeriesFactory(workspace=workspace)
    episode = EpisodeFactory(series=series)
    dawn = SceneFactory(episode=episode, title="Dawn")
    dusk = SceneFactory(episode=episode, title="Dusk")
    character = CharacterFactory(workspace=workspace, name="Mina", handle="mina")
    asset = asset_add(
        character=character,
        upload=SimpleUploadedFile("front.png", image_bytes(), "image/png"),
    )
    partner = WorkspaceFactory()  # already shares the character
    share = CharacterShare.objects.create(character=character, workspace=partner)

    def take(state: str, **job_fields) -> int:
        job = JobFactory(provider_account=account, state=state, **job_fields)
        return Take.objects.create(scene=dawn, job=job).pk

    return {
        "slug": workspace.slug,
        "workspace": workspace.pk,
        "account": account.pk,
        "series": series.pk,
        "episode": episode.pk,
        "scene": dawn.pk,
        "dusk": dusk.pk,
        "character": character.pk,
        "asset": asset.pk,
        "share": share.pk,
        "elsewhere": WorkspaceFactory().slug,  # a workspace to share with
        "member": workspace.memberships.get(user=members["viewer"]).pk,
        "newcomer": UserFactory().username,
        "budget": budget_set(
            workspace=workspace,
            scope=f"series:{series.pk}",
            cap=Decimal("50"),
            period=Budget.Period.MONTH,
            label=series.title,
        ).pk,
        "running": take(JobState.PENDING),
        "finished": take(
            JobState.SUCCEEDED,
            provider_job_id="video_finished",
            result={"duration": 8.0, "width": 1280, "height": 720},
        ),
        "failed": take(JobState.FAILED),
    }
