"""The worker's side of a cut: claim it, copy its takes and speech out of storage, render it
(studio.assembly), and store the video with its subtitles, chapters, contact sheet, timelines
and handoff zip through the storage backend.

The worker claims a RENDERING cut with a conditional UPDATE (claimed_by, claimed_at) and
renews the claim with every progress write, so a second delivery of the message does
nothing, and a worker whose claim was taken over (its lease lapsed) stops at its next write,
keeping nothing.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from jobs.models import JobState
from studio import assembly, webhooks
from studio.cuts import CARD_SECONDS, FPS, CutOptions, card_texts
from studio.models import Cut, LineReading

log = logging.getLogger(__name__)

# How often the worker writes its progress (and so renews its claim): at most once a second,
# and only when it moved by this many percent.
PROGRESS_STEP = 2
PROGRESS_SECONDS = 1.0
# Of the worker's progress: the takes copied by here, the MP4 rendered by RENDERED.
COPIED, RENDERED = 3, 92
COPY_CHUNK = 1 << 20

# What each stored file of a cut is called, by the field that holds it.
FILES = {
    "video": "video.mp4",
    "subtitles_vtt": "subtitles.vtt",
    "subtitles_srt": "subtitles.srt",
    "chapters_vtt": "chapters.vtt",
    "contact_sheet": "contact-sheet.jpg",
    "timeline_otio": "episode.otio",
    "timeline_fcpxml": "episode.xml",
    "timeline_edl": "episode.edl",
    "package": "handoff.zip",
}
INTERNAL_ERROR = (
    "The cut could not be assembled because of a problem on our side (it has been logged). "
    "Assembling again may work; speech already made is not paid for twice."
)


class _ClaimLost(Exception):
    """Another worker took the cut over (this one's lease lapsed): stop, keep nothing."""


def _claim(cut_id: int, worker: str) -> Cut | None:
    now = timezone.now()
    lapsed = now - timedelta(seconds=settings.CUTS_LEASE_SECONDS)
    claimed = (
        Cut.objects.filter(pk=cut_id, state=Cut.State.RENDERING)
        .filter(Q(claimed_by="") | Q(claimed_at__isnull=True) | Q(claimed_at__lt=lapsed))
        .update(claimed_by=worker, claimed_at=now, progress=0, message="")
    )
    if not claimed:
        return None
    return Cut.objects.select_related("episode__series").get(pk=cut_id)


class _Progress:
    """Writes the cut's progress now and then (at most every PROGRESS_SECONDS, in steps of
    PROGRESS_STEP percent), renewing the claim each time; _ClaimLost if it was taken over."""

    def __init__(self, cut: Cut, worker: str) -> None:
        self.cut, self.worker = cut, worker
        self.percent, self.written_at = 0, 0.0

    def __call__(self, percent: float, *, force: bool = False) -> None:
        percent = max(0, min(100, int(percent)))
        now = time.monotonic()
        if not force and (
            percent - self.percent < PROGRESS_STEP or now - self.written_at < PROGRESS_SECONDS
        ):
            return
        renewed = Cut.objects.filter(
            pk=self.cut.pk, state=Cut.State.RENDERING, claimed_by=self.worker
        ).update(progress=percent, claimed_at=timezone.now())
        if not renewed:
            raise _ClaimLost
        self.percent, self.written_at = max(self.percent, percent), now

    def beat(self) -> None:
        """Renew the claim (between long steps that report no progress of their own)."""
        self(self.percent, force=True)

    def rendering(self, fraction: float) -> None:
        self(COPIED + (RENDERED - COPIED) * fraction)


def cut_assemble(*, cut_id: int, worker: str = "") -> Cut | None:
    """Assemble a claimed cut: copy its takes and speech out of storage, render the MP4 with
    its subtitles, chapters, contact sheet, timelines and handoff zip, and store them all.

    Returns quietly (None) when the cut is gone, not waiting for assembly, or claimed by a
    worker whose lease has not lapsed. A problem with the takes or lines fails the cut with
    a plain message; nothing it stored is kept.
    """
    worker = worker or uuid.uuid4().hex[:12]
    cut = _claim(cut_id, worker)
    if cut is None:
        return None
    saved: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix=f"cut-{cut.pk}-") as folder:
            _assemble(cut, Path(folder), _Progress(cut, worker), saved)
    except _ClaimLost:
        _delete(saved)
        return None
    except assembly.AssemblyError as error:
        _fail(cut, worker, str(error), saved)
    except Exception:
        log.exception("Cut %s could not be assembled.", cut.pk)
        _fail(cut, worker, INTERNAL_ERROR, saved)
    cut.refresh_from_db()
    return cut


def _assemble(cut: Cut, folder: Path, progress: _Progress, saved: list[str]) -> None:
    manifest = cut.manifest
    options = CutOptions.from_dict(cut.options)
    clips = []
    for scene in manifest["scenes"]:
        clips.append(_copy_take(scene, folder))
        progress.beat()  # a take from remote storage may take a while
    lines, unspoken = _lines_in(manifest, folder)
    progress(COPIED, force=True)
    width, height = (int(side) for side in cut.options.get("size", "1280x720").split("x"))
    title, end = card_texts(cut.episode, options)
    plan = assembly.Plan(
        scenes=tuple(clips),
        lines=tuple(lines),
        width=width,
        height=height,
        fps=int(cut.options.get("fps", FPS)),
        crossfade=options.crossfade,
        title_card=title,
        end_card=end,
        card_seconds=CARD_SECONDS,
        burn_subtitles=options.burn_subtitles,
    )
    video = folder / "episode.mp4"
    layout = assembly.render(plan, video, progress=progress.rendering)
    progress(RENDERED, force=True)

    episode = cut.episode
    name = f"{episode.series.title}, episode {episode.number}: {episode.title} (cut {cut.number})"
    texts = {
        "subtitles_vtt": assembly.webvtt(layout.cues).encode(),
        "subtitles_srt": assembly.srt(layout.cues).encode(),
        "chapters_vtt": assembly.chapters_vtt(layout.chapters).encode(),
        "contact_sheet": assembly.contact_sheet(video, layout.chapters),
    }
    timelines = assembly.timeline_files(assembly.timeline(plan, layout, name=name))
    texts |= {
        "timeline_otio": timelines["episode.otio"],
        "timeline_fcpxml": timelines["episode.xml"],
        "timeline_edl": timelines["episode.edl"],
    }
    package = folder / FILES["package"]
    assembly.package(
        package,
        {
            **{clip.media_name: clip.path for clip in clips},
            **{line.media_name: line.audio for line in lines if line.audio is not None},
            "episode.mp4": video,
            "episode.vtt": texts["subtitles_vtt"],
            "episode.srt": texts["subtitles_srt"],
            "chapters.vtt": texts["chapters_vtt"],
            "contact-sheet.jpg": texts["contact_sheet"],
            **timelines,
        },
    )
    progress(RENDERED + (100 - RENDERED) // 2, force=True)

    stored = {"video": _store(cut, "video", video, saved)}
    progress.beat()
    for field_name, content in texts.items():
        stored[field_name] = _store(cut, field_name, content, saved)
    stored["package"] = _store(cut, "package", package, saved)
    done = Cut.objects.filter(
        pk=cut.pk, state=Cut.State.RENDERING, claimed_by=progress.worker
    ).update(
        state=Cut.State.DONE,
        progress=100,
        duration=layout.duration,
        manifest={**manifest, "layout": layout.to_dict()},
        message=" ".join(unspoken),
        finished_at=timezone.now(),
        **stored,
    )
    if not done:
        raise _ClaimLost
    webhooks.cut_event(cut_id=cut.pk, event_type="cut.ready")


def _copy_take(scene: dict, folder: Path) -> assembly.SceneClip:
    """The scene's take copied out of storage in chunks (storage may be remote)."""
    media_name = f"media/scene-{scene['number']:02d}-take-{scene['take']}.mp4"
    path = folder / media_name
    number = scene["number"]
    _copy_stored(scene["video"], path, missing=f"Scene {number}'s take is missing its video file.")
    title = f"{number}. {scene['title']}" if scene["title"] else f"Scene {number}"
    return assembly.SceneClip(path=path, title=title, number=number, media_name=media_name)


def _copy_stored(name: str, path: Path, *, missing: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with default_storage.open(name, "rb") as source, path.open("wb") as target:
            shutil.copyfileobj(source, target, COPY_CHUNK)
    except (FileNotFoundError, ValueError) as error:
        raise assembly.AssemblyError(missing) from error


def _lines_in(manifest: dict, folder: Path) -> tuple[list[assembly.LineIn], list[str]]:
    """The cut's lines, each with its speech where it was dubbed, and a sentence for each line
    whose speech could not be made (assembled without it)."""
    ids = [line["reading"] for line in manifest["lines"] if line.get("reading")]
    readings = {
        reading.pk: reading
        for reading in LineReading.objects.filter(pk__in=ids).select_related(
            "job__provider_account"
        )
    }
    lines, unspoken = [], []
    scene_numbers = [scene["number"] for scene in manifest["scenes"]]
    for n, line in enumerate(manifest["lines"]):
        audio, media_name = None, ""
        reading = readings.get(line.get("reading"))
        number = scene_numbers[line["scene_index"]]
        if reading is not None:
            job = reading.job
            if job.state == JobState.SUCCEEDED and job.audio:
                suffix = PurePosixPath(job.audio.name).suffix or ".mp3"
                media_name = f"audio/scene-{number:02d}-line-{n + 1:02d}{suffix}"
                audio = folder / media_name
                _copy_stored(
                    job.audio.name, audio, missing=f"Scene {number}'s line has lost its speech."
                )
            else:
                why = job.error_message or job.get_state_display().lower()
                unspoken.append(
                    f"Scene {number}'s line “{_short(line['text'])}” has no speech "
                    f"({job.provider_account.name}: {why}); its subtitle is in the cut. "
                    "Assembling again asks for it again."
                )
        lines.append(
            assembly.LineIn(
                scene_index=line["scene_index"],
                text=line["text"],
                speaker=line["speaker"],
                start=line["start"],
                audio=audio,
                media_name=media_name,
            )
        )
    return lines, unspoken


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _store(cut: Cut, field_name: str, content: Path | bytes, saved: list[str]) -> str:
    """Save one of the cut's files through the storage backend; its stored name."""
    stored = getattr(cut, field_name)
    if isinstance(content, bytes):
        stored.save(FILES[field_name], ContentFile(content), save=False)
    else:
        with content.open("rb") as handle:
            stored.save(FILES[field_name], File(handle), save=False)
    saved.append(stored.name)
    return stored.name


def _delete(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError as error:  # the cut is already failed or taken over: only log it
            log.warning("Could not delete %s: %s", name, error)


def _fail(cut: Cut, worker: str, message: str, saved: list[str]) -> None:
    _delete(saved)
    failed = Cut.objects.filter(pk=cut.pk, state=Cut.State.RENDERING, claimed_by=worker).update(
        state=Cut.State.FAILED, message=message, finished_at=timezone.now()
    )
    if failed:
        webhooks.cut_event(cut_id=cut.pk, event_type="cut.failed")
