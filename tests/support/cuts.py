"""Episodes ready to cut: scenes whose selected takes carry real small MP4s, voices at the
ElevenLabs emulator, and a wait for a cut to finish."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.core.files.base import ContentFile

from characters.models import Character
from characters.voices import character_voice_known
from jobs.emulators.base import serve
from jobs.emulators.elevenlabs import ElevenLabsEmulator
from jobs.models import ProviderAccount
from studio.models import Cut, Episode, Scene, Take, Workspace
from tests.factories import EpisodeFactory, SceneFactory, SeriesFactory, TakeFactory
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import clip_bytes
from tests.support.engine import elevenlabs_account_at

FPS = 24
# Small cuts render in a moment; the series' size is the cut's.
CUT_SIZE = (320, 180)
RACHEL = "21m00Tcm4TlvDq8ikWAM"  # one of ElevenLabs' premade voices (the emulator has it)


def take_with_video(
    scene: Scene, account: ProviderAccount, *, seconds: float, selected: bool = True
) -> Take:
    """A finished take of the scene whose job stored a real `seconds`-long MP4 (no sound)."""
    take = TakeFactory(
        scene=scene,
        account=account,
        is_selected=selected,
        job__result={"duration": seconds, "width": CUT_SIZE[0], "height": CUT_SIZE[1]},
    )
    take.job.video.save("video.mp4", ContentFile(clip_bytes(seconds=seconds, size=CUT_SIZE)))
    return take


def episode_to_cut(
    workspace: Workspace,
    *,
    seconds: Sequence[float] = (1.0, 1.5),
    titles: Sequence[str] = ("Launch", "The harbour", "Night", "Home"),
    account: ProviderAccount | None = None,
) -> Episode:
    """An episode of len(seconds) scenes, each with a selected take of that length at
    `account` (an OpenAI account, whose takes have no sound, unless told)."""
    account = account or ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")
    series = SeriesFactory(
        workspace=workspace, title="Harbour Lights", default_size="{}x{}".format(*CUT_SIZE)
    )
    episode = EpisodeFactory(series=series, number=1, title="Launch day")
    for length, title in zip(seconds, titles, strict=False):
        scene = SceneFactory(episode=episode, title=title, duration=max(1, round(length)))
        take_with_video(scene, account, seconds=length)
    return episode


@contextmanager
def elevenlabs_account(workspace: Workspace) -> Iterator[ProviderAccount]:
    """An ElevenLabs account of the workspace at a running ElevenLabs emulator (real HTTP)."""
    running = serve(ElevenLabsEmulator())
    try:
        yield elevenlabs_account_at(workspace, running)
    finally:
        running.stop()


def give_voice(character: Character, account: ProviderAccount) -> None:
    """The character speaks in ElevenLabs' premade voice Rachel."""
    character_voice_known(
        character=character, account=account, voice_id=RACHEL, voice_name="Rachel"
    )


def wait_for_cut(cut: Cut, *, timeout: float = 120.0) -> Cut:
    """Wait until the cut is done or failed, running the cuts' sweep as beat would."""
    from studio import cuts

    deadline = time.monotonic() + timeout
    while True:
        cut.refresh_from_db()
        if cut.is_finished:
            return cut
        assert time.monotonic() < deadline, f"cut stuck in {cut.state} at {cut.progress}%"
        cuts.cuts_sweep()
        time.sleep(0.2)


def stored_bytes(name: str) -> bytes:
    """A stored file's content, read through the storage backend."""
    from django.core.files.storage import default_storage

    with default_storage.open(name, "rb") as stored:
        return stored.read()
