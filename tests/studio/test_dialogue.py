"""A scene's dialogue as text: each syntax read, each mistake named by its row, the lines
saved in one go (keeping the rows, and their readings, of lines that stay), and the lines
travelling to the engine with the scene's request."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from characters.models import CharacterShare
from characters.services import asset_add
from jobs.requests import Line
from studio.dialogue import dialogue_parse, dialogue_text, scene_dialogue_set
from studio.generation import scene_request, take_create
from studio.models import DialogueLine, LineReading
from studio.services import scene_duplicate
from tests.factories import (
    CharacterFactory,
    EpisodeFactory,
    SceneFactory,
    SeriesFactory,
    WorkspaceFactory,
)
from tests.jobs.factories import JobFactory, ProviderAccountFactory
from tests.samples import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def mina(workspace):
    return CharacterFactory(workspace=workspace, name="Mina", handle="mina")


@pytest.fixture
def ilse(workspace):
    return CharacterFactory(workspace=workspace, name="Ilse", handle="ilse")


@pytest.fixture
def scene(workspace):
    series = SeriesFactory(workspace=workspace)
    return SceneFactory(episode=EpisodeFactory(series=series), prompt="A grey sea.", duration=8)


def _problems(text: str, workspace, duration: int = 8) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        dialogue_parse(text=text, workspace=workspace, duration=duration)
    return refused.value.message_dict["dialogue"]


# --- Reading each syntax ---------------------------------------------------------------


def test_it_reads_a_speaker_and_their_words(workspace, mina):
    (line,) = dialogue_parse(text="@mina: We launch at dawn.", workspace=workspace, duration=8)
    assert (line.character, line.text, line.start) == (mina, "We launch at dawn.", None)


def test_it_reads_a_handle_in_any_case_and_spaces_around_the_colon(workspace, mina):
    (line,) = dialogue_parse(text="  @Mina :  Hold on.  ", workspace=workspace, duration=8)
    assert (line.character, line.text) == (mina, "Hold on.")


@pytest.mark.parametrize(
    ("timing", "seconds"),
    [("[2.5]", 2.5), ("[0:02.5]", 2.5), ("[1]", 1.0), ("[0:07]", 7.0), ("[ 3 ]", 3.0)],
)
def test_it_reads_a_timing_in_seconds_or_minutes_and_seconds(workspace, mina, timing, seconds):
    (line,) = dialogue_parse(text=f"{timing} @mina: Now.", workspace=workspace, duration=8)
    assert line.start == seconds


def test_a_row_without_a_speaker_is_a_voice_off_screen(workspace):
    (line,) = dialogue_parse(text="[1] : The sea remembers.", workspace=workspace, duration=8)
    assert (line.character, line.text, line.start) == (None, "The sea remembers.", 1.0)


def test_blank_rows_are_skipped_and_rows_keep_their_numbers(workspace, mina, ilse):
    lines = dialogue_parse(text="@mina: One.\n\n   \n@ilse: Two.", workspace=workspace, duration=8)
    assert [(line.row, line.character, line.text) for line in lines] == [
        (1, mina, "One."),
        (4, ilse, "Two."),
    ]


def test_a_character_shared_with_the_workspace_may_speak(workspace):
    elsewhere = CharacterFactory(workspace=WorkspaceFactory(), handle="pip", name="Pip")
    CharacterShare.objects.create(
        character=elsewhere, workspace=workspace, status=CharacterShare.Status.ACCEPTED
    )
    (line,) = dialogue_parse(text="@pip: Ahoy.", workspace=workspace, duration=8)
    assert line.character == elsewhere


def test_the_words_may_hold_a_colon_and_a_mention(workspace, mina):
    (line,) = dialogue_parse(text="@mina: Listen: @ilse knows.", workspace=workspace, duration=8)
    assert line.text == "Listen: @ilse knows."


def test_an_empty_text_is_no_dialogue(workspace):
    assert dialogue_parse(text="\n  \n", workspace=workspace, duration=8) == []


# --- Each mistake, in plain words with its row ------------------------------------------


def test_an_unknown_speaker_is_named_with_its_row(workspace, mina):
    problems = _problems("@mina: Hello.\n\n@minna: Hello back.", workspace)
    assert problems == ["Line 3: nobody is called @minna in this workspace."]


def test_a_character_of_another_workspace_is_unknown_here(workspace):
    CharacterFactory(workspace=WorkspaceFactory(), handle="pip")
    assert _problems("@pip: Ahoy.", workspace) == [
        "Line 1: nobody is called @pip in this workspace."
    ]


def test_a_line_past_the_scenes_end_says_both_times(workspace, mina):
    problems = _problems("@mina: Go.\n[14] @mina: Late.", workspace, duration=8)
    assert problems == ["Line 2: 14 s is past the scene's end (8 s)."]


def test_a_line_at_the_scenes_end_is_refused(workspace, mina):
    assert _problems("[0:08] @mina: Late.", workspace, duration=8) == [
        "Line 1: 8 s is at the scene's end (8 s)."
    ]


def test_a_timing_that_is_not_a_time_is_refused(workspace, mina):
    (problem,) = _problems("[soon] @mina: Go.", workspace)
    assert problem.startswith("Line 1: “[soon]” is not a time;")
    assert "[2.5]" in problem
    assert "[0:02.5]" in problem


def test_a_row_without_a_colon_says_how_to_write_one(workspace, mina):
    (problem,) = _problems("@mina: Go.\nmina says go", workspace)
    assert problem.startswith("Line 2: start with who speaks and a colon")


def test_a_speaker_with_no_words_is_refused(workspace, mina):
    assert _problems("@mina:   ", workspace) == [
        "Line 1: @mina says nothing; write the words after the colon."
    ]
    assert _problems(":", workspace) == [
        "Line 1: The voice off screen says nothing; write the words after the colon."
    ]


def test_lines_timed_out_of_order_are_refused(workspace, mina, ilse):
    problems = _problems("[5] @mina: First.\n[2] @ilse: Second.", workspace)
    assert problems == [
        "Line 2: it starts at 2 s, before line 1 (5 s); put the lines in the order they are said."
    ]


def test_a_line_too_long_says_its_length(workspace, mina):
    (problem,) = _problems(f"@mina: {'a' * 1001}", workspace)
    assert problem == "Line 1: a line has at most 1000 characters; this one has 1001."


def test_every_problem_is_listed_in_row_order(workspace, mina):
    problems = _problems("@ghost: Boo.\n@mina: Fine.\n[99] @mina: Late.\nno colon", workspace)
    assert [p.split(":")[0] for p in problems] == ["Line 1", "Line 3", "Line 4"]


# --- Saving ------------------------------------------------------------------------------


def test_saving_replaces_the_scenes_lines_in_order(scene, mina):
    scene_dialogue_set(scene=scene, text="@mina: One.\n: Two.")
    scene_dialogue_set(scene=scene, text="[1] : Zero.\n@mina: One.\n[6] @mina: Three.")
    rows = list(scene.lines.order_by("position"))
    assert [(r.position, r.character, r.text, r.start) for r in rows] == [
        (0, None, "Zero.", 1.0),
        (1, mina, "One.", None),
        (2, mina, "Three.", 6.0),
    ]


def test_a_kept_line_keeps_its_row_and_its_readings_wherever_it_moves(scene, mina):
    (first,) = scene_dialogue_set(scene=scene, text="@mina: We launch at dawn.")
    account = ProviderAccountFactory(workspace=scene.episode.series.workspace)
    reading = LineReading.objects.create(
        line=first, job=JobFactory(provider_account=account), text=first.text, voice_key="v"
    )
    scene_dialogue_set(scene=scene, text=": Morning.\n[2] @mina: We launch at dawn.")
    moved = DialogueLine.objects.get(pk=first.pk)
    assert (moved.position, moved.start) == (1, 2.0)
    assert list(moved.readings.all()) == [reading]


def test_a_refused_dialogue_changes_nothing(scene, mina):
    scene_dialogue_set(scene=scene, text="@mina: Kept.")
    with pytest.raises(ValidationError):
        scene_dialogue_set(scene=scene, text="@mina: New.\n@ghost: Boo.")
    assert [line.text for line in scene.lines.all()] == ["Kept."]


def test_the_saved_lines_read_back_as_the_text_that_makes_them(scene, mina):
    text = "[2.5] @mina: We launch at dawn.\n: The sea remembers.\n[7] @mina: Go."
    lines = scene_dialogue_set(scene=scene, text=text)
    assert dialogue_text(lines) == text


# --- The request the scene makes --------------------------------------------------------


def test_the_request_carries_the_lines_with_their_speakers_versions(scene, mina):
    scene.prompt = "@mina on the pier."
    scene.save()
    scene_dialogue_set(scene=scene, text="[1.5] @mina: We launch at dawn.\n: Gulls cry.")
    request = scene_request(scene=scene)
    assert [(line.subject, line.text, line.start) for line in request.dialogue] == [
        (f"character:{mina.pk}", "We launch at dawn.", 1.5),
        ("", "Gulls cry.", None),
    ]


def test_a_speaker_the_prompt_does_not_name_joins_the_cast(scene, mina, ilse):
    scene.prompt = "@mina on the pier."
    scene.save()
    scene_dialogue_set(scene=scene, text="@ilse: Over here!")
    request = scene_request(scene=scene)
    assert [member.name for member in request.cast] == ["Mina", "Ilse"]
    assert request.dialogue[0].subject == request.cast[1].subject


def test_a_speaker_whose_share_ended_is_refused_in_plain_words(scene, workspace):
    pip = CharacterFactory(workspace=WorkspaceFactory(), handle="pip", name="Pip")
    share = CharacterShare.objects.create(
        character=pip, workspace=workspace, status=CharacterShare.Status.ACCEPTED
    )
    scene_dialogue_set(scene=scene, text="@pip: Ahoy.")
    share.delete()
    with pytest.raises(ValidationError) as refused:
        scene_request(scene=scene)
    assert refused.value.messages == [
        "@pip speaks a line but is no longer in this workspace's library."
    ]


def test_a_scene_without_lines_asks_for_no_dialogue(scene):
    assert scene_request(scene=scene).dialogue == ()


def test_a_take_keeps_the_lines_its_job_was_asked_for(scene, mina):
    account = ProviderAccountFactory(
        workspace=scene.episode.series.workspace, kind="seedance", model=""
    )
    asset_add(character=mina, upload=SimpleUploadedFile("mina.png", image_bytes(), "image/png"))
    scene.prompt = "@mina on the pier."
    scene.save()
    scene_dialogue_set(scene=scene, text="[1] @mina: We launch at dawn.")
    take = take_create(scene=scene, account=account)
    assert take.job.job_request.request.dialogue == (
        Line(subject=f"character:{mina.pk}", text="We launch at dawn.", start=1.0),
    )


def test_a_duplicated_scene_says_the_same_lines(scene, mina):
    scene_dialogue_set(scene=scene, text="[1] @mina: Again.\n: Echo.")
    copy = scene_duplicate(scene=scene)
    assert dialogue_text(copy.lines.order_by("position")) == "[1] @mina: Again.\n: Echo."
    assert scene.lines.count() == 2
