"""Turning scenes into takes: compile a scene for a provider, price it, and create its job."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from characters.mentions import MENTION_RE
from characters.models import Character, ReferenceAsset
from characters.services import asset_add
from jobs import media
from jobs import services as jobs
from jobs.models import Job, JobKind, JobState, ProviderAccount, Registration
from jobs.providers import provider_for
from jobs.providers.base import GenerationRequest
from studio.models import Scene, Take
from studio.services import scene_resolve_mentions


def subject_of(character: Character) -> str:
    return f"character:{character.pk}"


@dataclass
class CompiledScene:
    request: dict
    estimate: Decimal
    problems: list[str] = field(default_factory=list)


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
            if entry["subject"] not in registered:
                clip = _clip_for(character, caps.character_clip_seconds)
                if clip is None and caps.native_characters:
                    low, high = caps.character_clip_seconds or (1, 30)
                    problems.append(
                        f"{character.name} (@{character.handle}) has no reference clip of at least "
                        f"{low:g} s; {provider.label} makes characters from a "
                        f"{low:g}-{high:g} s clip. "
                        "Add one in the character library."
                    )
                elif clip is not None:
                    entry["clip"] = clip.file.name
                    entry["clip_seconds"] = clip.duration_seconds
                    to_register += 1
            snapshot.append(entry)
        request = {
            "kind": JobKind.GENERATE,
            "prompt": template,
            "seconds": scene.duration,
            "size": scene.size,
            "characters": snapshot,
        }
        estimate = provider.estimate(seconds=scene.duration, characters_to_register=to_register)
    finally:
        provider.close()
    return CompiledScene(request=request, estimate=estimate, problems=problems)


def take_create(
    *,
    scene: Scene,
    account: ProviderAccount,
    created_by: AbstractBaseUser | None = None,
    prompt: str | None = None,
) -> Take:
    """Compile the scene and, in one transaction, create its job and take (submitted on commit)."""
    if account.workspace_id != scene.episode.series.workspace_id or not account.enabled:
        raise ValidationError("That provider account is not available in this workspace.")
    compiled = scene_compile(scene=scene, account=account, prompt=prompt)
    if compiled.problems:
        raise ValidationError(compiled.problems)
    with transaction.atomic():
        job = jobs.job_create(
            workspace=account.workspace,
            account=account,
            request=compiled.request,
            cost_estimate=compiled.estimate,
        )
        return Take.objects.create(scene=scene, job=job, created_by=created_by)


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
        estimate = provider.estimate(seconds=length)
    finally:
        provider.close()
    with transaction.atomic():
        new_job = jobs.job_create(
            workspace=job.workspace,
            account=job.provider_account,
            request=request,
            kind=kind,
            cost_estimate=estimate,
        )
        return Take.objects.create(
            scene=parent.scene, job=new_job, parent=parent, created_by=created_by
        )


def character_from_take(
    *,
    take: Take,
    character: Character,
    start: float,
    end: float,
    created_by: AbstractBaseUser | None = None,
) -> tuple[ReferenceAsset, Job]:
    """Cut [start, end) of a finished take into the character's library and register it there.

    The cut joins the character's references; the take's provider learns the
    character from it (OpenAI: the cut as the character's clip; the relay: its own
    extract call on the finished task).
    """
    job = take.job
    if job.state != JobState.SUCCEEDED or not job.video:
        raise ValidationError("Only a finished take can become a character.")
    if character.workspace_id != take.scene.episode.series.workspace_id:
        raise ValidationError("The character must belong to this workspace.")
    provider = provider_for(job.provider_account)
    try:
        window = provider.capabilities.character_clip_seconds or (1.0, 30.0)
        uses_extract = provider.capabilities.character_from_job and bool(job.provider_job_id)
    finally:
        provider.close()
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
        except ValueError as error:
            raise ValidationError(str(error)) from None
    asset = asset_add(
        character=character,
        upload=SimpleUploadedFile(f"take-{take.pk}-{start:g}-{end:g}.mp4", clip, "video/mp4"),
        label=f"from take {take.pk}",
        created_by=created_by,
    )
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
        )
    return asset, registration_job


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
    with transaction.atomic():
        new_job = jobs.job_create(
            workspace=job.workspace,
            account=account,
            request=job.request,
            kind=job.kind,
            cost_estimate=job.cost_estimate,
        )
        return Take.objects.create(
            scene=take.scene, job=new_job, parent=take.parent, created_by=created_by
        )
