"""Factories for the engine's rows."""

from __future__ import annotations

import factory

from jobs.models import Job, ProviderAccount
from tests.factories import WorkspaceFactory


class ProviderAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProviderAccount

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Account {n}")
    kind = "openai"
    base_url = "http://127.0.0.1:9/v1"
    model = "sora-2"


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    provider_account = factory.SubFactory(ProviderAccountFactory)
    workspace = factory.SelfAttribute("provider_account.workspace")
    request = factory.LazyFunction(
        lambda: {
            "kind": "generate",
            "prompt": "A harbour",
            "seconds": 4,
            "size": "1280x720",
            "characters": [],
        }
    )
