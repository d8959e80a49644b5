"""Factories for the engine's rows."""

from __future__ import annotations

import factory
from django.core.files.uploadedfile import SimpleUploadedFile

from characters.services import asset_add
from jobs.models import Job, ProviderAccount
from jobs.requests import GENERATE, CastMember, Fit, FittedRequest, JobRequest
from jobs.services import account_save
from studio.models import Scene
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    WorkspaceFactory,
)
from tests.samples import clip_bytes


class ProviderAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProviderAccount

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Account {n}")
    kind = "openai"
    base_url = "http://127.0.0.1:9/v1"
    model = "sora-2"


def job_request(
    prompt: str = "A harbour",
    *,
    seconds: int = 4,
    size: str = "1280x720",
    kind: str = GENERATE,
    cast: tuple[CastMember, ...] = (),
    fit: Fit | None = None,
    source_provider_job_id: str = "",
) -> dict:
    """A Job.request as the engine stores it (jobs.requests), for jobs made directly."""
    request = JobRequest(
        kind=kind,
        prompt=prompt,
        seconds=seconds,
        size=size,
        cast=cast,
        source_provider_job_id=source_provider_job_id,
    )
    return FittedRequest(request, fit or Fit()).to_dict()


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    provider_account = factory.SubFactory(ProviderAccountFactory)
    workspace = factory.SelfAttribute("provider_account.workspace")
    request = factory.LazyFunction(job_request)


def build_studio(*, openai_url: str, relay_url: str | None = None) -> dict:
    """A workspace with a character (3 s clip), a series, and accounts at the given emulators."""
    workspace = WorkspaceFactory()
    series = SeriesFactory(workspace=workspace, style_guide="", default_size="1280x720")
    mina = CharacterFactory(workspace=workspace, handle="mina", name="Mina")
    asset_add(
        character=mina,
        upload=SimpleUploadedFile("mina.mp4", clip_bytes(seconds=3.0), "video/mp4"),
    )
    urls = {"openai": openai_url, "sora_relay": relay_url}
    accounts = {
        kind: account_save(
            account=ProviderAccount(
                workspace=workspace,
                name="OpenAI" if kind == "openai" else "Relay",
                kind=kind,
                base_url=url,
                model="sora-2" if kind == "openai" else "",
            ),
            api_key="sk-test-1234",
        )
        for kind, url in urls.items()
        if url
    }
    return {
        "workspace": workspace,
        "episode": EpisodeFactory(series=series),
        "mina": mina,
        "accounts": {"openai": accounts["openai"], "relay": accounts.get("sora_relay")},
    }


def studio_scene(studio: dict, prompt: str = "The lamp turns over a grey sea.", **fields) -> Scene:
    """A scene in build_studio's episode, 4 s at 1280x720 unless told, so its video renders
    quickly at the emulators."""
    fields = {"duration": 4, "size": "1280x720", **fields}
    return SceneFactory(episode=studio["episode"], prompt=prompt, **fields)
