"""Where the gateways put what they make, and how their ids map to Castboard's.

A gateway call makes a scene in the Inbox episode of the series the token is bound to
(a token bound to none uses the workspace's "From the API" series, made on first use),
then a take of it through studio.generation, so the series' routing policy picks the
provider, its budget and the workspace's cap apply, and the take shows on the storyboard
like any other.

Ids a script sees: videos and tasks are takes (`video_<id>`, `task_<id>`), characters are
library characters (`char_<id>`), each resolved through studio.access, so another
workspace's id is a 404 like anywhere else.
"""

from __future__ import annotations

import re

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import Http404

from characters.models import Character
from studio import access
from studio.generation import take_create
from studio.models import ApiToken, Episode, SceneFrame, Series, Take
from studio.services import (
    scene_create,
    scene_delete,
    scene_frame_set,
    series_create,
    take_delete,
)

API_SERIES_TITLE = "From the API"
INBOX_TITLE = "Inbox"
VIDEO_PREFIX = "video_"
TASK_PREFIX = "task_"
CHARACTER_PREFIX = "char_"
# `@char_12` in a relay prompt.
CHARACTER_MENTION = re.compile(r"@(char_\d+)\b")


def token_series(token: ApiToken) -> Series:
    """The series a token's gateway takes go to."""
    if token.series_id is not None:
        return token.series
    series = (
        Series.objects.filter(workspace=token.workspace, title=API_SERIES_TITLE)
        .order_by("pk")
        .first()
    )
    if series is None:
        series = series_create(
            workspace=token.workspace,
            created_by=token.created_by,
            title=API_SERIES_TITLE,
            logline="Takes made by scripts through the OpenAI and relay gateways.",
        )
    return series


def inbox_of(series: Series) -> Episode:
    """The series' Inbox episode, made on first use (once, even under concurrent calls)."""
    episode = series.episodes.filter(inbox=True).first()
    if episode is not None:
        return episode
    try:
        with transaction.atomic():
            Series.objects.select_for_update().filter(pk=series.pk).first()
            number = (series.episodes.aggregate(n=Max("number"))["n"] or 0) + 1
            return Episode.objects.create(
                series=series, number=number, title=INBOX_TITLE, inbox=True
            )
    except IntegrityError:
        return series.episodes.get(inbox=True)


def inbox_take(
    token: ApiToken,
    *,
    prompt: str,
    seconds: int | None = None,
    size: str | None = None,
    title: str = "",
    first_frame: UploadedFile | None = None,
) -> Take:
    """A scene in the token's inbox and a take of it, or ValidationError (nothing made).

    `prompt` mentions characters as `@handle` (see mention_characters); `first_frame` is a
    picture the video starts from (an OpenAI `input_reference`)."""
    series = token_series(token)
    episode = inbox_of(series)
    with transaction.atomic():
        scene = scene_create(
            episode=episode,
            prompt=prompt,
            title=title[:200],
            duration=seconds,
            size=size,
        )
        if first_frame is not None:
            scene_frame_set(scene=scene, position=SceneFrame.Position.FIRST, upload=first_frame)
        return take_create(scene=scene, created_by=token.created_by)


def inbox_take_delete(take: Take) -> None:
    """Delete a take made through a gateway, and its Inbox scene with it once it has no
    other take (a scene the studio made, or one with other takes, stays)."""
    scene = take.scene
    with transaction.atomic():
        take_delete(take=take)
        if scene.episode.inbox and not scene.takes.exists():
            scene_delete(scene=scene)


def video_id(take: Take) -> str:
    return f"{VIDEO_PREFIX}{take.pk}"


def task_id(take: Take) -> str:
    return f"{TASK_PREFIX}{take.pk}"


def character_id(character: Character) -> str:
    return f"{CHARACTER_PREFIX}{character.pk}"


def _number(public_id: str, prefix: str) -> int:
    if not public_id.startswith(prefix) or not public_id[len(prefix) :].isdigit():
        raise Http404
    return int(public_id[len(prefix) :])


def take_by_id(token: ApiToken, public_id: str, *, prefix: str = VIDEO_PREFIX) -> Take:
    """The token's workspace's take behind `video_…` / `task_…`, or 404."""
    return access.take_for(token, _number(public_id, prefix))


def character_by_id(token: ApiToken, public_id: str) -> Character:
    """A character of the library (own or shared with it) behind `char_…`, or 404."""
    return access.character_for(token, _number(public_id, CHARACTER_PREFIX))


def mention_characters(prompt: str, characters: list[Character]) -> str:
    """The prompt with each character as its `@handle`: where its name appears (first
    time, whole word), else added at the end."""
    for character in characters:
        mention = f"@{character.handle}"
        if mention in prompt:
            continue
        pattern = re.compile(rf"\b{re.escape(character.name)}\b", re.IGNORECASE)
        if character.name and pattern.search(prompt):
            prompt = pattern.sub(mention, prompt, count=1)
        else:
            prompt = f"{prompt.rstrip()}\n\nWith {mention}."
    return prompt


def resolve_relay_mentions(token: ApiToken, prompt: str) -> str:
    """A relay prompt's `@char_12` mentions as the library's `@handle`s (404 for an id this
    workspace cannot see)."""
    return CHARACTER_MENTION.sub(
        lambda match: f"@{character_by_id(token, match.group(1)).handle}", prompt
    )
