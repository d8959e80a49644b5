"""Scoring a stored take against its characters' pinned versions, and flagging drift."""

from __future__ import annotations

import io
import logging
import uuid
from datetime import timedelta
from functools import partial

import pyvips
from celery import current_app
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image

from characters.models import CharacterVersion, ReferenceAsset
from jobs.models import JobState
from jobs.requests import VIDEO
from studio.consistency.frames import VideoFrames
from studio.consistency.scoring import (
    AXES,
    CharacterReference,
    CharacterResult,
    ScoreResult,
    ScoringError,
    get_scorer,
)
from studio.models import CharacterScore, Take, TakeScore

log = logging.getLogger(__name__)

# Reference pictures are read at most this large: enough for a face descriptor, and a
# 40-megapixel upload is never decoded whole (libvips shrinks while it decodes).
REFERENCE_SIDE = 1024
# A reference clip gives this many pictures (spread over it).
CLIP_PICTURES = 3


def take_score(*, take_id: int, worker: str = "") -> TakeScore | None:
    """Score a finished take once: claim it, run the scorer, store each character's axes and
    worst frames, and flag the take when an axis falls below its workspace's threshold.

    Returns quietly (None) when the take is gone, not finished, already scored, or being
    scored by another worker whose claim has not lapsed.
    """
    take = (
        Take.objects.select_related("job__provider_account", "scene__episode__series__workspace")
        .filter(pk=take_id)
        .first()
    )
    if take is None or take.job.state != JobState.SUCCEEDED or not take.job.video:
        return None
    score = _claim(take, worker or uuid.uuid4().hex[:12])
    if score is None:
        return None
    versions = list(take.character_versions.select_related("character").prefetch_related("assets"))
    if not versions:
        return _finish(score, state=TakeScore.State.SKIPPED, message="The take shows no character.")
    references = [_reference(version) for version in versions]
    if not any(reference.images for reference in references):
        return _finish(
            score,
            state=TakeScore.State.SKIPPED,
            message="Its characters have no reference pictures to compare with.",
        )
    try:
        with take.job.video.open("rb") as video:
            result = get_scorer().score(video, references)
    except ScoringError as error:
        return _finish(score, state=TakeScore.State.FAILED, message=str(error))
    _store(score, take, versions, result)
    return score


def _claim(take: Take, worker: str) -> TakeScore | None:
    """The take's score row, claimed for this worker (a conditional UPDATE), or None."""
    score, _ = TakeScore.objects.get_or_create(take=take)
    now = timezone.now()
    lapsed = now - timedelta(seconds=settings.CONSISTENCY_LEASE_SECONDS)
    claimed = (
        TakeScore.objects.filter(pk=score.pk, state=TakeScore.State.PENDING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=lapsed))
        .update(claimed_by=worker, claimed_at=now)
    )
    if not claimed:
        return None
    score.refresh_from_db()
    return score


def _finish(score: TakeScore, *, state: str, message: str) -> TakeScore:
    score.state, score.message, score.scored_at = state, message, timezone.now()
    score.save(update_fields=["state", "message", "scored_at"])
    return score


def _reference(version: CharacterVersion) -> CharacterReference:
    """The version's pictures: its images, and a few frames of each of its clips."""
    images: list[Image.Image] = []
    assets = sorted(version.assets.all(), key=lambda a: (a.created_at, a.pk))
    for asset in assets:
        try:
            if asset.kind == ReferenceAsset.Kind.IMAGE:
                images.append(_picture(asset))
            else:
                images.extend(_clip_pictures(asset))
        except (OSError, ValueError, pyvips.Error) as error:  # a file gone from storage
            log.warning("Reference %s of %s unreadable: %s", asset.pk, version, error)
    return CharacterReference(
        key=version.subject, name=version.character.name, images=tuple(images)
    )


def _picture(asset: ReferenceAsset) -> Image.Image:
    with asset.file.open("rb") as stored:
        data = stored.read()
    shrunk = pyvips.Image.thumbnail_buffer(data, REFERENCE_SIDE, height=REFERENCE_SIDE)
    if shrunk.bands == 4:
        shrunk = shrunk.flatten()
    elif shrunk.bands == 1:
        shrunk = shrunk.colourspace("srgb")
    png = shrunk.write_to_buffer(".png")
    return Image.open(io.BytesIO(png)).convert("RGB")


def _clip_pictures(asset: ReferenceAsset) -> list[Image.Image]:
    seconds = asset.duration_seconds or 1.0
    with (
        asset.file.open("rb") as stored,
        VideoFrames(
            stored, interval=max(0.1, seconds / CLIP_PICTURES), limit=CLIP_PICTURES, max_width=768
        ) as frames,
    ):
        return [sample.image for sample in frames]


def _method(take: Take, subject: str) -> str:
    """How the character travelled to the provider that made the take."""
    job = take.job
    if job.provider_account.capabilities.native_characters:
        return CharacterScore.Method.NATIVE
    try:
        fit = job.job_request.fit
    except ValueError:
        return CharacterScore.Method.NONE
    kinds = {r.asset.kind for r in fit.references if r.subject == subject}
    if VIDEO in kinds:
        return CharacterScore.Method.CLIP
    if kinds:
        return CharacterScore.Method.IMAGES
    return CharacterScore.Method.NONE


def _store(
    score: TakeScore, take: Take, versions: list[CharacterVersion], result: ScoreResult
) -> None:
    by_key = {version.subject: version for version in versions}
    threshold = take.scene.episode.series.workspace.drift_threshold
    saved_files: list[str] = []
    reasons: list[dict] = []
    rows: list[CharacterScore] = []
    for character in result.characters:
        version = by_key.get(character.key)
        if version is None:
            continue
        worst = _store_worst(take, character, saved_files)
        rows.append(
            CharacterScore(
                take_score=score,
                character=version.character,
                version=version,
                method=_method(take, character.key),
                face=_rounded(character.face),
                clothing=_rounded(character.clothing),
                style=_rounded(character.style),
                persistence=round(character.persistence, 3),
                frames=[
                    [
                        round(f.seconds, 2),
                        _rounded(f.face),
                        _rounded(f.clothing),
                        _rounded(f.style),
                        f.recognised,
                    ]
                    for f in character.frames
                ],
                worst=worst,
                notes=list(character.notes),
            )
        )
        for axis in AXES:
            value = getattr(character, axis)
            if value is not None and value < threshold:
                reasons.append(
                    {"axis": axis, "score": _rounded(value), "character": version.character.name}
                )
    reasons.sort(key=lambda r: (AXES.index(r["axis"]), r["score"]))

    def worst_of(axis: str) -> float | None:
        values = [getattr(row, axis) for row in rows if getattr(row, axis) is not None]
        return min(values) if values else None

    try:
        with transaction.atomic():
            old = list(CharacterScore.objects.filter(take_score=score))
            CharacterScore.objects.filter(take_score=score).delete()
            CharacterScore.objects.bulk_create(rows)
            score.state = TakeScore.State.SCORED
            score.scorer = result.scorer[:120]
            score.face, score.clothing, score.style = (worst_of(a) for a in AXES)
            score.persistence = min((row.persistence for row in rows), default=None)
            score.threshold = threshold
            score.flagged = bool(reasons)
            score.flag_reasons = reasons
            score.frames_sampled = result.frames_sampled
            score.video_seconds = result.video_seconds
            score.cpu_seconds = round(result.cpu_seconds, 3)
            score.message = ""
            score.scored_at = timezone.now()
            score.save()
    except Exception:
        for name in saved_files:
            default_storage.delete(name)
        raise
    for row in old:
        for frame in row.worst:
            default_storage.delete(frame["image"])


def _store_worst(take: Take, character: CharacterResult, saved: list[str]) -> list[dict]:
    workspace_id = take.job.workspace_id
    frames = []
    for n, frame in enumerate(character.worst):
        name = default_storage.save(
            f"workspaces/{workspace_id}/scores/take-{take.pk}-{frame.axis}-{n}.jpg",
            ContentFile(frame.jpeg),
        )
        saved.append(name)
        frames.append(
            {
                "axis": frame.axis,
                "seconds": round(frame.seconds, 2),
                "score": _rounded(frame.score),
                "image": name,
            }
        )
    return frames


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def takes_to_score(*, limit: int = 50) -> list[int]:
    """Takes whose video has been stored a while but that have no score yet (the message that
    asks for it was lost), or whose scoring claim lapsed: the sweep sends them again."""
    now = timezone.now()
    settled = now - timedelta(seconds=settings.CONSISTENCY_SWEEP_AFTER_SECONDS)
    lapsed = now - timedelta(seconds=settings.CONSISTENCY_LEASE_SECONDS)
    unscored = Take.objects.filter(
        job__state=JobState.SUCCEEDED, job__finished_at__lt=settled, score__isnull=True
    )
    stalled = Take.objects.filter(
        score__state=TakeScore.State.PENDING, score__created_at__lt=settled
    ).filter(Q(score__claimed_at__isnull=True) | Q(score__claimed_at__lt=lapsed))
    ids = list(unscored.order_by("pk").values_list("pk", flat=True)[:limit])
    ids += list(stalled.order_by("pk").values_list("pk", flat=True)[: limit - len(ids)])
    return ids


# By name: the studio's tasks import this module.
SCORE_AGAIN_TASK = "studio.tasks.score_take_by_id"


def take_score_again(*, take: Take) -> bool:
    """Put the take's score back to pending (claim cleared, flag withdrawn) and send it to the
    scorer once committed. False when a worker is scoring it right now."""
    lapsed = timezone.now() - timedelta(seconds=settings.CONSISTENCY_LEASE_SECONDS)
    with transaction.atomic():
        score, _ = TakeScore.objects.select_for_update().get_or_create(take=take)
        if (
            score.state == TakeScore.State.PENDING
            and score.claimed_at
            and score.claimed_at > lapsed
        ):
            return False
        TakeScore.objects.filter(pk=score.pk).update(
            state=TakeScore.State.PENDING,
            claimed_by="",
            claimed_at=None,
            flagged=False,
            flag_reasons=[],
            message="",
            scored_at=None,
        )
        transaction.on_commit(partial(current_app.send_task, SCORE_AGAIN_TASK, (take.pk,)))
    return True
