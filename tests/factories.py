"""factory_boy factories for the domain."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from characters.models import Character
from jobs.models import JobState
from studio.models import Episode, Membership, Role, Scene, Series, Take, Workspace

PASSWORD = "correct-horse-battery"
# What the engine records of a finished video the size and length of SceneFactory's scenes.
FINISHED_VIDEO = {"duration": 8.0, "width": 1280, "height": 720}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(user, create, extracted, **kwargs):
        if create:
            user.save()


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Studio {n}")
    slug = factory.Sequence(lambda n: f"studio-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.EDITOR


class CharacterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Character

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Character {n}")
    handle = factory.Sequence(lambda n: f"char{n}")
    description = "Red scarf, round glasses."


class SeriesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Series

    workspace = factory.SubFactory(WorkspaceFactory)
    title = factory.Sequence(lambda n: f"Series {n}")
    default_size = "1280x720"
    default_duration = 8


class EpisodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Episode

    series = factory.SubFactory(SeriesFactory)
    number = factory.Sequence(lambda n: n + 1)
    title = factory.Sequence(lambda n: f"Episode {n}")


class SceneFactory(factory.django.DjangoModelFactory):
    """A scene appended at the end of its episode (position is the scene count)."""

    class Meta:
        model = Scene

    episode = factory.SubFactory(EpisodeFactory)
    position = factory.LazyAttribute(lambda scene: scene.episode.scenes.count())
    title = factory.Sequence(lambda n: f"Scene {n}")
    prompt = "A quiet harbour at dawn."
    duration = 8
    size = "1280x720"


def _result_of(job) -> dict:
    return dict(FINISHED_VIDEO) if job.state == JobState.SUCCEEDED else {}


class TakeFactory(factory.django.DjangoModelFactory):
    """A take of `scene` whose job is at `state` (finished by default) at `account`.

    The account defaults to a new one in the scene's workspace, as the studio would use;
    a finished job carries FINISHED_VIDEO as its result. Other job fields go through
    `job__`, e.g. `TakeFactory(scene=scene, account=openai, state=RUNNING, job__progress=40)`.
    """

    class Meta:
        model = Take

    class Params:
        account = factory.SubFactory(
            "tests.jobs.factories.ProviderAccountFactory",
            workspace=factory.SelfAttribute("..scene.episode.series.workspace"),
        )
        state = JobState.SUCCEEDED

    scene = factory.SubFactory(SceneFactory)
    # By path: tests.jobs.factories imports this module.
    job = factory.SubFactory(
        "tests.jobs.factories.JobFactory",
        provider_account=factory.SelfAttribute("..account"),
        state=factory.SelfAttribute("..state"),
        result=factory.LazyAttribute(_result_of),
    )
