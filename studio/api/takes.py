"""Takes (REST API): list and read them, quote a scene before paying, generate one take or a
whole episode's, and act on a take (cancel, select, review, retry, remix, extend).

Everything that costs money goes through studio.generation (take_create, take_derive,
take_retry), which reserves the estimate against the budgets in the transaction that makes
the job: a refusal (no provider, no room in a budget) is a 422 in plain words with nothing
made. Making takes is counted by the same generation rate limit as the web
(studio.throttles.generate), per person (the token's owner) and per workspace. Send an
`Idempotency-Key` with each paid POST: a repeat gets the first answer and pays nothing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, Path, Query, Router, Schema, Status

from jobs import services as jobs
from jobs.models import TERMINAL_STATES, JobKind, JobState, ProviderAccount
from jobs.requests import RequestShapeError
from studio import access, generation, services, throttles
from studio.api.common import ID_MAX, created, dollars, problems, require, token_of
from studio.api.pagination import Page, paginate
from studio.api.problems import problem
from studio.forms import DeriveForm
from studio.http import serve_stored_file
from studio.models import ApiToken, Episode, ReviewReason, Scene, Take

router = Router(tags=["Takes"])

TakeId = Annotated[int, Path(ge=1, le=ID_MAX, description="A take of this token's workspace.")]
SceneId = Annotated[int, Path(ge=1, le=ID_MAX, description="A scene of this token's workspace.")]
EpisodeId = Annotated[
    int, Path(ge=1, le=ID_MAX, description="An episode of this token's workspace.")
]
# A batch names at most this many scenes (an episode has far fewer).
MAX_BATCH = 500


class AccountOut(Schema):
    """A provider account of the workspace (where takes are made)."""

    id: int
    name: str = Field(examples=["OpenAI"])
    kind: str = Field(
        description="The provider: openai, sora_relay, seedance, kling, veo, gemini, runway, "
        "fal, elevenlabs.",
        examples=["openai"],
    )


def account_out(account: ProviderAccount) -> AccountOut:
    return AccountOut(id=account.pk, name=account.name, kind=account.kind)


def generation_refused(
    request: HttpRequest, token: ApiToken, *, what: str = "takes"
) -> HttpResponse | None:
    """Count a request that starts paid work against the generation limits, exactly as the web
    counts it, or a 429 with Retry-After when over them (nothing made or charged).

    The web counts the signed-in person; a token acts for its owner, so a script and its
    owner's browser share one allowance (and the workspace's is shared by everyone)."""
    refusal = throttles.generate(request, token)
    if refusal is None:
        return None
    who = "this workspace" if refusal.what.endswith(":workspace") else "you"
    return problem(
        429,
        f"That is more {what} than {who} may start in a short while; nothing was made or "
        f"charged. Try again in {refusal.wait_in_words}.",
        kind="rate-limit-exceeded",
        headers={"Retry-After": refusal.retry_after_header},
    )


# --- Takes as the API shows them --------------------------------------------------------------


class ReviewScores(Schema):
    """A reviewer's own scores, 0-100, on the axes the automatic drift scorer measures."""

    face: int | None = Field(None, ge=0, le=100)
    clothing: int | None = Field(None, ge=0, le=100)
    style: int | None = Field(None, ge=0, le=100)


class ReviewOut(Schema):
    state: Literal["pending", "approved", "rejected"]
    codes: list[str] = Field(description="Why it was rejected (reason codes, in order given).")
    reason: str = Field(description="Why it was rejected, in words.")
    notes: str
    scores: ReviewScores
    reviewed_at: datetime | None


class TakeOut(Schema):
    """One attempt at a scene and the job that makes its video."""

    id: int
    scene_id: int
    episode_id: int
    series_id: int
    parent_id: int | None = Field(description="The take this one remixes or extends.")
    kind: Literal["generate", "remix", "extend"]
    state: JobState = Field(
        description="pending and submitting: not at the provider yet; queued, running, "
        "downloading: under way; succeeded, failed, cancelled: ended; unknown: being checked "
        "with the provider."
    )
    progress: int = Field(description="Percent, as the provider reports it.")
    provider_account: AccountOut
    routing_policy: str = Field(
        description="How the account was chosen: cost, stability, characters, pinned, manual "
        "(by hand), same (a remix or extension stays where its source was made)."
    )
    routing_reason: str = Field(description="Why that account, in words.")
    estimate: str = Field(description="Dollars reserved for it when it was started.")
    cost: str | None = Field(description="Dollars it actually cost, once it ended.")
    error_code: str = Field(description='Why it stopped, as a code ("" unless it failed).')
    error_message: str = Field(description="Why it stopped, in plain words.")
    prompt: str = Field(
        description="The prompt as the provider read it (before it is sent, the one that will "
        "go), characters shown as @handles. A failed take keeps it."
    )
    review: ReviewOut
    is_selected: bool = Field(description="The take its scene uses in cuts.")
    created_at: datetime
    finished_at: datetime | None
    video_url: str | None = Field(
        description="The video (MP4), once it succeeded: GET it with the same token "
        "(GET /takes/{id}/content; byte ranges are honoured)."
    )
    thumbnail_url: str | None = Field(
        description="A JPEG still, once it succeeded (GET /takes/{id}/content?variant=thumbnail)."
    )


TAKE_FILES = {
    "video": ("video", "video/mp4"),
    "thumbnail": ("thumbnail", "image/jpeg"),
    "spritesheet": ("spritesheet", "image/jpeg"),
}


def _media_url(request: HttpRequest, take: Take, variant: str) -> str | None:
    """Where a script downloads one of a finished take's files: this API, with its token."""
    stored = getattr(take.job, TAKE_FILES[variant][0])
    if take.job.state != JobState.SUCCEEDED or not stored:
        return None
    path = reverse("api:take_content", kwargs={"take_id": take.pk})
    return request.build_absolute_uri(path + ("" if variant == "video" else f"?variant={variant}"))


def _prompt_of(job) -> str:
    """The job's prompt; "" for a request the engine cannot read (never fails a listing)."""
    try:
        return job.prompt
    except RequestShapeError:
        return ""


def take_out(request: HttpRequest, take: Take) -> TakeOut:
    job, episode = take.job, take.scene.episode
    return TakeOut(
        id=take.pk,
        scene_id=take.scene_id,
        episode_id=episode.pk,
        series_id=episode.series_id,
        parent_id=take.parent_id,
        kind=job.kind,
        state=job.state,
        progress=job.progress,
        provider_account=account_out(job.provider_account),
        routing_policy=job.routing.get("policy", ""),
        routing_reason=job.routing.get("reason", ""),
        estimate=dollars(job.cost_estimate),
        cost=dollars(job.cost_actual),
        error_code=job.error_code,
        error_message=job.error_message,
        prompt=_prompt_of(job),
        review=ReviewOut(
            state=take.review_state,
            codes=list(take.review_codes),
            reason=take.review_reason,
            notes=take.review_notes,
            scores=ReviewScores(
                face=take.review_face, clothing=take.review_clothing, style=take.review_style
            ),
            reviewed_at=take.reviewed_at,
        ),
        is_selected=take.is_selected,
        created_at=take.created_at,
        finished_at=job.finished_at,
        video_url=_media_url(request, take, "video"),
        thumbnail_url=_media_url(request, take, "thumbnail"),
    )


def _reloaded(token: ApiToken, take: Take) -> Take:
    """The take as it stands now (after an action changed it or its job)."""
    return access.take_for(token, take.pk)


# --- Reading --------------------------------------------------------------------------------


class TakeFilters(Schema):
    scene_id: int | None = Field(None, ge=1, le=ID_MAX, description="Only this scene's takes.")
    episode_id: int | None = Field(None, ge=1, le=ID_MAX, description="Only this episode's takes.")
    series_id: int | None = Field(None, ge=1, le=ID_MAX, description="Only this series' takes.")
    state: JobState | None = Field(None, description="Only takes whose job is in this state.")
    review: Literal["pending", "approved", "rejected"] | None = Field(
        None, description="Only takes with this review state."
    )
    selected: bool | None = Field(
        None, description="true: only the takes their scenes use; false: only the others."
    )


@router.get(
    "/takes",
    response={200: Page[TakeOut], **problems(401, 422)},
    summary="List takes",
    description="Newest first, across the workspace, narrowed by any of the filters.",
)
def take_list(
    request,
    filters: Query[TakeFilters],
    cursor: str | None = None,
    limit: int = 50,
):
    token = token_of(request)
    takes = Take.objects.filter(scene__episode__series__workspace=token.workspace).select_related(
        "job__provider_account", "scene__episode"
    )
    for field, lookup in (
        ("scene_id", "scene_id"),
        ("episode_id", "scene__episode_id"),
        ("series_id", "scene__episode__series_id"),
        ("state", "job__state"),
        ("review", "review_state"),
        ("selected", "is_selected"),
    ):
        value = getattr(filters, field)
        if value is not None:
            takes = takes.filter(**{lookup: value})
    rows, next_cursor = paginate(takes, cursor=cursor, limit=limit)
    return Page[TakeOut](items=[take_out(request, take) for take in rows], next_cursor=next_cursor)


@router.get(
    "/takes/{take_id}",
    response={200: TakeOut, **problems(401, 404)},
    summary="One take",
    description="Poll it while it is made (`state`, `progress`), or subscribe to the take.* "
    "webhooks instead.",
)
def take_detail(request, take_id: TakeId):
    return take_out(request, access.take_for(token_of(request), take_id))


@router.get(
    "/takes/{take_id}/content",
    url_name="take_content",
    response={200: None, **problems(401, 404)},
    summary="Download a finished take's video, thumbnail or spritesheet",
    description="Streams the file (the video honours a byte range; on S3 storage the answer is "
    "a redirect to a short-lived signed URL). 404 until the take has succeeded.",
    openapi_extra={
        "responses": {
            200: {
                "description": "The file.",
                "content": {"video/mp4": {}, "image/jpeg": {}},
            }
        }
    },
)
def take_content(
    request,
    take_id: TakeId,
    variant: Literal["video", "thumbnail", "spritesheet"] = "video",
):
    take = access.take_for(token_of(request), take_id)
    field, content_type = TAKE_FILES[variant]
    stored = getattr(take.job, field)
    if take.job.state != JobState.SUCCEEDED or not stored:
        raise Http404
    return serve_stored_file(request, stored, content_type=content_type)


# --- Quoting and generating ---------------------------------------------------------------------

Policy = Literal["auto", "cost", "stability", "characters"]
POLICY_HELP = (
    "auto (the default): the scene's own routing policy, else its series'. cost, stability or "
    "characters: that policy for this request only (the scene keeps its own). Leave it auto "
    "when choosing an account by hand."
)


class RouteIn(Schema):
    account_id: int | None = Field(
        None,
        ge=1,
        le=ID_MAX,
        description="Choose the provider account by hand (it is used even while it is down); "
        "omit it to let the routing policy choose.",
    )
    policy: Policy = Field("auto", description=POLICY_HELP)


# No body at all is the same as {}: the routing policy chooses.
ROUTED_BY_POLICY = RouteIn()


def _account_for(token: ApiToken, account_id: int) -> ProviderAccount:
    """An enabled account of the token's workspace; anything else is refused alike (another
    team's accounts are not confirmed to exist)."""
    account = ProviderAccount.objects.filter(
        pk=account_id, workspace=token.workspace, enabled=True
    ).first()
    if account is None:
        raise ValidationError(
            {"account_id": "That provider account is not available in this workspace."}
        )
    return account


def _route(token: ApiToken, payload: RouteIn) -> ProviderAccount | None:
    """The account chosen by hand, if any; refuses asking for an account and a policy at once."""
    if payload.account_id is None:
        return None
    if payload.policy != "auto":
        raise ValidationError(
            {"policy": "Choose a provider account or a routing policy, not both."}
        )
    return _account_for(token, payload.account_id)


def _with_policy(scene: Scene, policy: str) -> Scene:
    """The scene routed by `policy` for this request only (never saved)."""
    if policy != "auto":
        scene.routing_policy = policy
    return scene


class RouteOption(Schema):
    account: AccountOut
    estimate: str = Field(description="Dollars this account would reserve for the take.")
    place: int | None = Field(
        description="Its place in the policy's order (1 is chosen; the rest are fallbacks "
        "while it is down); null when it cannot make the scene."
    )
    problems: list[str] = Field(description="Why this account cannot make the scene as it is.")
    why_not: str = Field(description="Why the policy leaves it out, in words.")
    degraded_note: str = Field(
        description="Where the cast travels as reference images (no saved characters there)."
    )
    breaker_open: bool = Field(
        description="Its provider failed repeatedly just now; the policy skips it for a while."
    )


class ChoiceOut(Schema):
    account: AccountOut
    estimate: str = Field(description="Dollars a take would reserve.")
    reason: str = Field(description="Why this account, in words.")


class EstimateOut(Schema):
    """What a take of the scene would cost and where it would go; nothing is paid."""

    scene_id: int
    policy: str = Field(
        description="The policy that chose (manual when an account was chosen by hand)."
    )
    chosen: ChoiceOut | None = Field(description="Where a take would go; null if nowhere.")
    problems: list[str] = Field(description="Why no take can be made, when none can.")
    summary: str = Field(description="The choice and its fallbacks in one line.")
    options: list[RouteOption] = Field(
        description="Every enabled account that makes video: ranked first, then those out."
    )


@router.post(
    "/scenes/{scene_id}/estimate",
    response={200: EstimateOut, **problems(401, 403, 404, 422)},
    summary="Quote a take of a scene (pays nothing)",
    description="The account the routing policy (or `account_id`) would use, its estimate, "
    "and every other account's price or why it is out. Owners and editors.",
)
def scene_estimate(request, scene_id: SceneId, payload: RouteIn = ROUTED_BY_POLICY):
    token = token_of(request)
    scene = access.scene_for(token, scene_id)
    require(request, "edit")
    account = _route(token, payload)
    routes = generation.scene_routes(scene=_with_policy(scene, payload.policy))
    options = [
        RouteOption(
            account=account_out(row["account"]),
            estimate=dollars(row["estimate"]),
            place=row["place"],
            problems=list(row["problems"]),
            why_not=row["why_not"],
            degraded_note=row["degraded_note"],
            breaker_open=row["breaker"].is_open,
        )
        for row in routes.options()
    ]
    if account is not None:
        quote = generation.scene_compile(scene=scene, account=account)
        chosen = None
        if not quote.problems:
            reason = f"Chosen by hand: {account.name} (about ${dollars(quote.estimate)})."
            chosen = ChoiceOut(
                account=account_out(account), estimate=dollars(quote.estimate), reason=reason
            )
        return EstimateOut(
            scene_id=scene.pk,
            policy="manual",
            chosen=chosen,
            problems=list(quote.problems),
            summary=chosen.reason if chosen else " ".join(quote.problems),
            options=options,
        )
    picked = routes.routes.chosen
    chosen = None
    refusals: list[str] = []
    if picked is None:
        refusals = [f"{o.name}: {why}" for o, why in routes.ranking.excluded] or [
            "No provider account is switched on in this workspace."
        ]
    else:
        chosen = ChoiceOut(
            account=account_out(picked.account),
            estimate=dollars(picked.estimate),
            reason=routes.ranking.reason,
        )
    return EstimateOut(
        scene_id=scene.pk,
        policy=routes.policy,
        chosen=chosen,
        problems=refusals,
        summary=routes.summary,
        options=options,
    )


@router.post(
    "/scenes/{scene_id}/takes",
    response={201: TakeOut, **problems(401, 403, 404, 422, 429)},
    summary="Generate a take of a scene",
    description="Reserves the estimate and starts the job; the take is `pending` until a "
    "worker sends it. No provider able to make it, or no room in a budget: 422 in plain "
    "words, nothing made. Counted by the generation rate limit (429 with Retry-After). Send "
    "an Idempotency-Key so that a retried request never pays twice. Owners and editors.",
)
def scene_take_create(
    request, response: HttpResponse, scene_id: SceneId, payload: RouteIn = ROUTED_BY_POLICY
):
    token = token_of(request)
    scene = access.scene_for(token, scene_id)
    require(request, "edit")
    if refused := generation_refused(request, token):
        return refused
    account = _route(token, payload)
    take = generation.take_create(
        scene=_with_policy(scene, payload.policy), account=account, created_by=token.user
    )
    created(response, f"takes/{take.pk}")
    return Status(201, take_out(request, _reloaded(token, take)))


class BatchIn(RouteIn):
    scene_ids: list[Annotated[int, Field(ge=1, le=ID_MAX)]] | None = Field(
        None,
        max_length=MAX_BATCH,
        description="The scenes to make a take of, in any order (each once). Omitted: every "
        "scene of the episode that has no selected take and none on its way, as the studio's "
        "“Generate all” does.",
    )


EVERY_WAITING_SCENE = BatchIn()


class SceneRefusal(Schema):
    scene_id: int
    scene_number: int
    reasons: list[str] = Field(description="Why no take of it was made, in plain words.")


class SceneSkip(Schema):
    scene_id: int
    scene_number: int
    reason: str


class BatchOut(Schema):
    """What a batch made: one take per scene that could go; the others with their reasons."""

    made: list[TakeOut]
    refused: list[SceneRefusal] = Field(description="Scenes no take could be made of.")
    skipped: list[SceneSkip] = Field(
        description="Scenes left alone because they have a selected take or one on its way "
        "(only when scene_ids is omitted)."
    )
    estimate_total: str = Field(description="Dollars reserved for the takes made.")


def _batch_scenes(
    episode: Episode, scene_ids: list[int] | None
) -> tuple[list[Scene], list[SceneSkip]]:
    """The scenes a batch makes takes of, in episode order, and those it leaves alone."""
    scenes = list(
        Scene.objects.filter(episode=episode)
        .select_related("episode__series")
        .order_by("position", "pk")
    )
    if scene_ids is not None:
        known = {scene.pk for scene in scenes}
        unknown = [pk for pk in dict.fromkeys(scene_ids) if pk not in known]
        if unknown:
            raise ValidationError(
                {
                    "scene_ids": f"Not scenes of this episode: {', '.join(map(str, unknown))}.",
                }
            )
        wanted = set(scene_ids)
        return [scene for scene in scenes if scene.pk in wanted], []
    selected = set(
        Take.objects.filter(scene__episode=episode, is_selected=True).values_list(
            "scene_id", flat=True
        )
    )
    busy = set(
        Take.objects.filter(scene__episode=episode)
        .exclude(job__state__in=TERMINAL_STATES)
        .values_list("scene_id", flat=True)
    )
    waiting, skipped = [], []
    for scene in scenes:
        if scene.pk in busy:
            skipped.append(
                SceneSkip(
                    scene_id=scene.pk,
                    scene_number=scene.number,
                    reason=("A take of it is on its way."),
                )
            )
        elif scene.pk in selected:
            skipped.append(
                SceneSkip(
                    scene_id=scene.pk, scene_number=scene.number, reason=("It has a selected take.")
                )
            )
        else:
            waiting.append(scene)
    return waiting, skipped


@router.post(
    "/episodes/{episode_id}/takes",
    response={201: BatchOut, **problems(401, 403, 404, 422, 429)},
    summary="Generate a take of every scene of an episode (or of some)",
    description="One take per scene, each routed by its policy (or `policy` for all, or at "
    "`account_id`), started together. Scenes that cannot go are listed with their reasons "
    "while the others still go; when none can, the answer is a 422 naming each. Counted once "
    "by the generation rate limit. Send an Idempotency-Key. Owners and editors.",
)
def episode_takes_create(request, episode_id: EpisodeId, payload: BatchIn = EVERY_WAITING_SCENE):
    token = token_of(request)
    episode = access.episode_for(token, episode_id)
    require(request, "edit")
    if refused := generation_refused(request, token):
        return refused
    account = _route(token, payload)
    scenes, skipped = _batch_scenes(episode, payload.scene_ids)
    if not scenes:
        raise ValidationError(
            "Every scene of this episode has a selected take or one on its way; name "
            "scene_ids to make more."
            if skipped
            else "The episode has no scenes yet."
        )
    made, refused_scenes = generation.takes_create(
        [_with_policy(scene, payload.policy) for scene in scenes],
        lambda scene: generation.take_create(scene=scene, account=account, created_by=token.user),
    )
    if not made:
        raise ValidationError(
            {
                f"scenes.{scene.pk}": [f"Scene {scene.number}: {m}" for m in error.messages]
                for scene, error in refused_scenes
            }
        )
    fresh = {
        take.pk: take
        for take in Take.objects.filter(pk__in=[t.pk for t in made]).select_related(
            "job__provider_account", "scene__episode__series__workspace"
        )
    }
    return Status(
        201,
        BatchOut(
            made=[take_out(request, fresh[take.pk]) for take in made],
            refused=[
                SceneRefusal(
                    scene_id=scene.pk, scene_number=scene.number, reasons=list(error.messages)
                )
                for scene, error in refused_scenes
            ],
            skipped=skipped,
            estimate_total=dollars(sum((t.job.cost_estimate for t in made), start=Decimal(0))),
        ),
    )


# --- One take's actions ---------------------------------------------------------------------------


class CancelOut(Schema):
    outcome: Literal["stopped", "abandoned"] = Field(
        description="stopped: nothing more is charged. abandoned: its provider cannot stop a "
        "video once under way, so it may still finish there and be billed; its estimate stays "
        "counted."
    )
    message: str
    take: TakeOut


@router.post(
    "/takes/{take_id}/cancel",
    response={200: CancelOut, **problems(401, 403, 404, 422)},
    summary="Cancel a take that is still being made",
    description="A take that has not reached its provider stops at once and costs nothing. "
    "Owners and editors.",
)
def take_cancel(request, take_id: TakeId):
    token = token_of(request)
    take = access.take_for(token, take_id)
    require(request, "edit")
    outcome = jobs.job_cancel(job=take.job)
    if not outcome:
        raise ValidationError(f"Take {take.pk} has already finished; nothing was cancelled.")
    if outcome == jobs.Cancelled.ABANDONED:
        message = (
            f"Take {take.pk} was abandoned: its provider cannot stop a video once it is under "
            "way, so it may still finish there and be charged. Its estimate stays counted "
            "against your budget."
        )
    else:
        message = f"Take {take.pk} was cancelled; nothing more is charged for it."
    return CancelOut(
        outcome=outcome.value, message=message, take=take_out(request, _reloaded(token, take))
    )


@router.post(
    "/takes/{take_id}/select",
    response={200: TakeOut, **problems(401, 403, 404, 422)},
    summary="Make a finished take the one its scene uses",
    description="The scene's previously selected take (if any) is unselected. Owners and editors.",
)
def take_select(request, take_id: TakeId):
    token = token_of(request)
    take = access.take_for(token, take_id)
    require(request, "edit")
    services.take_select(take=take)
    return take_out(request, _reloaded(token, take))


class ReviewIn(Schema):
    decision: Literal["approve", "reject"]
    codes: list[ReviewReason] = Field(
        default_factory=list,
        max_length=len(ReviewReason.values),
        description="Why it is rejected (one or more); ignored when approving.",
    )
    reason: str = Field("", max_length=300, description="Why it is rejected, in words.")
    notes: str | None = Field(
        None, max_length=10_000, description="The reviewer's notes; omitted: left as they are."
    )
    scores: ReviewScores | None = Field(
        None,
        description="The reviewer's scores (0-100); an axis omitted is left as it is, null "
        "clears it.",
    )


@router.post(
    "/takes/{take_id}/review",
    response={200: TakeOut, **problems(401, 403, 404, 422)},
    summary="Approve or reject a finished take",
    description="A rejection needs a reason: one or more codes, or words. Reviewers, editors "
    "and owners.",
)
def take_review(request, take_id: TakeId, payload: ReviewIn):
    token = token_of(request)
    take = access.take_for(token, take_id)
    require(request, "review")
    approve = payload.decision == "approve"
    changed = services.take_review(
        takes=[take],
        state=Take.Review.APPROVED if approve else Take.Review.REJECTED,
        reason=payload.reason,
        codes=() if approve else [code.value for code in payload.codes],
        notes=payload.notes,
        scores=payload.scores.model_dump(exclude_unset=True) if payload.scores else None,
        reviewer=token.user,
    )
    if not changed:
        raise ValidationError("Only a finished take can be reviewed.")
    return take_out(request, _reloaded(token, take))


@router.post(
    "/takes/{take_id}/retry",
    response={201: TakeOut, **problems(401, 403, 404, 422, 429)},
    summary="Send a failed or cancelled take again",
    description="A new take with the same request (same prompt) at the same provider account, "
    "its estimate reserved again. Counted by the generation rate limit. Owners and editors.",
)
def take_retry(request, response: HttpResponse, take_id: TakeId):
    token = token_of(request)
    take = access.take_for(token, take_id)
    require(request, "edit")
    if refused := generation_refused(request, token):
        return refused
    again = generation.take_retry(take=take, created_by=token.user)
    created(response, f"takes/{again.pk}")
    return Status(201, take_out(request, _reloaded(token, again)))


class RemixIn(Schema):
    prompt: str = Field(
        min_length=1, max_length=32000, description="What should change in the same video."
    )


class ExtendIn(Schema):
    prompt: str = Field(min_length=1, max_length=32000, description="What happens next.")
    seconds: int = Field(
        ge=1, le=60, description="How many seconds to add (one the provider offers)."
    )


def _derive(
    request: HttpRequest, response: HttpResponse, take_id: int, kind: str, data: dict
) -> HttpResponse | Status:
    token = token_of(request)
    take = access.take_for(token, take_id)
    require(request, "edit")
    if refused := generation_refused(request, token):
        return refused
    # The web's form: the same checks (an extension's length must be one the provider offers).
    form = DeriveForm(data, kind=kind, capabilities=take.job.provider_account.capabilities)
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    new = generation.take_derive(
        parent=take,
        kind=kind,
        prompt=form.cleaned_data["prompt"],
        seconds=form.cleaned_data.get("seconds"),
        created_by=token.user,
    )
    created(response, f"takes/{new.pk}")
    return Status(201, take_out(request, _reloaded(token, new)))


@router.post(
    "/takes/{take_id}/remix",
    response={201: TakeOut, **problems(401, 403, 404, 422, 429)},
    summary="Remix a finished take",
    description="A new take: the same video changed by a new prompt, at the provider that made "
    "it (where it can remix). Paid like a take; counted by the generation rate limit. Owners "
    "and editors.",
)
def take_remix(request, response: HttpResponse, take_id: TakeId, payload: RemixIn):
    return _derive(request, response, take_id, JobKind.REMIX, {"prompt": payload.prompt})


@router.post(
    "/takes/{take_id}/extend",
    response={201: TakeOut, **problems(401, 403, 404, 422, 429)},
    summary="Extend a finished take",
    description="A new take continuing the video by `seconds`, at the provider that made it "
    "(where it can extend). Paid like a take; counted by the generation rate limit. Owners and "
    "editors.",
)
def take_extend(request, response: HttpResponse, take_id: TakeId, payload: ExtendIn):
    return _derive(
        request,
        response,
        take_id,
        JobKind.EXTEND,
        {"prompt": payload.prompt, "seconds": payload.seconds},
    )
