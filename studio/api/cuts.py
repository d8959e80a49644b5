"""Cuts (REST API): what assembling an episode would take (preflight), starting an assembly,
and each cut's progress, staleness and files.

A cut is started through studio.cuts.cut_start, which dubs the lines of silent takes first:
that speech is paid, reserved against the budgets like a take (refused in plain words with
nothing made when it does not fit). Starting one is counted by the generation rate limit,
as on the web.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, Path, Query, Router, Schema, Status

from studio import access, cuts
from studio.api.common import ID_MAX, created, dollars, problems, require, token_of
from studio.api.pagination import Page, paginate
from studio.api.takes import EpisodeId, generation_refused
from studio.http import serve_stored_file
from studio.models import Cut, Episode
from studio.views.cuts import CUT_FILES

router = Router(tags=["Cuts"])

CutId = Annotated[int, Path(ge=1, le=ID_MAX, description="A cut of this token's workspace.")]


class CutOptionsIn(Schema):
    """How to assemble, as the studio's cut form asks."""

    crossfade: float = Field(
        0.0,
        ge=0,
        le=cuts.MAX_CROSSFADE,
        description="Seconds of crossfade between scenes (0: straight cuts).",
    )
    title_card: bool = Field(True, description="Open on a card with the episode's title.")
    end_card: bool = Field(True, description="Close on an end card.")
    burn_subtitles: bool = Field(
        False,
        description="Burn the subtitles into the picture (the subtitle files come with every "
        "cut either way).",
    )

    def options(self) -> cuts.CutOptions:
        return cuts.CutOptions(
            crossfade=self.crossfade,
            title_card=self.title_card,
            end_card=self.end_card,
            burn_subtitles=self.burn_subtitles,
        )


# No body at all is the same as {}: the cut form's defaults.
DEFAULT_OPTIONS = CutOptionsIn()


# --- Preflight ----------------------------------------------------------------------------------


class PreflightScene(Schema):
    scene_id: int
    number: int
    title: str
    take_id: int | None = Field(description="Its selected take with a video; null: none.")
    seconds: float = Field(description="How long its take is.")
    dubbed: bool = Field(description="Its take is silent: its lines are spoken by a voice.")


class PreflightLine(Schema):
    line_id: int
    scene_id: int
    scene_number: int
    speaker: str = Field(description='The character who says it ("" for a voice off screen).')
    text: str
    sound: Literal["take", "new_reading", "reading", "none"] = Field(
        description="take: spoken in the take itself. new_reading: dubbed in the speaker's "
        "voice, paid when the cut starts. reading: dubbed with a reading made before (paid "
        "already). none: no voice can read it; the cut keeps its subtitle."
    )
    estimate: str | None = Field(description="Dollars a new reading costs.")
    problem: str = Field(description="Why no voice can read it.")


class PreflightOut(Schema):
    """What a cut of the episode would be, what it lacks, and what its speech would cost."""

    episode_id: int
    ready: bool = Field(description="Every scene has a selected take with a video.")
    missing: list[str] = Field(description="What stops the assembly, in plain words.")
    scenes: list[PreflightScene]
    lines: list[PreflightLine]
    speech_cost: str = Field(description="Dollars the new readings would reserve.")
    duration: float = Field(description="About how many seconds the cut will last.")


def _sound(entry: cuts.LineEntry) -> str:
    if not entry.dub:
        return "take"
    if entry.problem:
        return "none"
    return "reading" if entry.reading is not None else "new_reading"


@router.get(
    "/episodes/{episode_id}/cut/preflight",
    response={200: PreflightOut, **problems(401, 404, 422)},
    summary="What a cut of the episode would take",
    description="Its scenes with their selected takes, the scenes that lack one, each line "
    "and how it will sound, what new speech would cost, and about how long the cut would be. "
    "Pays nothing.",
)
def cut_preflight(request, episode_id: EpisodeId, options: Query[CutOptionsIn]):
    episode = access.episode_for(token_of(request), episode_id)
    preflight = cuts.cut_preflight(episode, options=options.options())
    numbers = {entry.scene.pk: entry.scene.number for entry in preflight.scenes}
    return PreflightOut(
        episode_id=episode.pk,
        ready=preflight.ready,
        missing=preflight.missing,
        scenes=[
            PreflightScene(
                scene_id=entry.scene.pk,
                number=entry.scene.number,
                title=entry.scene.title,
                take_id=entry.take.pk if entry.take else None,
                seconds=entry.seconds,
                dubbed=entry.silent,
            )
            for entry in preflight.scenes
        ],
        lines=[
            PreflightLine(
                line_id=entry.line.pk,
                scene_id=entry.line.scene_id,
                scene_number=numbers[entry.line.scene_id],
                speaker=entry.speaker,
                text=entry.line.text,
                sound=_sound(entry),
                estimate=dollars(entry.quote.estimate)
                if entry.new_reading and entry.quote
                else None,
                problem=entry.problem,
            )
            for entry in preflight.lines
        ],
        speech_cost=dollars(preflight.speech_cost),
        duration=round(preflight.duration, 3),
    )


# --- Cuts -----------------------------------------------------------------------------------------


class CutFiles(Schema):
    """The finished cut's files: the studio's own addresses, which open only for a signed-in
    member of the workspace (null until the cut is done, or where it has no such file)."""

    video: str | None = Field(description="The episode as one MP4.")
    subtitles_vtt: str | None
    subtitles_srt: str | None
    chapters: str | None = Field(description="WebVTT chapters, one per scene.")
    contact_sheet: str | None = Field(description="A JPEG of a still per scene.")
    otio: str | None = Field(description="The timeline for OpenTimelineIO.")
    fcpxml: str | None = Field(description="The timeline as Final Cut Pro 7 XML.")
    edl: str | None = Field(description="An edit decision list (CMX 3600).")
    zip: str | None = Field(
        description="Everything for an editor: takes, speech, cut, subtitles, timelines."
    )


class CutOut(Schema):
    """One assembly of an episode; the newest is the episode's current cut."""

    id: int
    episode_id: int
    series_id: int
    number: int = Field(description="1, 2, 3… per episode.")
    state: Literal["waiting", "dubbing", "rendering", "done", "failed"] = Field(
        description="dubbing: its lines' speech is being made; rendering: a worker assembles "
        "it; done or failed: ended."
    )
    status: str = Field(description='Where it is, in words: "Making speech 2 of 3 lines".')
    progress: int = Field(description="Percent, speech and assembly together.")
    message: str = Field(description="Why it failed, or which lines went without speech.")
    duration: float | None = Field(description="Seconds, once done.")
    options: dict = Field(description="How it was assembled.")
    stale: list[str] = Field(
        description="Why a finished cut no longer shows its episode (a scene's selected take "
        "or dialogue changed, a scene was added, deleted or moved); [] when it still does."
    )
    files: CutFiles
    created_at: datetime
    finished_at: datetime | None


def _file_url(request: HttpRequest, cut: Cut, variant: str) -> str | None:
    """Where a script downloads one of a finished cut's files: this API, with its token."""
    if cut.state != Cut.State.DONE or not getattr(cut, CUT_FILES[variant][0]):
        return None
    path = reverse("api:cut_file", kwargs={"cut_id": cut.pk, "variant": variant})
    return request.build_absolute_uri(path)


def cut_out(request: HttpRequest, cut: Cut, *, now: cuts.EpisodeNow | None = None) -> CutOut:
    return CutOut(
        id=cut.pk,
        episode_id=cut.episode_id,
        series_id=cut.episode.series_id,
        number=cut.number,
        state=cut.state,
        status=cuts.cut_status(cut),
        progress=cuts.cut_percent(cut),
        message=cut.message,
        duration=cut.duration,
        options=cut.options,
        stale=cuts.cut_is_stale(cut, now=now) if cut.state == Cut.State.DONE else [],
        files=CutFiles(
            **{variant.replace("-", "_"): _file_url(request, cut, variant) for variant in CUT_FILES}
        ),
        created_at=cut.created_at,
        finished_at=cut.finished_at,
    )


@router.post(
    "/episodes/{episode_id}/cuts",
    response={201: CutOut, **problems(401, 403, 404, 422, 429)},
    summary="Assemble the episode (start a cut)",
    description="Needs a selected take with a video for every scene. Lines of silent takes are "
    "dubbed first (paid and reserved against the budgets; a budget without room refuses with "
    "a 422, nothing made), then a worker assembles the cut: poll it, or subscribe to the "
    "cut.ready and cut.failed webhooks. Counted by the generation rate limit. Send an "
    "Idempotency-Key. Owners and editors.",
)
def cut_create(
    request, response: HttpResponse, episode_id: EpisodeId, payload: CutOptionsIn = DEFAULT_OPTIONS
):
    token = token_of(request)
    episode = access.episode_for(token, episode_id)
    require(request, "edit")
    if refused := generation_refused(request, token, what="work"):
        return refused
    cut = cuts.cut_start(episode=episode, options=payload.options(), user=token.user)
    created(response, f"cuts/{cut.pk}")
    return Status(201, cut_out(request, access.cut_for(token, cut.pk)))


def _episode_cuts(episode: Episode):
    return Cut.objects.filter(episode=episode).select_related("episode__series__workspace")


@router.get(
    "/episodes/{episode_id}/cuts",
    response={200: Page[CutOut], **problems(401, 404, 422)},
    summary="List an episode's cuts",
    description="Newest first: the first is the episode's current cut.",
)
def cut_list(request, episode_id: EpisodeId, cursor: str | None = None, limit: int = 50):
    episode = access.episode_for(token_of(request), episode_id)
    rows, next_cursor = paginate(_episode_cuts(episode), cursor=cursor, limit=limit)
    # The episode as it stands is read once for every cut's staleness.
    now = cuts.EpisodeNow(episode) if rows else None
    return Page[CutOut](
        items=[cut_out(request, cut, now=now) for cut in rows], next_cursor=next_cursor
    )


@router.get(
    "/cuts/{cut_id}",
    response={200: CutOut, **problems(401, 404)},
    summary="One cut",
    description="Its progress while it is made; once done, its length, files and whether the "
    "episode has changed since.",
)
def cut_detail(request, cut_id: CutId):
    return cut_out(request, access.cut_for(token_of(request), cut_id))


CutVariant = Literal[
    "video",
    "subtitles-vtt",
    "subtitles-srt",
    "chapters",
    "contact-sheet",
    "otio",
    "fcpxml",
    "edl",
    "zip",
]


@router.get(
    "/cuts/{cut_id}/files/{variant}",
    url_name="cut_file",
    response={200: None, **problems(401, 404)},
    summary="Download one of a finished cut's files",
    description="The video (byte ranges honoured), subtitles, chapters, contact sheet, the "
    "timelines for an editor (OTIO, FCP 7 XML, CMX 3600 EDL) or the whole package (zip). 404 "
    "until the cut is done.",
    openapi_extra={"responses": {200: {"description": "The file.", "content": {"*/*": {}}}}},
)
def cut_file(request, cut_id: CutId, variant: CutVariant):
    cut = access.cut_for(token_of(request), cut_id)
    field, content_type, extension = CUT_FILES[variant]
    stored = getattr(cut, field)
    if cut.state != Cut.State.DONE or not stored:
        raise Http404
    name = f"episode-{cut.episode.number}-cut-{cut.number}.{extension}"
    return serve_stored_file(request, stored, content_type=content_type, filename=name)
