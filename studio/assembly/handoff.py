"""The handoff to an editor: the cut as an OpenTimelineIO timeline, its FCP 7 XML and CMX 3600
EDL renderings (the OTIO adapters), and a zip of media, subtitles and timeline.

The timeline references the take files by their names in the zip (SceneClip.media_name),
so the unzipped folder opens as it is. Every time is at the cut's frame rate:

* "Video": the title card (a gap named for it), each scene's clip with the part of the
  take the cut uses (a crossfade is an SMPTE dissolve centred on the cut, its halves
  taken from the neighbouring takes' handles), a marker at each scene's start, the end card;
* "Takes audio": the same clips for the takes' own sound (a gap where a take has none);
* "Dialogue" (and "Dialogue 2", ... where lines overlap): each dubbed line's file at its cue.

An EDL holds one video track and names its sources by reel: each scene's reel is
"SCN" and its number ("SCN003"), and the EDL is written from the video track alone.
"""

from __future__ import annotations

import copy
import shutil
import unicodedata
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import opentimelineio as otio

from studio.assembly.media import AssemblyError
from studio.assembly.plan import Layout, Plan, SceneClip, Speech

__all__ = ["media_files", "package", "reel_name", "timeline", "timeline_files"]

# Already compressed: stored as they are in the zip (deflating them gains nothing).
STORED_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".mp3", ".m4a", ".aac", ".ogg", ".opus",
     ".flac", ".wav", ".jpg", ".jpeg", ".png", ".webp", ".gif", ".zip"}
)  # fmt: skip
COPY_CHUNK = 1 << 20
EDL_TITLE_LENGTH = 70  # the longest TITLE line CMX 3600 readers take
# Typography with a plain ASCII stand-in (the rest of what ASCII lacks is dropped).
_PUNCTUATION = str.maketrans({"—": "-", "–": "-", "‘": "'", "’": "'", "“": '"', "”": '"',
                              "…": "...", "\u00a0": " "})  # fmt: skip


def reel_name(number: int) -> str:
    """A scene's reel in the EDL: at most 8 characters, as CMX 3600 allows."""
    return f"SCN{number:03d}"[:8]


def timeline(plan: Plan, layout: Layout, *, name: str) -> otio.schema.Timeline:
    """The cut as an OTIO timeline: scenes in order with their source ranges (see module)."""
    fps = layout.fps
    fade = layout.crossfade_frames
    fade_in, fade_out = fade // 2, fade - fade // 2
    last = len(plan.scenes) - 1
    result = otio.schema.Timeline(name=name or "Episode")
    result.metadata["castboard"] = {"duration": layout.duration, "fps": fps}
    video = otio.schema.Track(name="Video", kind=otio.schema.TrackKind.Video)
    sound = otio.schema.Track(name="Takes audio", kind=otio.schema.TrackKind.Audio)

    for track in (video, sound):
        if layout.title_frames:
            track.append(_card(plan.title_card, "Title card", layout.title_frames, fps))
    for index, scene in enumerate(plan.scenes):
        frames = layout.scene_frames[index]
        first = fade_in if index > 0 else 0
        end = frames - (fade_out if index < last else 0)
        if index > 0 and fade:
            for track in (video, sound):
                track.append(_dissolve(fade_in, fade_out, fps))
        clip = _scene_clip(scene, layout, index, first, end, fps)
        video.append(clip)
        if layout.has_audio[index]:
            sound.append(_scene_clip(scene, layout, index, first, end, fps, marker=False))
        else:
            silence = otio.schema.Gap(
                name=f"{scene.title} (no sound)", source_range=_range(first, end - first, fps)
            )
            sound.append(silence)
    for track in (video, sound):
        if layout.end_frames:
            track.append(_card(plan.end_card, "End card", layout.end_frames, fps))
    result.tracks.append(video)
    result.tracks.append(sound)
    for number, lines in enumerate(_dialogue_lanes(layout.speech, fps), start=1):
        result.tracks.append(_dialogue_track(lines, fps, number))
    return result


def _range(start: int, duration: int, fps: int) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(
        otio.opentime.RationalTime(start, fps), otio.opentime.RationalTime(duration, fps)
    )


def _card(text: str, label: str, frames: int, fps: int) -> otio.schema.Gap:
    gap = otio.schema.Gap(name=label, source_range=_range(0, frames, fps))
    gap.metadata["castboard"] = {"card": label, "text": text}
    return gap


def _dissolve(fade_in: int, fade_out: int, fps: int) -> otio.schema.Transition:
    return otio.schema.Transition(
        name="Crossfade",
        transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
        in_offset=otio.opentime.RationalTime(fade_in, fps),
        out_offset=otio.opentime.RationalTime(fade_out, fps),
    )


def _scene_clip(
    scene: SceneClip,
    layout: Layout,
    index: int,
    first: int,
    end: int,
    fps: int,
    *,
    marker: bool = True,
) -> otio.schema.Clip:
    take_frames = max(layout.scene_frames[index], round(layout.take_seconds[index] * fps))
    reference = otio.schema.ExternalReference(
        target_url=scene.media_name, available_range=_range(0, take_frames, fps)
    )
    reference.name = PurePosixPath(scene.media_name).name
    clip = otio.schema.Clip(
        name=scene.title or f"Scene {scene.number}",
        media_reference=reference,
        source_range=_range(first, end - first, fps),
    )
    clip.metadata["castboard"] = {
        "scene": scene.number,
        "media_name": scene.media_name,
        "source_url": scene.source_url,
    }
    clip.metadata["cmx_3600"] = {"reel": reel_name(scene.number)}
    if marker:
        clip.markers.append(
            otio.schema.Marker(
                name=scene.title or f"Scene {scene.number}",
                marked_range=_range(first, 0, fps),
                color=otio.schema.MarkerColor.BLUE,
                metadata={"castboard": {"scene": scene.number}},
            )
        )
    return clip


def _dialogue_lanes(speech: tuple[Speech, ...], fps: int) -> list[list[tuple[int, int, Speech]]]:
    """The dubbed lines in frames, spread over as few tracks as keep them from overlapping."""
    lanes: list[list[tuple[int, int, Speech]]] = []
    for item in speech:
        first, end = round(item.start * fps), round(item.end * fps)
        if end <= first:
            continue
        for lane in lanes:
            if lane[-1][1] <= first:
                lane.append((first, end, item))
                break
        else:
            lanes.append([(first, end, item)])
    return lanes


def _dialogue_track(
    lines: list[tuple[int, int, Speech]], fps: int, number: int
) -> otio.schema.Track:
    track = otio.schema.Track(
        name="Dialogue" if number == 1 else f"Dialogue {number}", kind=otio.schema.TrackKind.Audio
    )
    at = 0
    for first, end, item in lines:
        if first > at:
            track.append(otio.schema.Gap(source_range=_range(0, first - at, fps)))
        file_frames = max(end - first, round(item.seconds * fps))
        reference = otio.schema.ExternalReference(
            target_url=item.media_name, available_range=_range(0, file_frames, fps)
        )
        reference.name = PurePosixPath(item.media_name).name
        label = f"{item.speaker}: {item.text}" if item.speaker else item.text
        clip = otio.schema.Clip(
            name=_short(label) or f"Line {item.line + 1}",
            media_reference=reference,
            source_range=_range(0, end - first, fps),
        )
        clip.metadata["castboard"] = {"line": item.line, "text": item.text, "speaker": item.speaker}
        track.append(clip)
        at = end
    return track


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def timeline_files(tl: otio.schema.Timeline) -> dict[str, bytes]:
    """The timeline as OTIO JSON, FCP 7 XML and a CMX 3600 EDL (of its video track)."""
    rate = tl.metadata.get("castboard", {}).get("fps") or tl.duration().rate
    edl = otio.adapters.write_to_string(_edl_timeline(tl), "cmx_3600", rate=rate)
    return {
        "episode.otio": otio.adapters.write_to_string(tl, "otio_json").encode(),
        "episode.xml": otio.adapters.write_to_string(tl, "fcp_xml").encode(),
        "episode.edl": edl.encode("ascii", errors="replace"),
    }


def media_files(plan: Plan, layout: Layout) -> dict[str, Path]:
    """The files the timeline references, by their names in it: {media_name: local path}.

    What a package needs besides the cut and its sidecars (a take used twice is listed once).
    """
    files = {scene.media_name: Path(scene.path) for scene in plan.scenes}
    files.update({item.media_name: item.audio for item in layout.speech})
    return files


def _edl_timeline(tl: otio.schema.Timeline) -> otio.schema.Timeline:
    """A copy with the video track alone and plain ASCII names, as CMX 3600 readers expect."""
    edl = copy.deepcopy(tl)
    for track in list(edl.tracks):
        if track.kind != otio.schema.TrackKind.Video:
            edl.tracks.remove(track)
    edl.name = _ascii(edl.name)[:EDL_TITLE_LENGTH] or "Episode"
    for item in edl.tracks[0]:
        item.name = _ascii(item.name)
        for marker in getattr(item, "markers", ()):
            marker.name = _ascii(marker.name)
    return edl


def _ascii(text: str) -> str:
    text = text.translate(_PUNCTUATION)
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(plain.split())


def package(zip_path: Path, files: Mapping[str, Path | bytes]) -> None:
    """Write a zip of `files` ({name in the zip: a file's path or its bytes}), file by file.

    A path is copied through in chunks, never read whole; media (by suffix) is stored as
    it is, text is deflated. Names are relative POSIX paths; AssemblyError otherwise. The
    partial zip is removed on any error.
    """
    zip_path = Path(zip_path)
    names = {name: _zip_name(name) for name in files}
    if len(set(names.values())) != len(names):
        raise AssemblyError("Two files in the package have the same name.")
    try:
        with zipfile.ZipFile(zip_path, "w", allowZip64=True) as archive:
            for name, content in files.items():
                arcname = names[name]
                method = (
                    zipfile.ZIP_STORED
                    if PurePosixPath(arcname).suffix.lower() in STORED_SUFFIXES
                    else zipfile.ZIP_DEFLATED
                )
                if isinstance(content, bytes | bytearray | memoryview):
                    archive.writestr(arcname, bytes(content), compress_type=method)
                    continue
                source = Path(content)
                info = zipfile.ZipInfo.from_file(source, arcname)
                info.compress_type = method
                with source.open("rb") as reader, archive.open(info, "w") as writer:
                    shutil.copyfileobj(reader, writer, COPY_CHUNK)
    except FileNotFoundError as error:
        zip_path.unlink(missing_ok=True)
        raise AssemblyError(f"A file for the package is missing: {error.filename}.") from error
    except BaseException:
        zip_path.unlink(missing_ok=True)
        raise


def _zip_name(name: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    if not name or path.is_absolute() or ".." in path.parts or str(path) in ("", "."):
        raise AssemblyError(f"{name!r} is not a name a file can have in the package.")
    return str(path)
