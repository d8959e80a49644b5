"""The drift scorer on small real videos: the fixture portraits pasted over a backdrop.

Each video is 640x360 H.264, 8 fps, 2-3 s (4-6 sampled frames), made here with PyAV:
faithful (the character's own portrait), the other person (face), the body region
hue-rotated and striped (clothing), the whole frame posterized, hue-rotated and grainy
(style). The scores are the real scorer's (dlib, offline, on the CPU).
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from studio.consistency import scoring
from studio.consistency.dlib_scorer import DlibScorer
from studio.consistency.scoring import (
    AXES,
    CharacterReference,
    ScoreResult,
    ScoringError,
    get_scorer,
)

MEDIA = Path(__file__).resolve().parents[3] / "studio" / "demo_media"
SIZE = (640, 360)
FPS = 8

# Where dlib finds each portrait's face (left, top, right, bottom), in the portrait's pixels.
FACE_BOXES = {"astronaut": (175, 76, 265, 166), "hopper": (180, 139, 366, 325)}


def _portrait(name: str) -> Image.Image:
    with Image.open(MEDIA / f"{'grace_hopper' if name == 'hopper' else name}.jpg") as image:
        return image.convert("RGB")


ASTRONAUT = _portrait("astronaut")
HOPPER = _portrait("hopper")


# --- Drifts ---------------------------------------------------------------------------------


def hue_rotate(image: Image.Image, degrees: float) -> Image.Image:
    hue, saturation, value = image.convert("HSV").split()
    shift = round(degrees / 360 * 256)
    hue = hue.point(lambda h: (h + shift) % 256)
    return Image.merge("HSV", (hue, saturation, value)).convert("RGB")


def clothing_drift(portrait: Image.Image, face_box: tuple[int, int, int, int]) -> Image.Image:
    """The body (below the face) hue-rotated by 150 degrees and striped."""
    _, top, _, bottom = face_box
    box = (0, bottom + (bottom - top) // 6, portrait.width, portrait.height)
    body = hue_rotate(portrait.crop(box), 150)
    draw = ImageDraw.Draw(body)
    for y in range(0, body.height, 14):
        draw.line((0, y, body.width, y), fill=(20, 20, 20), width=3)
    out = portrait.copy()
    out.paste(body, box[:2])
    return out


def style_drift(frame: Image.Image) -> Image.Image:
    """The whole frame posterized, hue-rotated, contrast stretched and grainy."""
    frame = ImageOps.posterize(frame, 3)
    frame = ImageOps.autocontrast(hue_rotate(frame, 70), cutoff=8)
    noise = np.random.default_rng(7).normal(0, 18, (frame.height, frame.width, 1))
    return Image.fromarray(np.clip(np.asarray(frame) + noise, 0, 255).astype(np.uint8))


# --- Videos ---------------------------------------------------------------------------------


def _backdrop() -> Image.Image:
    width, height = SIZE
    x = np.linspace(0, 1, width)[None, :, None]
    y = np.linspace(0, 1, height)[:, None, None]
    rgb = (np.array([70, 90, 60]) * (1 - x) + np.array([160, 140, 110]) * x) * (1 - 0.4 * y)
    backdrop = Image.fromarray(np.broadcast_to(rgb, (height, width, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(backdrop)
    rng = np.random.default_rng(3)
    for _ in range(6):
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(10, 40)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(rng.integers(40, 200, 3)))
    return backdrop


def make_video(shots, *, seconds: float = 2.0, frame_filter=None) -> bytes:
    """`shots(t)` gives the pictures standing side by side at t seconds; they walk right."""
    backdrop = _backdrop()
    width, height = SIZE
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        for index in range(round(seconds * FPS)):
            frame = backdrop.copy()
            pictures = shots(index / FPS)
            for k, picture in enumerate(pictures):
                h = round(height * 0.85)
                w = round(picture.width * h / picture.height)
                if w > width // len(pictures) - 10:
                    w = width // len(pictures) - 10
                    h = round(picture.height * w / picture.width)
                x = round((k + 0.5) * width / len(pictures) - w / 2 + index * 2)
                frame.paste(picture.resize((w, h), Image.Resampling.LANCZOS), (x, height - h))
            if frame_filter:
                frame = frame_filter(frame)
            video_frame = av.VideoFrame.from_image(frame)
            video_frame.pts = index
            video_frame.time_base = Fraction(1, FPS)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def figure(color: tuple[int, int, int]) -> Image.Image:
    """A faceless cartoon figure on a pale ground: a head disc over a striped body."""
    picture = Image.new("RGB", (300, 400), (225, 225, 215))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((105, 20, 195, 110), fill=(230, 190, 160), outline=(60, 40, 30), width=3)
    draw.rounded_rectangle(
        (70, 115, 230, 390), radius=40, fill=color, outline=(30, 30, 30), width=3
    )
    for y in range(140, 380, 30):
        draw.line((80, y, 220, y), fill=tuple(c // 2 for c in color), width=6)
    return picture


def reference(name: str, *images: Image.Image) -> CharacterReference:
    return CharacterReference(key=f"character:{name}:v1", name=name.title(), images=images)


ASTRONAUT_REF = reference("astronaut", ASTRONAUT)
HOPPER_REF = reference("hopper", HOPPER)


@pytest.fixture(scope="module")
def scorer() -> DlibScorer:
    return DlibScorer()


def score(scorer, video: bytes, *references: CharacterReference) -> ScoreResult:
    return scorer.score(io.BytesIO(video), references)


@pytest.fixture(scope="module")
def faithful_video() -> bytes:
    return make_video(lambda t: [ASTRONAUT])


@pytest.fixture(scope="module")
def faithful(scorer, faithful_video) -> ScoreResult:
    return score(scorer, faithful_video, ASTRONAUT_REF)


# --- Tests ----------------------------------------------------------------------------------


def test_a_faithful_take_scores_high_on_every_axis(faithful):
    assert faithful.scorer == DlibScorer.name
    assert faithful.frames_sampled == 4  # 2 s, one frame every 0.5 s
    assert faithful.video_seconds == pytest.approx(2.0, abs=0.2)
    assert faithful.cpu_seconds > 0
    (result,) = faithful.characters
    assert result.key == "character:astronaut:v1"
    assert result.face >= 85
    assert result.clothing >= 85
    assert result.style >= 85
    assert result.persistence == 1.0
    assert [frame.seconds for frame in result.frames] == pytest.approx([0.25, 0.75, 1.25, 1.75])
    assert all(frame.recognised for frame in result.frames)
    assert result.notes == ()


def test_the_wrong_person_scores_low_on_face_and_is_not_recognised(scorer):
    (result,) = score(scorer, make_video(lambda t: [HOPPER]), ASTRONAUT_REF).characters
    assert result.face <= 40
    assert result.persistence == 0.0
    assert not any(frame.recognised for frame in result.frames)


def test_changed_clothing_scores_low_on_clothing_while_the_face_stays(scorer):
    drifted = clothing_drift(ASTRONAUT, FACE_BOXES["astronaut"])
    (result,) = score(scorer, make_video(lambda t: [drifted]), ASTRONAUT_REF).characters
    assert result.clothing <= 40
    assert result.face >= 85
    assert result.style >= 80  # the face and the rest of the frame kept their look
    assert result.persistence == 1.0


def test_a_changed_look_scores_low_on_style(scorer):
    video = make_video(lambda t: [ASTRONAUT], frame_filter=style_drift)
    (result,) = score(scorer, video, ASTRONAUT_REF).characters
    assert result.style <= 30
    assert result.face >= 70  # still her: the descriptor is colour-blind enough
    assert result.persistence >= 0.5  # heavy grain costs the detector a frame now and then


def test_a_character_without_a_face_in_the_references_is_scored_on_clothing_and_style(scorer):
    red = reference("robin", figure((200, 50, 40)))
    faithful = score(scorer, make_video(lambda t: [figure((200, 50, 40))]), red)
    (result,) = faithful.characters
    assert result.face is None
    assert all(frame.face is None for frame in result.frames)
    assert "No face found in the references, so face identity is not scored." in result.notes
    assert result.clothing >= 70
    assert result.persistence == 1.0  # recognised by its clothing

    (recoloured,) = score(scorer, make_video(lambda t: [figure((40, 90, 210))]), red).characters
    assert recoloured.clothing <= result.clothing - 30
    assert recoloured.persistence < 0.5


def test_two_characters_are_scored_separately(scorer):
    drifted = clothing_drift(ASTRONAUT, FACE_BOXES["astronaut"])
    video = make_video(lambda t: [drifted, HOPPER])
    result = score(scorer, video, ASTRONAUT_REF, HOPPER_REF)
    astronaut, hopper = result.characters
    assert (astronaut.key, hopper.key) == (ASTRONAUT_REF.key, HOPPER_REF.key)
    assert astronaut.face >= 80
    assert hopper.face >= 80
    assert astronaut.persistence == hopper.persistence == 1.0
    assert astronaut.clothing <= 50  # her suit changed colour
    assert hopper.clothing >= 75  # Grace Hopper's uniform did not


def test_a_character_without_pictures_is_not_scored_but_the_others_are(scorer, faithful_video):
    result = score(scorer, faithful_video, ASTRONAUT_REF, reference("nobody"))
    astronaut, nobody = result.characters
    assert astronaut.face >= 85
    assert nobody.key == "character:nobody:v1"
    assert (nobody.face, nobody.clothing, nobody.style, nobody.persistence) == (
        None,
        None,
        None,
        0.0,
    )
    assert nobody.worst == ()
    assert nobody.notes == ("Nobody has no reference pictures, so nothing is scored.",)


def test_the_worst_frames_are_jpegs_of_the_worst_seconds(scorer):
    # The first 1.5 s show the astronaut, the last 1.5 s Grace Hopper in her place.
    video = make_video(lambda t: [ASTRONAUT if t < 1.5 else HOPPER], seconds=3.0)
    (result,) = score(scorer, video, ASTRONAUT_REF).characters
    assert result.persistence == pytest.approx(0.5)
    assert [frame.recognised for frame in result.frames] == [True] * 3 + [False] * 3

    by_axis = {axis: [w for w in result.worst if w.axis == axis] for axis in AXES}
    assert all(1 <= len(worst) <= 2 for worst in by_axis.values())
    face = by_axis["face"]
    assert [w.score for w in face] == sorted(w.score for w in face)  # worst first
    for worst in face:
        assert worst.seconds > 1.5
        assert worst.score <= 40
        frame = next(f for f in result.frames if f.seconds == worst.seconds)
        assert frame.face == worst.score
        with Image.open(io.BytesIO(worst.jpeg)) as picture:
            assert picture.format == "JPEG"
            assert picture.width <= 320
            assert picture.size == (320, 180)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not a video at all" * 40, ASTRONAUT.tobytes()[:5000]],
    ids=["empty", "text", "raw-pixels"],
)
def test_an_undecodable_file_raises_a_scoring_error(scorer, content):
    with pytest.raises(ScoringError, match=r"\w"):
        scorer.score(io.BytesIO(content), [ASTRONAUT_REF])


def test_a_picture_is_not_a_video(scorer, tmp_path):
    path = tmp_path / "still.jpg"
    ASTRONAUT.save(path, "JPEG")
    with pytest.raises(ScoringError, match="image, not a video"):
        scorer.score(str(path), [ASTRONAUT_REF])
    assert issubclass(ScoringError, ValueError)


class FixedScorer:
    """A stand-in for a stronger scorer (a GPU model, a provider's API)."""

    name = "fixed 1"

    def score(self, video, references):
        return ScoreResult(
            scorer=self.name, characters=(), frames_sampled=0, video_seconds=0, cpu_seconds=0
        )


def test_the_consistency_scorer_setting_swaps_the_scorer(settings):
    settings.CONSISTENCY_SCORER = f"{__name__}.FixedScorer"
    chosen = get_scorer()
    assert isinstance(chosen, FixedScorer)
    assert get_scorer() is chosen  # one instance per process
    assert chosen.score(io.BytesIO(b""), [ASTRONAUT_REF]).scorer == "fixed 1"

    del settings.CONSISTENCY_SCORER
    assert isinstance(get_scorer(), DlibScorer)
    assert scoring.DEFAULT_SCORER == "studio.consistency.dlib_scorer.DlibScorer"
