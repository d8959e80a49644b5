"""Turning scenes into takes: compile a scene for a provider, price it, and create its job."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from characters.mentions import MENTION_RE
from characters.models import Character, ReferenceAsset
from characters.services import asset_add
from jobs import breaker, ledger, media, prices, routing
from jobs import services as jobs
from jobs.models import Job, JobKind, JobState, ProviderAccount, Registration
from jobs.providers import provider_for
from jobs.providers.base import Capabilities, GenerationRequest, Reference
from jobs.signing import public_file_url
from studio.models import RoutingPolicy, Scene, Take, series_scope
from studio.services import scene_resolve_mentions


def subject_of(character: Character) -> str:
    return f"character:{character.pk}"


@dataclass
class CompiledScene:
    request: dict
    estimate: Decimal
    problems: list[str] = field(default_factory=list)
    # Set where the characters travel as references (a provider without saved characters).
    degraded_note: str = ""


def _fitting_clip(character: Character, window: tuple[float, float] | None):
    low, high = window or (0.0, float("inf"))
    for asset in character.assets.all():
        if asset.kind == ReferenceAsset.Kind.CLIP and low <= (asset.duration_seconds or 0) <= high:
            return asset
    return None


def _as_references(
    characters: list[Character], caps: Capabilities, label: str
) -> tuple[list[dict], list[str], str]:
    """Characters as reference images (and clips) within the provider's limits.

    Returns (references, problems, a note for the take). Each character gets an equal
    share of the images the provider takes, its first ones (the library's order), and
    a clip where the provider takes clips and one fits.
    """
    if not characters:
        return [], [], ""
    share = caps.max_references // len(characters) if caps.max_references else 0
    references: list[dict] = []
    problems: list[str] = []
    clips = 0
    for character in characters:
        subject = subject_of(character)
        images = [a for a in character.assets.all() if a.kind == ReferenceAsset.Kind.IMAGE]
        chosen = [{"asset": a, "kind": "image"} for a in images[:share]]
        if clips < caps.max_reference_clips:
            clip = _fitting_clip(character, caps.reference_clip_seconds)
            if clip is not None:
                chosen.append({"asset": clip, "kind": "video"})
                clips += 1
        if not chosen:
            problems.append(
                f"{label} has no saved characters, so it needs a reference image of "
                f"{character.name} (@{character.handle}); add one in the character library."
                if share
                else f"{label} takes too few references for {len(characters)} characters."
            )
        for item in chosen:
            asset = item["asset"]
            references.append(
                {
                    "file": asset.file.name,
                    "kind": item["kind"],
                    "content_type": asset.content_type,
                    "subject": subject,
                    "name": character.handle,
                }
            )
    images = sum(1 for r in references if r["kind"] == "image")
    parts = [f"{images} reference image{'s' if images != 1 else ''}"]
    if clips:
        parts.append(f"{clips} clip{'s' if clips != 1 else ''}")
    names = ", ".join(c.name for c in characters)
    note = (
        f"{names} travel{'s' if len(characters) == 1 else ''} as {' and '.join(parts)}: "
        f"{label} has no saved characters, so consistency rests on the references."
    )
    return references, problems, note


def _clip_for(character: Character, window: tuple[float, float] | None) -> ReferenceAsset | None:
    """The character's clip that best fits the provider's window (a longer one gets cut)."""
    clips = [a for a in character.assets.all() if a.kind == ReferenceAsset.Kind.CLIP]
    if not clips:
        return None
    if window:
        low, high = window
        fitting = [c for c in clips if low <= (c.duration_seconds or 0) <= high]
        if fitting:
            return fitting[0]
        longer = [c for c in clips if (c.duration_seconds or 0) > high]
        if longer:
            return longer[0]
        return None
    return clips[0]


def scene_compile(
    *, scene: Scene, account: ProviderAccount, prompt: str | None = None
) -> CompiledScene:
    """The request this scene becomes at this provider, its price, and why it cannot go (if so)."""
    series = scene.episode.series
    prompt = scene.prompt if prompt is None else prompt
    characters = scene_resolve_mentions(workspace=series.workspace, prompt=prompt)
    by_handle = {c.handle: c for c in characters}
    template = MENTION_RE.sub(
        lambda m: (
            f"{{{{{subject_of(by_handle[m.group(1).lower()])}}}}}"
            if m.group(1).lower() in by_handle
            else m.group(0)
        ),
        prompt,
    )
    if series.style_guide.strip():
        template = f"{template}\n\nStyle: {series.style_guide.strip()}"
    provider = provider_for(account)
    try:
        caps = provider.capabilities
        if not caps.native_characters:
            references, problems, note = _as_references(characters, caps, provider.label)
            problems = (
                provider.validate(
                    GenerationRequest(
                        prompt=template,
                        seconds=scene.duration,
                        size=scene.size,
                        references=tuple(
                            Reference(kind=r["kind"], url=public_file_url(r["file"]))
                            for r in references
                        ),
                    )
                )
                + problems
            )
            request = {
                "kind": JobKind.GENERATE,
                "prompt": template,
                "seconds": scene.duration,
                "size": scene.size,
                "characters": [
                    {
                        "subject": subject_of(c),
                        "name": c.name,
                        "handle": c.handle,
                        "as_references": True,
                    }
                    for c in characters
                ],
                "references": references,
            }
            estimate = prices.estimate(account, provider, seconds=scene.duration, size=scene.size)
            return CompiledScene(request, estimate, problems, degraded_note=note)
        problems = provider.validate(
            GenerationRequest(
                prompt=template,
                seconds=scene.duration,
                size=scene.size,
                character_ids=tuple(subject_of(c) for c in characters),
            )
        )
        registered = set(
            Registration.objects.filter(
                provider_account=account,
                status=Registration.Status.ACTIVE,
                subject__in=[subject_of(c) for c in characters],
            ).values_list("subject", flat=True)
        )
        snapshot, to_register = [], 0
        for character in characters:
            entry = {
                "subject": subject_of(character),
                "name": character.name,
                "handle": character.handle,
                "description": character.description,
            }
            # The clip travels even when the character is registered already: if the
            # provider has lost it by the time the take is sent, it registers it again.
            clip = _clip_for(character, caps.character_clip_seconds)
            if clip is not None:
                entry["clip"] = clip.file.name
                entry["clip_seconds"] = clip.duration_seconds
            if entry["subject"] not in registered:
                if clip is None and caps.native_characters:
                    low, high = caps.character_clip_seconds or (1, 30)
                    problems.append(
                        f"{character.name} (@{character.handle}) has no reference clip of at least "
                        f"{low:g} s; {provider.label} makes characters from a "
                        f"{low:g}-{high:g} s clip. "
                        "Add one in the character library."
                    )
                elif clip is not None:
                    to_register += 1
            snapshot.append(entry)
        request = {
            "kind": JobKind.GENERATE,
            "prompt": template,
            "seconds": scene.duration,
            "size": scene.size,
            "characters": snapshot,
        }
        estimate = prices.estimate(
            account,
            provider,
            seconds=scene.duration,
            size=scene.size,
            characters_to_register=to_register,
        )
    finally:
        provider.close()
    return CompiledScene(request=request, estimate=estimate, problems=problems)


@dataclass
class SceneRoutes:
    """Every enabled account's answer for a scene, ranked by the scene's routing policy."""

    policy: str
    pinned: ProviderAccount | None
    accounts: list[ProviderAccount]
    compiled: dict[int, CompiledScene]
    ranking: routing.Ranking
    breakers: dict[int, breaker.BreakerState]

    @property
    def chosen(self) -> ProviderAccount | None:
        option = self.ranking.chosen
        return None if option is None else self._account(option.account_id)

    def _account(self, account_id: int) -> ProviderAccount:
        return next(a for a in self.accounts if a.pk == account_id)

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
    """Compile the scene for every enabled account of its workspace and rank them."""
    workspace = scene.episode.series.workspace
    if accounts is None:
        accounts = list(workspace.provider_accounts.filter(enabled=True).order_by("name", "pk"))
    policy, pinned = scene_policy(scene)
    compiled, options = {}, []
    health = routing.health_of(a.pk for a in accounts) if policy == RoutingPolicy.STABILITY else {}
    breakers = {a.pk: breaker.state(a.pk) for a in accounts}
    for account in accounts:
        try:
            result = scene_compile(scene=scene, account=account, prompt=prompt)
        except ValidationError as error:
            result = CompiledScene(request={}, estimate=Decimal("0"), problems=error.messages)
        compiled[account.pk] = result
        options.append(
            routing.Option(
                account_id=account.pk,
                name=account.name,
                estimate=result.estimate,
                native_characters=account.capabilities.native_characters,
                problems=tuple(result.problems),
                health=health.get(account.pk, routing.Health()),
                breaker_open=breakers[account.pk].is_open,
            )
        )
    try:
        mentions = bool(_mentioned(scene, prompt))
    except ValidationError:  # an unknown handle: every account already says so
        mentions = False
    ranking = routing.rank(
        options,
        policy=policy,
        mentions_characters=mentions,
        pinned_account_id=pinned.pk if pinned else None,
    )
    return SceneRoutes(policy, pinned, accounts, compiled, ranking, breakers)


def _mentioned(scene: Scene, prompt: str | None) -> list[Character]:
    series = scene.episode.series
    text = scene.prompt if prompt is None else prompt
    return scene_resolve_mentions(workspace=series.workspace, prompt=text)


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
        compiled = scene_compile(scene=scene, account=account, prompt=prompt)
        if compiled.problems:
            raise ValidationError(compiled.problems)
        record = {
            "policy": "manual",
            "reason": f"Chosen by hand: {account.name} (about ${compiled.estimate:.2f}).",
            "degraded": bool(compiled.degraded_note),
            "degraded_note": compiled.degraded_note,
            "fallbacks": [],
        }
        request = compiled.request
    else:
        routes = routes or scene_routes(scene=scene, prompt=prompt)
        if routes.chosen is None:
            reasons = [f"{o.name}: {why}" for o, why in routes.ranking.excluded]
            raise ValidationError(
                ["No provider can make this scene as it stands.", *reasons]
                if reasons
                else ["No provider account is switched on in this workspace."]
            )
        account = routes.chosen
        compiled = routes.compiled[account.pk]
        record = {
            "policy": routes.policy,
            "reason": routes.ranking.reason,
            "degraded": bool(compiled.degraded_note),
            "degraded_note": compiled.degraded_note,
            "fallbacks": [],
        }
        request = {
            **compiled.request,
            "fallbacks": [
                {
                    "account_id": option.account_id,
                    "estimate": str(routes.compiled[option.account_id].estimate),
                    "request": routes.compiled[option.account_id].request,
                    "degraded": bool(routes.compiled[option.account_id].degraded_note),
                    "degraded_note": routes.compiled[option.account_id].degraded_note,
                }
                for option in routes.ranking.ordered[1:]
            ],
        }
    try:
        with transaction.atomic():
            job = jobs.job_create(
                workspace=account.workspace,
                account=account,
                request=request,
                cost_estimate=compiled.estimate,
                routing=record,
                budget_scope=budget_scope_of(scene),
            )
            return Take.objects.create(scene=scene, job=job, created_by=created_by)
    except ledger.OverBudget as over:
        raise ValidationError(over.message) from None


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
    provider = provider_for(job.provider_account)
    try:
        caps = provider.capabilities
        if kind == JobKind.REMIX and not caps.remix:
            raise ValidationError(f"{provider.label} cannot remix videos.")
        if kind == JobKind.EXTEND and not caps.extend_seconds:
            raise ValidationError(f"{provider.label} cannot extend videos.")
        # Remix: the source's length. Extend: the length of the segment to add.
        length = seconds if seconds is not None else int(job.request.get("seconds", 0))
        request = {
            "kind": kind,
            "prompt": prompt,
            "seconds": length,
            "size": job.request.get("size", ""),
            "characters": [],
            "source_provider_job_id": job.provider_job_id,
        }
        problems = provider.validate(
            GenerationRequest(prompt=prompt, seconds=length, size=request["size"], kind=kind)
        )
        if problems:
            raise ValidationError(problems)
        estimate = prices.estimate(
            job.provider_account, provider, seconds=length, size=request["size"]
        )
    finally:
        provider.close()
    try:
        with transaction.atomic():
            new_job = jobs.job_create(
                workspace=job.workspace,
                account=job.provider_account,
                request=request,
                kind=kind,
                cost_estimate=estimate,
                routing={
                    "policy": "same",
                    "reason": f"A {kind} stays at the provider that made its source.",
                    "fallbacks": [],
                },
                budget_scope=budget_scope_of(parent.scene),
            )
            return Take.objects.create(
                scene=parent.scene, job=new_job, parent=parent, created_by=created_by
            )
    except ledger.OverBudget as over:
        raise ValidationError(over.message) from None


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
    caps = job.provider_account.capabilities
    if caps.native_characters:
        window = caps.character_clip_seconds or (1.0, 30.0)
    else:  # the span becomes a reference clip: the provider's window for those
        window = caps.reference_clip_seconds or (1.0, float(settings.REFERENCE_CLIP_MAX_SECONDS))
    uses_extract = caps.native_characters and caps.character_from_job and bool(job.provider_job_id)
    low, high = window
    if not (low <= end - start <= high):
        raise ValidationError(
            f"Choose a span of {low:g} to {high:g} seconds; this one lasts {end - start:.1f} s."
        )
    with tempfile.TemporaryDirectory(prefix="castboard-cut-") as folder:
        path = Path(folder) / "take.mp4"
        with default_storage.open(job.video.name, "rb") as stored, path.open("wb") as out:
            for chunk in stored.chunks():
                out.write(chunk)
        try:
            clip = media.cut_clip(path, start=start, end=end)
            cut = Path(folder) / "cut.mp4"
            cut.write_bytes(clip)
            pictures = media.stills(cut, list(STILL_FRACTIONS))
        except (ValueError, media.ResultUnusable) as error:
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
    if not caps.native_characters:
        return CharacterFromTake(clip=asset, stills=stills, registration=None)
    source = {"subject": subject_of(character), "name": character.name}
    if uses_extract:
        source["from_provider_job_id"] = job.provider_job_id
    else:
        source |= {"clip": asset.file.name, "clip_seconds": asset.duration_seconds}
    with transaction.atomic():
        registration_job = jobs.job_create(
            workspace=job.workspace,
            account=job.provider_account,
            request={"kind": JobKind.REGISTER_CHARACTER, "character": source},
            kind=JobKind.REGISTER_CHARACTER,
            budget_scope=budget_scope_of(take.scene),
        )
    return CharacterFromTake(clip=asset, stills=stills, registration=registration_job)


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
    record = {**job.routing, "fallbacks": [], "reason": f"A retry of take {take.pk}."}
    try:
        with transaction.atomic():
            new_job = jobs.job_create(
                workspace=job.workspace,
                account=account,
                request=job.request,
                kind=job.kind,
                cost_estimate=job.cost_estimate,
                routing=record,
                budget_scope=job.budget_scope or budget_scope_of(take.scene),
            )
            return Take.objects.create(
                scene=take.scene, job=new_job, parent=take.parent, created_by=created_by
            )
    except ledger.OverBudget as over:
        raise ValidationError(over.message) from None
