"""Episode assembly: the selected takes cut into one MP4 with cards, crossfades, dubbed lines
and subtitles, plus its sidecars (WebVTT, SRT, chapters, contact sheet) and the editor's
handoff (OpenTimelineIO, FCP 7 XML, CMX 3600 EDL, a zip). Pure media code: no Django.

    cut = layout(plan)            # where everything falls; cheap
    render(plan, out_path)        # the MP4, streamed frame by frame
"""

from studio.assembly.handoff import media_files, package, timeline, timeline_files
from studio.assembly.media import AssemblyError
from studio.assembly.plan import (
    Chapter,
    Cue,
    Layout,
    LineIn,
    Plan,
    SceneClip,
    Speech,
    layout,
    probe,
)
from studio.assembly.render import render
from studio.assembly.sheet import contact_sheet
from studio.assembly.subtitles import chapters_vtt, srt, webvtt

__all__ = [
    "AssemblyError",
    "Chapter",
    "Cue",
    "Layout",
    "LineIn",
    "Plan",
    "SceneClip",
    "Speech",
    "chapters_vtt",
    "contact_sheet",
    "layout",
    "media_files",
    "package",
    "probe",
    "render",
    "srt",
    "timeline",
    "timeline_files",
    "webvtt",
]
