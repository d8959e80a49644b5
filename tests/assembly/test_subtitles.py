"""The subtitle and chapter sidecars, byte for byte."""

from __future__ import annotations

from studio.assembly import Chapter, Cue, chapters_vtt, srt, webvtt

CUES = (
    Cue(0.3, 1.5, "We launch at dawn.", "Mina Okafor"),
    Cue(61.25, 63.0, "Line one\n\nline two & <b>not bold</b> --> ok"),
    Cue(3725.0015, 3726.5, "Late."),
)


def test_webvtt_writes_voices_escapes_markup_and_keeps_cues_whole():
    assert webvtt(CUES) == (
        "WEBVTT\n"
        "\n"
        "1\n"
        "00:00:00.300 --> 00:00:01.500\n"
        "<v Mina Okafor>We launch at dawn.</v>\n"
        "\n"
        "2\n"
        "00:01:01.250 --> 00:01:03.000\n"
        "Line one\n"
        "line two &amp; &lt;b&gt;not bold&lt;/b&gt; --&gt; ok\n"
        "\n"
        "3\n"
        "01:02:05.002 --> 01:02:06.500\n"
        "Late.\n"
    )


def test_srt_numbers_cues_with_comma_milliseconds_and_names_the_speaker():
    assert srt(CUES) == (
        "1\n"
        "00:00:00,300 --> 00:00:01,500\n"
        "Mina Okafor: We launch at dawn.\n"
        "\n"
        "2\n"
        "00:01:01,250 --> 00:01:03,000\n"
        "Line one\n"
        "line two & <b>not bold</b> --> ok\n"
        "\n"
        "3\n"
        "01:02:05,002 --> 01:02:06,500\n"
        "Late.\n"
    )


def test_no_cues_make_an_empty_but_valid_file():
    assert webvtt(()) == "WEBVTT\n"
    assert srt(()) == ""


def test_chapters_are_one_cue_per_scene():
    chapters = (
        Chapter(2.0, 9.75, "1. Launch day", 1),
        Chapter(9.75, 17.5, "2. <Rain>", 2),
        Chapter(17.5, 20.0, "  ", 3),
    )

    assert chapters_vtt(chapters) == (
        "WEBVTT\n"
        "\n"
        "scene-1\n"
        "00:00:02.000 --> 00:00:09.750\n"
        "1. Launch day\n"
        "\n"
        "scene-2\n"
        "00:00:09.750 --> 00:00:17.500\n"
        "2. &lt;Rain&gt;\n"
        "\n"
        "scene-3\n"
        "00:00:17.500 --> 00:00:20.000\n"
        "Scene 3\n"
    )
