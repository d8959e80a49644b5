"""A scene's dialogue as text: one line a row, read into checked lines and saved as the
scene's DialogueLine rows (and written back as text for the form).

A row is `[timing] @handle: words`. The timing is optional: seconds into the scene, as
`[2.5]` or `[0:02.5]`. Without an @handle (`: words`) the line is a voice off screen.
Blank rows are skipped. Every mistake is reported with its row number, in plain words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from characters.models import Character
from characters.selectors import characters_resolve_handles
from jobs.compiled import Compiled
from studio.models import DialogueLine, Scene, Workspace

HELP_TEXT = (
    "One line a row: @mina: We launch at dawn. Start a row with [2.5] or [0:02.5] to say "
    "when it is said (seconds into the scene). A row with no @name, such as "
    "“: The sea remembers.”, is a voice off screen."
)
PLACEHOLDER = "@mina: We launch at dawn.\n[4] @ilse: Then we sleep now.\n: The sea remembers."

# The most lines a scene takes (a scene lasts seconds; more is a mistake, not a script).
MAX_LINES = 100
# Where kept rows wait while the lines are renumbered (no scene has that many lines).
_PARKED = 1_000_000
_TEXT_MAX = DialogueLine._meta.get_field("text").max_length

_TIMING_RE = re.compile(r"^\[([^\]]*)\]\s*")
_SECONDS_RE = re.compile(r"^\d+(?:\.\d+)?$")
_MINUTES_RE = re.compile(r"^(\d+):([0-5]?\d(?:\.\d+)?)$")
_SPEAKER_RE = re.compile(r"^@([A-Za-z0-9_]{2,40})\s*:(.*)$")
_OFF_SCREEN_RE = re.compile(r"^:(.*)$")


@dataclass(frozen=True)
class Line:
    """One row read and checked: who says it (None: a voice off screen), what and when."""

    row: int
    character: Character | None
    text: str
    start: float | None


@dataclass(frozen=True)
class _Row:
    row: int
    handle: str  # lowercased; "" off screen
    text: str
    start: float | None


def _seconds(timing: str) -> float | None:
    """Seconds from "2.5" or "0:02.5"; None when it is neither."""
    timing = timing.strip()
    if _SECONDS_RE.match(timing):
        return float(timing)
    if minutes := _MINUTES_RE.match(timing):
        return int(minutes.group(1)) * 60 + float(minutes.group(2))
    return None


def _seconds_text(seconds: float) -> str:
    return f"{seconds:g}"


def _read_row(number: int, row: str) -> tuple[_Row | None, str]:
    """The row's parts, or the reason it cannot be read."""
    start = None
    if timing := _TIMING_RE.match(row):
        start = _seconds(timing.group(1))
        if start is None:
            return None, (
                f"Line {number}: “[{timing.group(1)}]” is not a time; write seconds into the "
                "scene, such as [2.5], or minutes and seconds, such as [0:02.5]."
            )
        row = row[timing.end() :]
    if speaker := _SPEAKER_RE.match(row):
        handle, words = speaker.group(1).lower(), speaker.group(2).strip()
        who = f"@{handle}"
    elif off_screen := _OFF_SCREEN_RE.match(row):
        handle, words, who = "", off_screen.group(1).strip(), "The voice off screen"
    else:
        return None, (
            f"Line {number}: start with who speaks and a colon, such as “@mina: We launch at "
            "dawn.”, or a colon alone for a voice off screen."
        )
    if not words:
        return None, f"Line {number}: {who} says nothing; write the words after the colon."
    if len(words) > _TEXT_MAX:
        return None, (
            f"Line {number}: a line has at most {_TEXT_MAX} characters; this one has {len(words)}."
        )
    return _Row(number, handle, words, start), ""


def _timing_problems(rows: Sequence[_Row], duration: int) -> list[str]:
    """Lines that start at or after the scene's end, or before a line said earlier."""
    problems = []
    last: _Row | None = None
    for row in rows:
        if row.start is None:
            continue
        if row.start >= duration:
            where = "past" if row.start > duration else "at"
            problems.append(
                f"Line {row.row}: {_seconds_text(row.start)} s is {where} the scene's end "
                f"({duration} s)."
            )
        elif last is not None and last.start is not None and row.start < last.start:
            problems.append(
                f"Line {row.row}: it starts at {_seconds_text(row.start)} s, before line "
                f"{last.row} ({_seconds_text(last.start)} s); put the lines in the order "
                "they are said."
            )
        last = row
    return problems


def dialogue_parse(*, text: str, workspace: Workspace, duration: int) -> list[Line]:
    """The lines `text` holds, each speaker resolved in the workspace (its own characters,
    then those shared with it), or a ValidationError({"dialogue": [...]}) naming each bad
    row."""
    rows: list[_Row] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        row, problem = _read_row(number, raw.strip())
        if row is None:
            problems.append(problem)
        else:
            rows.append(row)
    if len(rows) > MAX_LINES:
        problems.append(f"A scene takes at most {MAX_LINES} lines; this one has {len(rows)}.")
    problems += _timing_problems(rows, duration)
    handles = list(dict.fromkeys(row.handle for row in rows if row.handle))
    resolution = characters_resolve_handles(workspace=workspace, handles=handles)
    for row in rows:
        if row.handle in resolution.unknown:
            problems.append(f"Line {row.row}: nobody is called @{row.handle} in this workspace.")
        elif row.handle in resolution.ambiguous:
            problems.append(
                f"Line {row.row}: @{row.handle} names characters shared from several "
                "workspaces; ask for one to be renamed."
            )
    if problems:
        problems.sort(key=_row_of)
        raise ValidationError({"dialogue": problems})
    return [
        Line(
            row.row, resolution.characters[row.handle] if row.handle else None, row.text, row.start
        )
        for row in rows
    ]


def _row_of(problem: str) -> int:
    """Problems in the order of their rows (the ones about the whole text last)."""
    match = re.match(r"Line (\d+):", problem)
    return int(match.group(1)) if match else math.inf


def dialogue_text(lines: Iterable[DialogueLine]) -> str:
    """The lines as the form shows them: the text dialogue_parse reads back to the same lines."""
    rows = []
    for line in lines:
        timing = f"[{_seconds_text(line.start)}] " if line.start is not None else ""
        who = f"@{line.character.handle}" if line.character_id else ""
        rows.append(f"{timing}{who}: {line.text}")
    return "\n".join(rows)


def scene_lines(scene: Scene) -> list[DialogueLine]:
    """The scene's dialogue in order, with each speaker (none for a scene not saved yet)."""
    if scene.pk is None:
        return []
    lines = _lines_of_scene(scene_id=scene.pk)
    for line in lines:
        line.scene = scene  # as scene.lines gives them
    return lines


# Every quote of a scene and every scene form reads it: compiled once per process.
_lines_of_scene = Compiled(
    lambda scene_id: (
        DialogueLine.objects.filter(scene_id=scene_id)
        .select_related("character")
        .order_by("position")
    )
)


def scene_dialogue_text(scene: Scene) -> str:
    """The scene's saved dialogue as text ("" for a scene not saved yet)."""
    return dialogue_text(scene_lines(scene))


def scene_dialogue_set(*, scene: Scene, text: str) -> list[DialogueLine]:
    """Make the scene's dialogue what `text` says, in one transaction (ValidationError
    naming each bad row, and nothing changed, when it cannot be read).

    A line kept as it was (same speaker and words) keeps its row, wherever it moves, and
    with it the readings already made of it: saving the dialogue again never pays for
    the same speech twice.
    """
    wanted = dialogue_parse(
        text=text, workspace=scene.episode.series.workspace, duration=scene.duration
    )
    with transaction.atomic():
        # One edit of a scene's dialogue at a time (positions are unique per scene).
        Scene.objects.select_for_update().filter(pk=scene.pk).first()
        existing: dict[tuple[int | None, str], list[DialogueLine]] = {}
        for line in scene.lines.order_by("position"):
            existing.setdefault((line.character_id, line.text), []).append(line)
        kept: list[DialogueLine] = []
        made: list[DialogueLine] = []
        for position, line in enumerate(wanted):
            key = (line.character.pk if line.character else None, line.text)
            same = existing.get(key)
            row = same.pop(0) if same else DialogueLine(scene=scene, text=line.text)
            row.character, row.position, row.start = line.character, position, line.start
            (kept if row.pk else made).append(row)
        gone = [row.pk for rows in existing.values() for row in rows]
        DialogueLine.objects.filter(pk__in=gone).delete()
        # Out of the way first, so no two rows hold one position between the updates.
        _park(kept)
        DialogueLine.objects.bulk_update(kept, ["character", "position", "start"])
        DialogueLine.objects.bulk_create(made)
    return sorted([*kept, *made], key=lambda row: row.position)


def scene_save_with_dialogue(
    *, save: Callable[[], Scene], text: str | None, workspace: Workspace, duration: int
) -> Scene:
    """Save a scene (`save` calls a scene service) and its dialogue together, or neither.

    The dialogue is read before the scene is saved, so a refusal names the prompt's
    problems and the dialogue's at once (one ValidationError, by field). `text` None
    leaves the scene's lines as they are; `duration` is the scene's length once saved.
    """
    unread = None
    if text is not None:
        try:
            dialogue_parse(text=text, workspace=workspace, duration=duration)
        except ValidationError as error:
            unread = error
    try:
        with transaction.atomic():
            scene = save()
            if unread is not None:
                raise unread
            if text is not None:
                scene_dialogue_set(scene=scene, text=text)
    except ValidationError as error:
        if unread is None or error is unread:
            raise
        problems: dict = {}
        error.update_error_dict(problems)
        unread.update_error_dict(problems)
        raise ValidationError(problems) from None
    return scene


def _park(rows: list[DialogueLine]) -> None:
    """Move rows to positions no line holds (far past any real one), each its own."""
    parked = [DialogueLine(pk=row.pk, position=_PARKED + n) for n, row in enumerate(rows)]
    DialogueLine.objects.bulk_update(parked, ["position"])
