"""Readings: a line of dialogue spoken in its speaker's voice, by a speech job.

A reading is made once for a line's words in a voice and then serves every cut: asking
again while the words and the voice are the same finds the reading already made (or still
being made) instead of paying twice. Speech jobs follow the engine's rules like video
jobs: quoted, reserved in the ledger against the budgets, claimed by one worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from characters.models import CharacterVersion
from characters.voice_checks import sample_content_type
from jobs import engine
from jobs.models import JobState
from studio.generation import cast_member
from studio.models import DialogueLine, LineReading

_KEY_MAX = LineReading._meta.get_field("voice_key").max_length
# A reading whose job ended so is of no use; any other (waiting, running, done) is.
_UNUSABLE = (JobState.FAILED, JobState.CANCELLED)


def speaker_version(
    line: DialogueLine, versions: Mapping[int, CharacterVersion]
) -> CharacterVersion | None:
    """The version of the line's speaker the series is made with (`versions`, by character
    id, as studio.generation.series_versions gives them); None for a voice off screen."""
    if not line.character_id:
        return None
    return versions.get(line.character_id)


def voice_key(version: CharacterVersion) -> str:
    """What the version's voice is: it changes when the account, the provider's voice or
    the sample does, so a reading in one voice is never taken for another."""
    if version.voice_sample:
        key = f"{version.voice_account_id}:sample:{version.voice_sample.name}"
    else:
        key = f"{version.voice_account_id}:voice:{version.voice_id}"
    if len(key) > _KEY_MAX:
        key = f"{version.voice_account_id}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return key


def reading_for(line: DialogueLine, version: CharacterVersion) -> LineReading | None:
    """The newest reading of the line's words in the version's voice that can still be used:
    finished, or on its way (a job waiting or running counts, so it is not paid twice)."""
    return (
        LineReading.objects.filter(line=line, text=line.text, voice_key=voice_key(version))
        .exclude(job__state__in=_UNUSABLE)
        .select_related("job")
        .order_by("-created_at", "-pk")
        .first()
    )


def speech_request(line: DialogueLine, version: CharacterVersion) -> engine.JobRequest:
    """The line's words, spoken by the version's character in its voice."""
    character = version.character
    sample = None
    if version.voice_sample:
        sample = engine.Asset(
            file=version.voice_sample.name,
            kind=engine.AUDIO,
            content_type=sample_content_type(version.voice_sample.name),
        )
    return engine.JobRequest(
        kind=engine.SPEECH,
        prompt=line.text,
        seconds=0,
        size="",
        cast=(cast_member(version),),
        voice=engine.Voice(
            subject=version.voice_subject,
            name=version.voice_name or character.name,
            voice_id=version.voice_id,
            sample=sample,
        ),
    )


def _voice_problem(line: DialogueLine, version: CharacterVersion) -> str:
    """Why the version cannot speak the line, in plain words ("" when it can)."""
    name = version.character.name
    if not version.has_voice:
        return f"{name} has no voice yet: choose one on {name}'s page."
    account = version.voice_account
    if account.workspace_id != line.scene.episode.series.workspace_id:
        return (
            f"{name}'s voice is at an account of the workspace that shares {name}; "
            "its lines cannot be dubbed here."
        )
    if not account.enabled:
        return (
            f"{account.name} is switched off, so {name} cannot speak: switch it on, or "
            f"choose another voice on {name}'s page."
        )
    return ""


def speech_quote(line: DialogueLine, version: CharacterVersion) -> engine.Quote:
    """The line's reading at the version's voice account: as it would travel, its price,
    and why it cannot go (ValidationError when the version has no voice to speak in)."""
    problem = _voice_problem(line, version)
    if problem:
        raise ValidationError(problem)
    return engine.quote(speech_request(line, version), version.voice_account)


def reading_start(
    *,
    line: DialogueLine,
    version: CharacterVersion,
    user: AbstractBaseUser | None = None,
    budget_scope: str = "",
) -> LineReading:
    """The line's reading in the version's voice: the one already made or on its way, else
    a new speech job (its estimate reserved against the budgets) and its reading, created
    together. Raises engine.OverBudget, creating nothing, when a budget has no room, and
    ValidationError in plain words when the voice cannot speak the line.

    `user` is who asked (the engine's jobs record no one; kept for the callers' sake).
    """
    found = reading_for(line, version)
    if found is not None:
        return found
    quote = speech_quote(line, version)
    if quote.problems:
        raise ValidationError(quote.problems)
    with transaction.atomic():
        # One reading of a line at a time: two dubbing passes at once make one job.
        DialogueLine.objects.select_for_update().filter(pk=line.pk).first()
        found = reading_for(line, version)
        if found is not None:
            return found
        job = engine.start(
            quote, policy="pinned", reason="The character's voice.", budget_scope=budget_scope
        )
        return LineReading.objects.create(
            line=line, job=job, text=line.text, voice_key=voice_key(version)
        )
