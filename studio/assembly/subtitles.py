"""Sidecar text tracks for the cut: subtitles as WebVTT and SRT, chapters as WebVTT.

Cue text is user input: a blank line would end a cue early in both formats, so line
breaks inside a cue are kept but empty lines dropped; in WebVTT `&`, `<` and `>` are
escaped (the speaker becomes a voice span, `<v Mina Okafor>`), so no text can open a
tag or fake a timing line. SRT has no escaping: its players show the text as it is, with
the speaker's name before the words.
"""

from __future__ import annotations

from collections.abc import Iterable

from studio.assembly.plan import Chapter, Cue

__all__ = ["chapters_vtt", "srt", "webvtt"]


def webvtt(cues: Iterable[Cue]) -> str:
    """The cues as a WebVTT file (`<track kind="subtitles">`)."""
    blocks = ["WEBVTT"]
    for number, cue in enumerate(cues, start=1):
        text = _vtt_escape(_lines(cue.text))
        if cue.speaker:
            text = f"<v {_vtt_escape(_one_line(cue.speaker))}>{text}</v>"
        blocks.append(
            f"{number}\n{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n{text}"
        )
    return "\n\n".join(blocks) + "\n"


def srt(cues: Iterable[Cue]) -> str:
    """The cues as a SubRip (.srt) file."""
    blocks = []
    for number, cue in enumerate(cues, start=1):
        text = _lines(cue.text)
        if cue.speaker:
            text = f"{_one_line(cue.speaker)}: {text}"
        blocks.append(
            f"{number}\n{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}\n{text}"
        )
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def chapters_vtt(chapters: Iterable[Chapter]) -> str:
    """The chapters as a WebVTT file (`<track kind="chapters">`): one cue per scene."""
    blocks = ["WEBVTT"]
    for chapter in chapters:
        start, end = _timestamp(chapter.start, "."), _timestamp(chapter.end, ".")
        title = _vtt_escape(_one_line(chapter.title)) or f"Scene {chapter.number}"
        blocks.append(f"scene-{chapter.number}\n{start} --> {end}\n{title}")
    return "\n\n".join(blocks) + "\n"


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    whole, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{separator}{millis:03d}"


def _lines(text: str) -> str:
    """The text's non-blank lines, trimmed (a blank line would end the cue)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.strip() for line in lines if line.strip())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
