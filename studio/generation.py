"""Turning scenes into takes: a scene becomes a request for the engine (jobs.engine), which
quotes it at each provider account; the take and its job are created together."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.db.models import Q, prefetch_related_objects

from characters.mentions import MENTION_RE, parse_mentions
from characters.models import Character, CharacterVersion, ReferenceAsset, subject_version
from characters.selectors import characters_resolve_handles, characters_visible_to
from characters.services import asset_add, character_version_latest
from jobs import engine
from jobs.compiled import Compiled
from jobs.models import Job, JobKind, JobState, ProviderAccount
from jobs.selectors import accounts_enabled
from studio.dialogue import scene_lines
from studio.models import (
    DialogueLine,
    GenerationBatch,
    RoutingPolicy,
    Scene,
    SceneFrame,
    Series,
    SeriesCharacter,
    Take,
    Workspace,
    series_scope,
)
from studio.services import scene_resolve_mentions

# The code of the ValidationError a budget with no room raises (a caller may answer it apart:
# the gateways say "insufficient_quota", as OpenAI does).
OVER_BUDGET = "over_budget"


def cast_member(version: CharacterVersion) -> engine.CastMember:
    """A version of a character as the engine sees it: its subject, names, and its images
    and clips in the library's order (the engine picks which travel where)."""
    character = version.character
    assets = sorted(version.assets.all(), key=lambda a: (a.created_at, a.pk))
    return engine.CastMember(
        subject=version.subject,
        name=character.name,
        handle=character.handle,
        description=version.description,
        images=tuple(_as_engine_asset(a) for a in assets if a.kind == ReferenceAsset.Kind.IMAGE),
        clips=tuple(_as_engine_asset(a) for a in assets if a.kind == ReferenceAsset.Kind.CLIP),
    )


def series_versions(
    *, series: Series, characters: Iterable[Character]
) -> dict[int, CharacterVersion]:
    """The version of each character the series makes takes with: its pin, else the
    character's latest (which the series' first take of it pins: take_create)."""
    characters = list(characters)
    if not characters:
        return {}
    pins = {
        pin.character_id: pin.version
        for pin in _series_pins(series_id=series.pk, ids=[c.pk for c in characters])
    }
    # Every unpinned character's latest version in one query (a batch's whole cast).
    latest: dict[int, CharacterVersion] = {}
    unpinned = {c.pk: c for c in characters if c.pk not in pins}
    if unpinned:
        for version in _versions_newest_first(ids=list(unpinned)):
            if version.character_id not in latest:
                version.character = unpinned[version.character_id]
                latest[version.character_id] = version
    return {
        c.pk: pins.get(c.pk) or latest.get(c.pk) or character_version_latest(c) for c in characters
    }


_series_pins = Compiled(
    lambda series_id, ids: SeriesCharacter.objects.filter(
        series_id=series_id, character_id__in=ids
    ).select_related("version__character")
)
_versions_newest_first = Compiled(
    lambda ids: CharacterVersion.objects.filter(character_id__in=ids).order_by(
        "character_id", "-number"
    )
)


def pin_versions(*, series: Series, versions: Iterable[CharacterVersion]) -> None:
    """Pin the series to these versions where it has no pin yet (its first take of them)."""
    for version in versions:
        SeriesCharacter.objects.get_or_create(
            series=series, character_id=version.character_id, defaults={"version": version}
        )


def _as_engine_asset(asset: ReferenceAsset) -> engine.Asset:
    if asset.kind == ReferenceAsset.Kind.CLIP:
        return engine.Asset(
            file=asset.file.name,
            kind=engine.VIDEO,
            content_type=asset.content_type,
            seconds=asset.duration_seconds,
        )
    return engine.Asset(file=asset.file.name, kind=engine.IMAGE, content_type=asset.content_type)


def scene_request(*, scene: Scene, prompt: str | None = None) -> engine.JobRequest:
    """What the scene asks for, at any provider: its prompt with each @handle replaced by the
    engine's placeholder and the series' style guide appended, its length and size, the
    characters it mentions and those who speak its lines (the cast), and its dialogue.
    Raises ValidationError naming unknown or ambiguous handles."""
    series = scene.episode.series
    prompt = scene.prompt if prompt is None else prompt
    characters = scene_resolve_mentions(workspace=series.workspace, prompt=prompt)
    lines = scene_lines(scene)
    characters += _speakers(series.workspace, lines, besides=characters)
    versions = series_versions(series=series, characters=characters)
    prefetch_related_objects(list(versions.values()), "assets")
    return _request(scene, series, prompt, characters, lines, versions, scene_frames(scene))


def scene_requests(
    scenes: list[Scene], *, series: Series
) -> dict[int, engine.JobRequest | ValidationError]:
    """scene_request for many scenes of one series in a constant number of queries (their
    mentions, speakers, the cast's versions and references, dialogue and frames read for
    all at once): each scene's request, or the ValidationError scene_request would raise."""
    workspace = series.workspace
    ids = [scene.pk for scene in scenes]
    handles = list(dict.fromkeys(h for scene in scenes for h in parse_mentions(scene.prompt)))
    resolution = characters_resolve_handles(workspace=workspace, handles=handles)
    lines_of: dict[int, list[DialogueLine]] = defaultdict(list)
    for line in (
        DialogueLine.objects.filter(scene_id__in=ids)
        .select_related("character")
        .order_by("scene_id", "position")
    ):
        lines_of[line.scene_id].append(line)
    frames_of: dict[int, list[SceneFrame]] = defaultdict(list)
    for frame in SceneFrame.objects.filter(scene_id__in=ids).order_by("scene", "position"):
        frames_of[frame.scene_id].append(frame)
    mentioned: dict[int, list[Character] | ValidationError] = {}
    for scene in scenes:
        try:
            mentioned[scene.pk] = scene_resolve_mentions(
                workspace=workspace, prompt=scene.prompt, resolution=resolution
            )
        except ValidationError as error:
            mentioned[scene.pk] = error
    speaker_ids = {
        line.character_id for lines in lines_of.values() for line in lines if line.character_id
    }
    usable = (
        set(
            characters_visible_to(workspace=workspace)
            .filter(pk__in=list(speaker_ids))
            .values_list("pk", flat=True)
        )
        if speaker_ids
        else set()
    )
    casts: dict[int, list[Character] | ValidationError] = {}
    everyone: dict[int, Character] = {}
    for scene in scenes:
        characters = mentioned[scene.pk]
        if not isinstance(characters, ValidationError):
            try:
                characters = characters + _speakers(
                    workspace, lines_of[scene.pk], besides=characters, usable=usable
                )
            except ValidationError as error:
                characters = error
            else:
                everyone.update((c.pk, c) for c in characters)
        casts[scene.pk] = characters
    versions = series_versions(series=series, characters=everyone.values())
    prefetch_related_objects(list(versions.values()), "assets")
    requests: dict[int, engine.JobRequest | ValidationError] = {}
    members: dict[int, engine.CastMember] = {}
    for scene in scenes:
        cast = casts[scene.pk]
        if isinstance(cast, ValidationError):
            requests[scene.pk] = cast
            continue
        frames = _engine_frames(frames_of[scene.pk])
        requests[scene.pk] = _request(
            scene, series, scene.prompt, cast, lines_of[scene.pk], versions, frames, members
        )
    return requests


def _request(
    scene: Scene,
    series: Series,
    prompt: str,
    characters: list[Character],
    lines: list[DialogueLine],
    versions: dict[int, CharacterVersion],
    frames: tuple[engine.Frame, ...],
    members: dict[int, engine.CastMember] | None = None,
) -> engine.JobRequest:
    """The engine's request from what scene_request or scene_requests read. `members`: the
    cast members made so far, by version (a batch's cast recurs from scene to scene)."""
    members = {} if members is None else members
    by_handle = {c.handle: versions[c.pk] for c in characters}
    for version in by_handle.values():
        if version.pk not in members:
            members[version.pk] = cast_member(version)

    def as_placeholder(mention: re.Match[str]) -> str:
        version = by_handle.get(mention.group(1).lower())
        if version is None:  # left as written: scene_resolve_mentions refused it already
            return mention.group(0)
        return engine.placeholder(version.subject)

    template = MENTION_RE.sub(as_placeholder, prompt)
    if series.style_guide.strip():
        template = f"{template}\n\nStyle: {series.style_guide.strip()}"
    return engine.JobRequest(
        kind=JobKind.GENERATE,
        prompt=template,
        seconds=scene.duration,
        size=scene.size,
        cast=tuple(members[versions[c.pk].pk] for c in characters),
        frames=frames,
        dialogue=tuple(
            engine.Line(
                subject=versions[line.character_id].subject if line.character_id else "",
                text=line.text,
                start=line.start,
            )
            for line in lines
        ),
    )


def _speakers(
    workspace: Workspace,
    lines: Iterable[DialogueLine],
    *,
    besides: Iterable[Character],
    usable: set[int] | None = None,
) -> list[Character]:
    """Who speaks the lines, in the order they first speak, besides the characters given:
    they join the cast although the prompt may not name them. A speaker the workspace can
    no longer use (a share that ended) is refused in plain words. `usable`: the ids of the
    speakers the workspace may use, when read already for many scenes."""
    known = {c.pk for c in besides}
    speakers = {
        line.character_id: line.character
        for line in lines
        if line.character_id and line.character_id not in known
    }
    if not speakers:
        return []
    if usable is None:
        usable = set(
            characters_visible_to(workspace=workspace)
            .filter(pk__in=list(speakers))
            .values_list("pk", flat=True)
        )
    gone = [c for pk, c in speakers.items() if pk not in usable]
    if gone:
        raise ValidationError(
            {
                "dialogue": [
                    f"@{c.handle} speaks a line but is no longer in this workspace's library."
                    for c in gone
                ]
            }
        )
    return list(speakers.values())


def scene_frames(scene: Scene) -> tuple[engine.Frame, ...]:
    """The pictures the scene starts from and ends on (none for a scene not saved yet)."""
    if scene.pk is None:
        return ()
    return _engine_frames(_frames_of_scene(scene_id=scene.pk))


# In order within the scene (the model's ordering, by scene first, joins its episode and
# series to sort one scene's frames).
_frames_of_scene = Compiled(
    lambda scene_id: SceneFrame.objects.filter(scene_id=scene_id).order_by("position")
)


def _engine_frames(frames: Iterable[SceneFrame]) -> tuple[engine.Frame, ...]:
    return tuple(
        engine.Frame(
            position=frame.position,
            asset=engine.Asset(
                file=frame.file.name, kind=engine.IMAGE, content_type=frame.content_type
            ),
        )
        for frame in frames
    )


def scene_compile(
    *, scene: Scene, account: ProviderAccount, prompt: str | None = None
) -> engine.Quote:
    """The scene at this account: the request as it would travel, its price, and why it
    cannot go (if so)."""
    return engine.quote(scene_request(scene=scene, prompt=prompt), account)


@dataclass
class SceneRoutes:
    """Every enabled account's answer for a scene, ranked by the scene's routing policy."""

    routes: engine.Routes
    pinned: ProviderAccount | None

    @property
    def policy(self) -> str:
        return self.routes.policy

    @property
    def accounts(self) -> list[ProviderAccount]:
        return self.routes.accounts

    @property
    def compiled(self) -> dict[int, engine.Quote]:
        """Each account's quote, by its id."""
        return self.routes.quotes

    @property
    def ranking(self) -> engine.Ranking:
        return self.routes.ranking

    @property
    def breakers(self) -> dict[int, engine.BreakerState]:
        return self.routes.breakers

    @property
    def chosen(self) -> ProviderAccount | None:
        chosen = self.routes.chosen
        return None if chosen is None else chosen.account

    def options(self) -> list[dict]:
        """For the page: each account with its price, place in the order, or why it is out."""
        place = {o.account_id: n for n, o in enumerate(self.ranking.ordered, start=1)}
        why_not = {o.account_id: why for o, why in self.ranking.excluded}
        rows = []
        for account in self.accounts:
            compiled = self.compiled[account.pk]
            rows.append(
                {
                    "account": account,
                    "estimate": compiled.estimate,
                    "problems": compiled.problems,
                    "place": place.get(account.pk),
                    "why_not": why_not.get(account.pk, ""),
                    "degraded_note": compiled.degraded_note,
                    "breaker": self.breakers[account.pk],
                }
            )
        rows.sort(key=lambda row: (row["place"] is None, row["place"] or 0, row["account"].name))
        return rows

    @property
    def policy_label(self) -> str:
        return RoutingPolicy(self.policy).label

    @property
    def summary(self) -> str:
        """One line: what the policy picks and what it falls back to, or why nothing can go."""
        if self.chosen is None:
            return "No provider can make this scene as it stands."
        rest = [o.name for o in self.ranking.ordered[1:]]
        fallback = f" If it is down: {', '.join(rest)}." if rest else ""
        return f"{self.ranking.reason}{fallback}"


def scene_policy(scene: Scene) -> tuple[str, ProviderAccount | None]:
    """The scene's routing policy (its own, else its series') and the pinned account."""
    series = scene.episode.series
    if scene.routing_policy:
        return scene.routing_policy, scene.pinned_account
    return series.routing_policy, series.pinned_account


def scene_routes(
    *,
    scene: Scene,
    prompt: str | None = None,
    accounts: list[ProviderAccount] | None = None,
) -> SceneRoutes:
    """Quote the scene at every enabled account of its workspace and rank them."""
    workspace = scene.episode.series.workspace
    if accounts is None:
        accounts = accounts_enabled(workspace_id=workspace.pk)
    policy, pinned = scene_policy(scene)
    try:
        request, problems = scene_request(scene=scene, prompt=prompt), []
    except ValidationError as error:  # an unknown handle: every account says so
        request, problems = None, error.messages
    routes = engine.routes(
        request,
        accounts=accounts,
        policy=policy,
        pinned_account_id=pinned.pk if pinned else None,
        problems=problems,
    )
    return SceneRoutes(routes=routes, pinned=pinned)


def scenes_routes(
    scenes: list[Scene], *, series: Series, accounts: list[ProviderAccount]
) -> dict[int, SceneRoutes]:
    """scene_routes for many scenes of one series, in a constant number of queries: their
    requests read at once (scene_requests) and routed with one engine.RouteBook."""
    requests = scene_requests(scenes, series=series)
    found: dict[int, SceneRoutes] = {}
    with engine.RouteBook(accounts) as book:
        for scene in scenes:
            policy, pinned = scene_policy(scene)
            request = requests[scene.pk]
            problems = request.messages if isinstance(request, ValidationError) else []
            routes = book.routes(
                None if problems else request,
                policy=policy,
                pinned_account_id=pinned.pk if pinned else None,
                problems=problems,
            )
            found[scene.pk] = SceneRoutes(routes=routes, pinned=pinned)
    return found


def take_create(
    *,
    scene: Scene,
    account: ProviderAccount | None = None,
    created_by: AbstractBaseUser | None = None,
    prompt: str | None = None,
    routes: SceneRoutes | None = None,
) -> Take:
    """Route and compile the scene and, in one transaction, reserve its estimate and create
    its job and take (submitted on commit).

    Without an account the scene's routing policy picks one, and the job carries the
    other capable accounts, in order, to fall back to while its provider is down. An
    account chosen by hand is used as it is (the take waits for it if it is down).
    Raises ValidationError with plain reasons when nothing can make it or the budget
    has no room.
    """
    workspace_id = scene.episode.series.workspace_id
    if account is not None and (account.workspace_id != workspace_id or not account.enabled):
        raise ValidationError("That provider account is not available in this workspace.")
    if account is not None:
        quote = scene_compile(scene=scene, account=account, prompt=prompt)
        if quote.problems:
            raise ValidationError(quote.problems)
        policy = "manual"
        reason = f"Chosen by hand: {account.name} (about ${quote.estimate:.2f})."
        fallbacks: tuple[engine.Fallback, ...] = ()
    else:
        routes = routes or scene_routes(scene=scene, prompt=prompt)
        chosen = routes.routes.chosen
        if chosen is None:
            reasons = [f"{o.name}: {why}" for o, why in routes.ranking.excluded]
            raise ValidationError(
                ["No provider can make this scene as it stands.", *reasons]
                if reasons
                else ["No provider account is switched on in this workspace."]
            )
        quote, policy, reason = chosen, routes.policy, routes.ranking.reason
        fallbacks = routes.routes.fallbacks()
    return take_start(
        scene=scene,
        quote=quote,
        policy=policy,
        reason=reason,
        fallbacks=fallbacks,
        created_by=created_by,
    )


def take_start(
    *,
    scene: Scene,
    quote: engine.Quote,
    policy: str,
    reason: str,
    fallbacks: tuple[engine.Fallback, ...] = (),
    created_by: AbstractBaseUser | None = None,
    batch: GenerationBatch | None = None,
) -> Take:
    """In one transaction: reserve the quote's estimate (from the batch's hold, if any) and
    create its job and the scene's take. Raises ValidationError when the budget has no room."""
    try:
        with transaction.atomic():
            job = engine.start(
                quote,
                policy=policy,
                reason=reason,
                fallbacks=fallbacks,
                budget_scope=budget_scope_of(scene),
                hold=batch.hold_key if batch is not None else "",
            )
            take = Take.objects.create(scene=scene, job=job, created_by=created_by, batch=batch)
            _record_versions(take, quote)
            return take
    except engine.OverBudget as over:
        raise ValidationError(over.message, code=OVER_BUDGET) from None


def _record_versions(take: Take, quote: engine.Quote) -> None:
    """The take keeps the versions its request was made with, and its series is pinned to
    them where it had no pin yet."""
    request = quote.request
    wanted = [subject_version(m.subject) for m in request.cast] if request else []
    wanted = [w for w in wanted if w is not None]
    if not wanted:
        return
    match = Q()
    for character_id, number in wanted:
        match |= Q(character_id=character_id, number=number)
    versions = list(CharacterVersion.objects.filter(match))
    take.character_versions.set(versions)
    pin_versions(series=take.scene.episode.series, versions=versions)


def takes_create(
    scenes: Iterable[Scene], make: Callable[[Scene], Take]
) -> tuple[list[Take], list[tuple[Scene, ValidationError]]]:
    """One take per scene with `make` (e.g. take_create), all in one transaction, so that
    their jobs go to the workers together when it commits: a batch's first creates leave
    at once instead of one after each scene's own commit. A scene that is refused rolls
    back alone (take_create's own transaction is a savepoint here) and is returned with
    its reasons; the others still go.
    """
    made: list[Take] = []
    refused: list[tuple[Scene, ValidationError]] = []
    with transaction.atomic():
        for scene in scenes:
            try:
                made.append(make(scene))
            except ValidationError as error:
                refused.append((scene, error))
    return made, refused


def budget_scope_of(scene: Scene) -> str:
    """The budget besides the workspace's that the scene's takes count against."""
    return series_scope(scene.episode.series_id)


def take_derive(
    *,
    parent: Take,
    kind: str,
    prompt: str,
    seconds: int | None = None,
    created_by: AbstractBaseUser | None = None,
) -> Take:
    """A remix or extension of a finished take, at the provider that made it."""
    job = parent.job
    if job.state != JobState.SUCCEEDED:
        raise ValidationError("Only a finished take can be remixed or extended.")
    quote = engine.derive(job, kind=kind, prompt=prompt, seconds=seconds)
    if quote.problems:
        raise ValidationError(quote.problems)
    try:
        with transaction.atomic():
            new_job = engine.start(
                quote,
                policy="same",
                reason=f"{'A remix' if kind == 'remix' else 'An extension'} stays at the "
                "provider that made its source.",
                budget_scope=budget_scope_of(parent.scene),
            )
            take = Take.objects.create(
                scene=parent.scene, job=new_job, parent=parent, created_by=created_by
            )
            take.character_versions.set(parent.character_versions.all())
            return take
    except engine.OverBudget as over:
        raise ValidationError(over.message, code=OVER_BUDGET) from None


# Where in a span its stills are taken: near the start, the middle and near the end.
STILL_FRACTIONS = (0.15, 0.5, 0.85)


@dataclass
class CharacterFromTake:
    """What a span of a take gave a character: its clip, stills, and a registration job
    where the take's provider keeps characters."""

    clip: ReferenceAsset
    stills: list[ReferenceAsset]
    registration: Job | None


def character_from_take(
    *,
    take: Take,
    character: Character,
    start: float,
    end: float,
    created_by: AbstractBaseUser | None = None,
) -> CharacterFromTake:
    """Cut [start, end) of a finished take into the character's library, with stills from it.

    The clip and stills join the character's references, so it travels to every provider:
    saved where a provider keeps characters (the take's provider learns it from the span
    now: OpenAI from the clip, the relay by its own extract call on the finished task),
    as reference images and a clip where a provider keeps none (Seedance).
    """
    job = take.job
    if job.state != JobState.SUCCEEDED or not job.video:
        raise ValidationError("Only a finished take can become a character.")
    if character.workspace_id != take.scene.episode.series.workspace_id:
        raise ValidationError("The character must belong to this workspace.")
    low, high = engine.span_window(job.provider_account)
    if not (low <= end - start <= high):
        raise ValidationError(
            f"Choose a span of {low:g} to {high:g} seconds; this one lasts {end - start:.1f} s."
        )
    try:
        clip, pictures = engine.cut_span(job, start=start, end=end, stills_at=STILL_FRACTIONS)
    except ValueError as error:
        raise ValidationError(str(error)) from None
    asset = asset_add(
        character=character,
        upload=SimpleUploadedFile(f"take-{take.pk}-{start:g}-{end:g}.mp4", clip, "video/mp4"),
        label=f"from take {take.pk}",
        created_by=created_by,
    )
    stills = [
        asset_add(
            character=character,
            upload=SimpleUploadedFile(f"take-{take.pk}-still-{n}.jpg", picture, "image/jpeg"),
            label=f"still from take {take.pk} at {start + (end - start) * fraction:.1f} s",
            created_by=created_by,
        )
        for n, (picture, fraction) in enumerate(zip(pictures, STILL_FRACTIONS, strict=False), 1)
    ]
    # Registered from the span alone (its name, not its description, as it always was).
    member = engine.CastMember(
        subject=character_version_latest(character).subject,
        name=character.name,
        handle=character.handle,
        clips=(_as_engine_asset(asset),),
    )
    with transaction.atomic():
        registration = engine.register_from_job(
            job, member=member, budget_scope=budget_scope_of(take.scene)
        )
    return CharacterFromTake(clip=asset, stills=stills, registration=registration)


def take_retry(*, take: Take, created_by: AbstractBaseUser | None = None) -> Take:
    """A new take that sends a stopped take's request again, at the same provider account.

    The request as compiled then is re-sent unchanged (its prompt is kept); to change the
    prompt, edit the scene and generate.
    """
    job = take.job
    if job.state not in (JobState.FAILED, JobState.CANCELLED):
        raise ValidationError("Only a failed or cancelled take can be retried.")
    account = job.provider_account
    if not account.enabled:
        raise ValidationError(
            f"{account.name} is switched off; generate the scene with another provider."
        )
    try:
        with transaction.atomic():
            new_job = engine.retry(
                job, reason=f"A retry of take {take.pk}.", budget_scope=budget_scope_of(take.scene)
            )
            again = Take.objects.create(
                scene=take.scene, job=new_job, parent=take.parent, created_by=created_by
            )
            again.character_versions.set(take.character_versions.all())
            return again
    except engine.OverBudget as over:
        raise ValidationError(over.message, code=OVER_BUDGET) from None
