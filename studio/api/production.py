"""Series, episodes and scenes (REST API): what the web's storyboard reads and writes.

Every object is looked up through studio.access with the token (another workspace's is a
404) and every write needs a role that may edit (else 403), as on the web. A scene's
prompt and its dialogue are saved together or not at all (studio.dialogue).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.http import Http404
from ninja import Field, Path, Query, Router, Schema, Status

from characters.models import Character
from jobs.models import ProviderAccount
from studio import access, dialogue, services
from studio.api.common import ID_MAX, problems, require, token_of
from studio.api.pagination import Page, paginate
from studio.models import (
    SIZE_CHOICES,
    ApiToken,
    DialogueLine,
    Episode,
    RoutingPolicy,
    Scene,
    Series,
    Take,
)
from studio.selectors import episodes_of, series_for_workspace

router = Router(tags=["Series, episodes and scenes"])

NUMBER_MAX = 2**31 - 1
SeriesId = Annotated[int, Path(ge=1, le=ID_MAX)]
EpisodeId = Annotated[int, Path(ge=1, le=ID_MAX)]
SceneId = Annotated[int, Path(ge=1, le=ID_MAX)]
# The choices the models hold, as types, so the schema lists them.
Size = Literal[tuple(value for value, _ in SIZE_CHOICES)]  # type: ignore[valid-type]
Policy = Literal[tuple(RoutingPolicy.values)]  # type: ignore[valid-type]
Seconds = Annotated[int, Field(ge=1, le=60, description="Seconds.")]
AccountId = Annotated[
    int,
    Field(
        ge=1,
        le=ID_MAX,
        description="A provider account of this workspace, for the pinned policy.",
    ),
]
DIALOGUE_HELP = f'{dialogue.HELP_TEXT} Sending it replaces the scene\'s lines; "" removes them all.'


# --- Schemas ----------------------------------------------------------------------------------


class SeriesIn(Schema):
    title: str = Field(max_length=200, examples=["The Lighthouse Keepers"])
    logline: str = Field("", max_length=500)
    style_guide: str = Field(
        "",
        description="Appended to every scene's prompt: look, palette, camera, mood.",
        examples=["35 mm film, muted teal and amber, slow dolly moves."],
    )
    default_size: Size = Field("1280x720", description="For scenes that name no size.")
    default_duration: Seconds = 8
    routing_policy: Policy = Field(
        "cost", description="How each scene's provider is chosen; a scene may choose otherwise."
    )
    pinned_account_id: AccountId | None = None


class SeriesPatch(Schema):
    """Only the fields sent change."""

    title: str | None = Field(None, max_length=200)
    logline: str | None = Field(None, max_length=500)
    style_guide: str | None = None
    default_size: Size | None = None
    default_duration: Seconds | None = None
    routing_policy: Policy | None = None
    pinned_account_id: AccountId | None = Field(None, description="null: none.")


class SeriesOut(Schema):
    id: int
    title: str
    logline: str
    style_guide: str
    default_size: str = Field(examples=["1280x720"])
    default_duration: int
    routing_policy: str = Field(examples=["cost"])
    pinned_account_id: int | None
    episode_count: int
    created_at: datetime
    updated_at: datetime


class EpisodeIn(Schema):
    title: str = Field(max_length=200, examples=["Pilot"])
    number: int | None = Field(
        None, ge=1, le=NUMBER_MAX, description="Leave it out for the series' next number."
    )


class EpisodePatch(Schema):
    title: str | None = Field(None, max_length=200)
    number: int | None = Field(None, ge=1, le=NUMBER_MAX)


class EpisodeOut(Schema):
    id: int
    series_id: int
    number: int
    title: str
    inbox: bool = Field(
        description="The series' Inbox: where takes made through the API gateways land."
    )
    scene_count: int
    created_at: datetime
    updated_at: datetime


class SceneIn(Schema):
    prompt: str = Field(
        max_length=32000,
        description="What happens; mention characters as @handle.",
        examples=["@mina walks into the lighthouse at dusk."],
    )
    title: str = Field("", max_length=200)
    duration: Seconds | None = Field(None, description="Seconds; the series' default if left out.")
    size: Size | None = Field(None, description="The series' default if left out.")
    notes: str = ""
    routing_policy: Policy | None = Field(None, description="null: the series' policy.")
    pinned_account_id: AccountId | None = None
    after: int | None = Field(
        None,
        ge=1,
        le=ID_MAX,
        description="Put the scene right after this scene of the episode (else at the end).",
    )
    dialogue: str | None = Field(
        None,
        max_length=dialogue.MAX_LINES * 1100,
        description=DIALOGUE_HELP,
        examples=[dialogue.PLACEHOLDER],
    )


class ScenePatch(Schema):
    """Only the fields sent change; `dialogue` replaces the lines when sent."""

    prompt: str | None = Field(None, max_length=32000)
    title: str | None = Field(None, max_length=200)
    duration: Seconds | None = None
    size: Size | None = None
    notes: str | None = None
    routing_policy: Policy | None = Field(None, description="null: the series' policy.")
    pinned_account_id: AccountId | None = Field(None, description="null: none.")
    dialogue: str | None = Field(
        None, max_length=dialogue.MAX_LINES * 1100, description=DIALOGUE_HELP
    )


class MentionOut(Schema):
    id: int
    handle: str = Field(examples=["mina"])
    name: str


class LineOut(Schema):
    position: int = Field(description="0-based order of the line in the scene.")
    speaker: str | None = Field(description="The handle of who says it; null: a voice off screen.")
    character_id: int | None
    text: str
    start: float | None = Field(description="Seconds into the scene; null: after the line before.")


class SceneOut(Schema):
    id: int
    episode_id: int
    position: int = Field(description="0-based place in the episode.")
    number: int = Field(description="1-based, as the storyboard shows it.")
    title: str
    prompt: str
    duration: int
    size: str
    notes: str
    routing_policy: str | None = Field(description="null: the series' policy.")
    pinned_account_id: int | None
    mentions: list[MentionOut] = Field(description="The characters the prompt names.")
    dialogue: str = Field(description="The lines as text, in the syntax `dialogue` takes.")
    lines: list[LineOut]
    take_count: int
    selected_take_id: int | None = Field(description="The take the scene uses, if chosen.")
    created_at: datetime
    updated_at: datetime


class MoveIn(Schema):
    position: int = Field(ge=0, le=NUMBER_MAX, description="0-based; past the end: the last.")


# --- Helpers ----------------------------------------------------------------------------------


def _account(token: ApiToken, account_id: int | None) -> ProviderAccount | None:
    """A provider account of the token's workspace named in a body, or a 422 on that field."""
    if account_id is None:
        return None
    account = ProviderAccount.objects.filter(pk=account_id, workspace=token.workspace).first()
    if account is None:
        raise ValidationError(
            {"pinned_account_id": f"This workspace has no provider account {account_id}."}
        )
    return account


def _check_pinned(policy: str, account: ProviderAccount | None) -> None:
    """The pinned policy needs its account, as the web's forms ask."""
    if policy == RoutingPolicy.PINNED and account is None:
        raise ValidationError(
            {"pinned_account_id": "Choose the provider account the pinned policy uses."}
        )


def _changes(payload: Schema, *, nullable: tuple[str, ...] = ()) -> dict:
    """The fields a PATCH sent; null only where null means something."""
    changes = payload.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None and field not in nullable:
            raise ValidationError({field: "Give a value, or leave the field out to keep it."})
    return changes


def _series_out(series: Series, episode_count: int | None = None) -> dict:
    return {
        "id": series.pk,
        "title": series.title,
        "logline": series.logline,
        "style_guide": series.style_guide,
        "default_size": series.default_size,
        "default_duration": series.default_duration,
        "routing_policy": series.routing_policy,
        "pinned_account_id": series.pinned_account_id,
        "episode_count": (series.episode_count if episode_count is None else episode_count),
        "created_at": series.created_at,
        "updated_at": series.updated_at,
    }


def _series_detail(series: Series) -> dict:
    return _series_out(series, series.episodes.count())


def _episode_out(episode: Episode) -> dict:
    count = getattr(episode, "scene_count", None)
    return {
        "id": episode.pk,
        "series_id": episode.series_id,
        "number": episode.number,
        "title": episode.title,
        "inbox": episode.inbox,
        "scene_count": episode.scenes.count() if count is None else count,
        "created_at": episode.created_at,
        "updated_at": episode.updated_at,
    }


def _scenes(scenes: QuerySet[Scene]) -> QuerySet[Scene]:
    """Scenes with what SceneOut shows, in three queries for any number of them."""
    selected = Take.objects.filter(scene=OuterRef("pk"), is_selected=True).values("pk")[:1]
    return scenes.prefetch_related(
        Prefetch("mentions", queryset=Character.objects.order_by("handle", "pk")),
        Prefetch(
            "lines",
            queryset=DialogueLine.objects.select_related("character").order_by("position"),
        ),
    ).annotate(take_count=Count("takes"), selected_take_id=Subquery(selected))


def _scene_out(scene: Scene) -> dict:
    lines = list(scene.lines.all())
    return {
        "id": scene.pk,
        "episode_id": scene.episode_id,
        "position": scene.position,
        "number": scene.number,
        "title": scene.title,
        "prompt": scene.prompt,
        "duration": scene.duration,
        "size": scene.size,
        "notes": scene.notes,
        "routing_policy": scene.routing_policy or None,
        "pinned_account_id": scene.pinned_account_id,
        "mentions": [
            {"id": c.pk, "handle": c.handle, "name": c.name} for c in scene.mentions.all()
        ],
        "dialogue": dialogue.dialogue_text(lines),
        "lines": [
            {
                "position": line.position,
                "speaker": line.character.handle if line.character_id else None,
                "character_id": line.character_id,
                "text": line.text,
                "start": line.start,
            }
            for line in lines
        ],
        "take_count": scene.take_count,
        "selected_take_id": scene.selected_take_id,
        "created_at": scene.created_at,
        "updated_at": scene.updated_at,
    }


def _scene_detail(scene_id: int) -> dict:
    return _scene_out(_scenes(Scene.objects.filter(pk=scene_id)).get())


# --- Series -----------------------------------------------------------------------------------


@router.get(
    "/series",
    response={200: Page[SeriesOut], **problems(422)},
    summary="The workspace's series, by title",
)
def series_list(
    request,
    q: Annotated[str | None, Query(max_length=200, description="Part of the title.")] = None,
    cursor: str | None = None,
    limit: int = 50,
):
    series = series_for_workspace(workspace=token_of(request).workspace)
    if q:
        series = series.filter(title__icontains=q.strip())
    rows, next_cursor = paginate(
        series, cursor=cursor, limit=limit, field="title", descending=False
    )
    return {"items": [_series_out(s) for s in rows], "next_cursor": next_cursor}


@router.post("/series", response={201: SeriesOut, **problems(403, 422)}, summary="Start a series")
def series_create(request, payload: SeriesIn):
    token = require(request, "edit")
    fields = payload.model_dump(exclude={"pinned_account_id"})
    fields["pinned_account"] = _account(token, payload.pinned_account_id)
    _check_pinned(fields["routing_policy"], fields["pinned_account"])
    series = services.series_create(workspace=token.workspace, created_by=token.user, **fields)
    return Status(201, _series_out(series, 0))


@router.get("/series/{series_id}", response={200: SeriesOut, **problems(404)}, summary="One series")
def series_detail(request, series_id: SeriesId):
    return _series_detail(access.series_for(token_of(request), series_id))


@router.patch(
    "/series/{series_id}",
    response={200: SeriesOut, **problems(403, 404, 422)},
    summary="Change a series",
)
def series_update(request, series_id: SeriesId, payload: SeriesPatch):
    token = token_of(request)
    series = access.series_for(token, series_id)
    require(request, "edit")
    changes = _changes(payload, nullable=("pinned_account_id",))
    if "pinned_account_id" in changes:
        changes["pinned_account"] = _account(token, changes.pop("pinned_account_id"))
    _check_pinned(
        changes.get("routing_policy", series.routing_policy),
        changes.get("pinned_account", series.pinned_account),
    )
    return _series_detail(services.series_update(series=series, **changes))


@router.delete(
    "/series/{series_id}",
    response={204: None, **problems(403, 404)},
    summary="Delete a series",
    description="With its episodes, scenes and takes; what the takes cost stays on record.",
)
def series_delete(request, series_id: SeriesId):
    series = access.series_for(token_of(request), series_id)
    require(request, "edit")
    series.delete()
    return Status(204, None)


# --- Episodes ---------------------------------------------------------------------------------


@router.get(
    "/series/{series_id}/episodes",
    response={200: Page[EpisodeOut], **problems(404, 422)},
    summary="A series' episodes, by number",
)
def episode_list(
    request,
    series_id: SeriesId,
    inbox: Annotated[
        bool | None, Query(description="true: only the Inbox; false: all but the Inbox.")
    ] = None,
    cursor: str | None = None,
    limit: int = 50,
):
    series = access.series_for(token_of(request), series_id)
    episodes = episodes_of(series=series)
    if inbox is not None:
        episodes = episodes.filter(inbox=inbox)
    rows, next_cursor = paginate(
        episodes, cursor=cursor, limit=limit, field="number", descending=False
    )
    return {"items": [_episode_out(e) for e in rows], "next_cursor": next_cursor}


@router.post(
    "/series/{series_id}/episodes",
    response={201: EpisodeOut, **problems(403, 404, 422)},
    summary="Add an episode",
)
def episode_create(request, series_id: SeriesId, payload: EpisodeIn):
    series = access.series_for(token_of(request), series_id)
    require(request, "edit")
    episode = services.episode_create(series=series, title=payload.title, number=payload.number)
    return Status(201, _episode_out(episode))


@router.get(
    "/episodes/{episode_id}", response={200: EpisodeOut, **problems(404)}, summary="One episode"
)
def episode_detail(request, episode_id: EpisodeId):
    return _episode_out(access.episode_for(token_of(request), episode_id))


@router.patch(
    "/episodes/{episode_id}",
    response={200: EpisodeOut, **problems(403, 404, 422)},
    summary="Rename or renumber",
)
def episode_update(request, episode_id: EpisodeId, payload: EpisodePatch):
    episode = access.episode_for(token_of(request), episode_id)
    require(request, "edit")
    changes = _changes(payload)
    episode = services.episode_update(
        episode=episode, title=changes.get("title"), number=changes.get("number")
    )
    return _episode_out(episode)


@router.delete(
    "/episodes/{episode_id}",
    response={204: None, **problems(403, 404)},
    summary="Delete an episode",
    description="With its scenes and takes; what the takes cost stays on record.",
)
def episode_delete(request, episode_id: EpisodeId):
    episode = access.episode_for(token_of(request), episode_id)
    require(request, "edit")
    episode.delete()
    return Status(204, None)


# --- Scenes -----------------------------------------------------------------------------------


@router.get(
    "/episodes/{episode_id}/scenes",
    response={200: Page[SceneOut], **problems(404, 422)},
    summary="An episode's scenes, in order",
)
def scene_list(
    request,
    episode_id: EpisodeId,
    mentions: Annotated[
        str | None,
        Query(max_length=41, description="Only scenes whose prompt names this @handle."),
    ] = None,
    cursor: str | None = None,
    limit: int = 50,
):
    episode = access.episode_for(token_of(request), episode_id)
    scenes = Scene.objects.filter(episode=episode)
    if mentions:
        handle = mentions.strip().lstrip("@").lower()
        named = Scene.mentions.through.objects.filter(character__handle=handle)
        scenes = scenes.filter(pk__in=named.values("scene_id"))
    rows, next_cursor = paginate(
        _scenes(scenes), cursor=cursor, limit=limit, field="position", descending=False
    )
    return {"items": [_scene_out(s) for s in rows], "next_cursor": next_cursor}


@router.post(
    "/episodes/{episode_id}/scenes",
    response={201: SceneOut, **problems(403, 404, 422)},
    summary="Add a scene",
    description="At the end of the episode, or right after `after`. The prompt's @handles "
    "and the dialogue are checked first: a problem in either is a 422 naming the field, "
    "and nothing is saved.",
)
def scene_create(request, episode_id: EpisodeId, payload: SceneIn):
    token = token_of(request)
    episode = access.episode_for(token, episode_id)
    require(request, "edit")
    after = None
    if payload.after is not None:
        after = access.scene_for(token, payload.after)
        if after.episode_id != episode.pk:
            raise ValidationError({"after": f"Scene {after.pk} is in another episode."})
    account = _account(token, payload.pinned_account_id)
    _check_pinned(payload.routing_policy or "", account)
    scene = dialogue.scene_save_with_dialogue(
        save=lambda: services.scene_create(
            episode=episode,
            prompt=payload.prompt,
            title=payload.title,
            duration=payload.duration,
            size=payload.size,
            notes=payload.notes,
            after=after,
            routing_policy=payload.routing_policy or "",
            pinned_account=account,
        ),
        text=payload.dialogue,
        workspace=token.workspace,
        duration=payload.duration or episode.series.default_duration,
    )
    return Status(201, _scene_detail(scene.pk))


@router.get("/scenes/{scene_id}", response={200: SceneOut, **problems(404)}, summary="One scene")
def scene_detail(request, scene_id: SceneId):
    return _scene_detail(access.scene_for(token_of(request), scene_id).pk)


@router.patch(
    "/scenes/{scene_id}",
    response={200: SceneOut, **problems(403, 404, 422)},
    summary="Change a scene",
)
def scene_update(request, scene_id: SceneId, payload: ScenePatch):
    token = token_of(request)
    scene = access.scene_for(token, scene_id)
    require(request, "edit")
    changes = _changes(payload, nullable=("routing_policy", "pinned_account_id", "dialogue"))
    text = changes.pop("dialogue", None)
    if "routing_policy" in changes:
        changes["routing_policy"] = changes["routing_policy"] or ""
    if "pinned_account_id" in changes:
        changes["pinned_account"] = _account(token, changes.pop("pinned_account_id"))
    _check_pinned(
        changes.get("routing_policy", scene.routing_policy),
        changes.get("pinned_account", scene.pinned_account),
    )
    dialogue.scene_save_with_dialogue(
        save=lambda: services.scene_update(scene=scene, **changes),
        text=text,
        workspace=token.workspace,
        duration=changes.get("duration", scene.duration),
    )
    return _scene_detail(scene.pk)


@router.post(
    "/scenes/{scene_id}/move",
    response={200: SceneOut, **problems(403, 404, 422)},
    summary="Move a scene",
)
def scene_move(request, scene_id: SceneId, payload: MoveIn):
    scene = access.scene_for(token_of(request), scene_id)
    require(request, "edit")
    try:
        services.scene_move(scene=scene, to_position=payload.position)
    except Scene.DoesNotExist:  # deleted meanwhile
        raise Http404 from None
    return _scene_detail(scene.pk)


@router.post(
    "/scenes/{scene_id}/duplicate",
    response={201: SceneOut, **problems(403, 404)},
    summary="Duplicate a scene",
    description="A copy right after it, with its pictures and dialogue (not its takes).",
)
def scene_duplicate(request, scene_id: SceneId):
    scene = access.scene_for(token_of(request), scene_id)
    require(request, "edit")
    copy = services.scene_duplicate(scene=scene)
    return Status(201, _scene_detail(copy.pk))


@router.delete(
    "/scenes/{scene_id}",
    response={204: None, **problems(403, 404)},
    summary="Delete a scene",
    description="Its takes leave the storyboard; what they cost stays on record.",
)
def scene_delete(request, scene_id: SceneId):
    scene = access.scene_for(token_of(request), scene_id)
    require(request, "edit")
    services.scene_delete(scene=scene)
    return Status(204, None)
