"""Fixtures the studio's permission and edit-control tests share."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from characters.models import CharacterShare
from characters.services import asset_add
from jobs.models import Budget, JobState
from jobs.services import budget_set
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    TakeFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.jobs.factories import ProviderAccountFactory
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
        "running": TakeFactory(scene=dawn, account=account, state=JobState.PENDING).pk,
        "finished": TakeFactory(
            scene=dawn, account=account, job__provider_job_id="video_finished"
        ).pk,
        "failed": TakeFactory(scene=dawn, account=account, state=JobState.FAILED).pk,
    }
