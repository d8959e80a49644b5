"""Takes that show the characters' own pictures, and takes that drift from them, measured as the
drift scorer measures them: dlib's face detector and 128-d face descriptors (same person under
0.6), the colour of the clothes below the face, the palette, contrast and grain of the frame.

The fixture portraits are real public-domain photographs (studio/demo_media).
"""

from __future__ import annotations

import base64
import colorsys
import functools
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from django.core.management.base import CommandError
from PIL import Image, ImageStat

from jobs.emulators.render import (
    DRIFT_AXES,
    CastMember,
    dominant_color,
    reference_picture,
    render_video,
)
from jobs.emulators.state import EmulatorConfig, Markers, strip_markers, take_drift
from jobs.management.commands.run_emulators import _drift_settings
from tests.jobs.emulators.conftest import Api, call

dlib = pytest.importorskip("dlib")

MEDIA = Path(__file__).resolve().parents[3] / "studio" / "demo_media"
PORTRAITS = ("astronaut", "grace_hopper")
SAME_PERSON = 0.6  # dlib's rule: descriptors closer than this are the same person
FAITHFUL = 0.45  # a faithful take's face is well within it
WIDTH, HEIGHT = 1280, 720
DETECT_WIDTH = 640  # faces are found on the frame at this width, upsampled once (as the scorer)


# --- Measuring faces ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # in the frame's pixels
    descriptor: np.ndarray

    @property
    def centre_x(self) -> float:
        return (self.box[0] + self.box[2]) / 2

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    def distance(self, other: np.ndarray) -> float:
        return float(np.linalg.norm(self.descriptor - other))


@functools.cache
def _models():
    # The model files ship in the face_recognition_models package; its __init__ imports
    # pkg_resources (a warning, an error here), so only its location is looked up.
    spec = importlib.util.find_spec("face_recognition_models")
    assert spec is not None
    assert spec.submodule_search_locations
    models = Path(spec.submodule_search_locations[0]) / "models"
    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat")),
        dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat")),
    )


def faces_in(image: Image.Image, *, detect_width: int | None = DETECT_WIDTH) -> list[Face]:
    """Every face dlib finds (on the image scaled to `detect_width`, upsampled once), most
    confident first, described from the full-size image."""
    detector, shapes, describer = _models()
    image = image.convert("RGB")
    scale = 1.0 if detect_width is None else detect_width / image.width
    small = image if scale == 1.0 else image.resize((detect_width, round(image.height * scale)))
    rects, scores, _ = detector.run(np.asarray(small), 1, 0)
    pixels = np.asarray(image)
    found = []
    for _score, rect in sorted(zip(scores, rects, strict=True), key=lambda pair: -pair[0]):
        box = tuple(
            round(v / scale) for v in (rect.left(), rect.top(), rect.right(), rect.bottom())
        )
        full = dlib.rectangle(*box)
        descriptor = np.array(describer.compute_face_descriptor(pixels, shapes(pixels, full)))
        found.append(Face(box, descriptor))
    return found


@functools.cache
def portrait(name: str) -> Image.Image:
    with Image.open(MEDIA / f"{name}.jpg") as image:
        return image.convert("RGB")


@functools.cache
def reference(name: str) -> np.ndarray:
    """The descriptor of the portrait's face (its most confident one, as the scorer takes)."""
    return faces_in(portrait(name), detect_width=None)[0].descriptor


def closest(faces: list[Face], name: str) -> tuple[Face, float]:
    assert faces, "no face found"
    face = min(faces, key=lambda f: f.distance(reference(name)))
    return face, face.distance(reference(name))


# --- Rendering ----------------------------------------------------------------------------------


def member(name: str) -> CastMember:
    picture = portrait(name)
    return CastMember(name, dominant_color(picture), reference_picture(picture))


def decode(video: bytes) -> list[Image.Image]:
    with av.open(io.BytesIO(video)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


@functools.cache
def frames(names: tuple[str, ...], drift: frozenset[str] = frozenset()) -> list[Image.Image]:
    """The first, middle and last frames of a 2 s take of `names` (kept for other tests)."""
    rendered = render_video(
        prompt="A portrait comes to life in the hangar",
        seconds=2,
        width=WIDTH,
        height=HEIGHT,
        cast=[member(name) for name in names],
        fps=6,
        drift=drift,
    )
    shown = decode(rendered.video)
    return [shown[0], shown[len(shown) // 2], shown[-1]]


def middle(names: tuple[str, ...], drift: frozenset[str] = frozenset()) -> Image.Image:
    return frames(names, drift)[1]


def body(image: Image.Image, face: Face) -> Image.Image:
    """The clothes: from just below the face, two face widths across, a face and a half down."""
    left, top, right, bottom = face.box
    width, height = right - left, bottom - top
    centre = (left + right) / 2
    return image.crop(
        (
            round(centre - width),
            round(bottom + 0.3 * height),
            round(centre + width),
            bottom + 2 * height,
        )
    )


def hue_of_mean(image: Image.Image) -> tuple[float, tuple[float, ...]]:
    """The hue (degrees) of the region's mean colour, and that colour."""
    mean = tuple(ImageStat.Stat(image).mean)
    hue, _, _ = colorsys.rgb_to_hsv(*(c / 255 for c in mean))
    return hue * 360, mean


def hue_gap(a: float, b: float) -> float:
    return min(abs(a - b), 360 - abs(a - b))


def palette(image: Image.Image) -> np.ndarray:
    """A coarse hue histogram (12 bins) weighted by saturation and brightness, summing to 1."""
    hsv = np.asarray(image.convert("HSV"), dtype=np.float64)
    weights = hsv[..., 1] / 255 * hsv[..., 2] / 255
    histogram, _ = np.histogram(hsv[..., 0], bins=12, range=(0, 256), weights=weights)
    return histogram / histogram.sum()


def contrast(image: Image.Image) -> float:
    return float(np.asarray(image.convert("L"), dtype=np.float64).std())


def grain(image: Image.Image) -> float:
    """Noise level in luminance steps (Immerkaer's Laplacian, made robust by a median)."""
    lum = np.asarray(image.convert("L"), dtype=np.float64)
    laplacian = (
        lum[:-2, :-2] - 2 * lum[:-2, 1:-1] + lum[:-2, 2:]
        - 2 * lum[1:-1, :-2] + 4 * lum[1:-1, 1:-1] - 2 * lum[1:-1, 2:]
        + lum[2:, :-2] - 2 * lum[2:, 1:-1] + lum[2:, 2:]
    )  # fmt: skip
    return float(np.median(np.abs(laplacian))) / (6 * 0.6745)


# --- A faithful take -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", PORTRAITS)
def test_a_faithful_take_shows_the_characters_own_face_large_and_whole(name: str) -> None:
    shown = frames((name,))

    found = [closest(faces_in(frame), name) for frame in shown]

    for face, distance in found:
        assert distance < FAITHFUL, f"{name}: {distance:.3f}"
        assert face.height >= 80  # found at 640 px wide too: what the scorer looks at
        assert face.box[0] >= 0  # whole: not cut by the frame's edges
        assert face.box[2] <= WIDTH
    # The picture moves gently: the face drifts across, by less than 8% of the width.
    travel = abs(found[-1][0].centre_x - found[0][0].centre_x)
    assert 4 < travel < 0.08 * WIDTH


def test_two_characters_stand_side_by_side_each_with_their_own_face() -> None:
    faces = faces_in(middle(("astronaut", "grace_hopper")))

    left = [face for face in faces if face.centre_x < WIDTH / 2]
    right = [face for face in faces if face.centre_x >= WIDTH / 2]

    assert closest(left, "astronaut")[1] < FAITHFUL
    assert closest(right, "grace_hopper")[1] < FAITHFUL


# --- Face ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PORTRAITS)
def test_face_drift_makes_a_lone_character_someone_else(name: str) -> None:
    faces = faces_in(middle((name,), frozenset({"face"})))

    # Nobody in the frame is the character any more (a face is still there to be scored).
    assert faces
    distances = [face.distance(reference(name)) for face in faces]
    assert min(distances) >= SAME_PERSON, f"{name}: {distances}"


def test_face_drift_with_two_characters_makes_each_someone_else() -> None:
    faces = faces_in(middle(("astronaut", "grace_hopper"), frozenset({"face"})))

    assert len(faces) == 2  # both faces are still there to be scored, on their own bodies
    for face in faces:
        assert face.distance(reference("astronaut")) >= SAME_PERSON
        assert face.distance(reference("grace_hopper")) >= SAME_PERSON


def test_face_drift_with_two_pictures_of_one_person_makes_both_someone_else() -> None:
    # Two references of one character (a second, different crop): both are disguised.
    picture = portrait("astronaut")
    crop = picture.crop((40, 0, 512, 512))
    cast = [member("astronaut"), CastMember("image 2", dominant_color(crop), crop)]
    rendered = render_video(
        prompt="Two of her",
        seconds=0.5,
        width=WIDTH,
        height=HEIGHT,
        cast=cast,
        fps=4,
        drift=frozenset({"face"}),
    )

    faces = faces_in(decode(rendered.video)[1])

    assert faces
    assert min(face.distance(reference("astronaut")) for face in faces) >= SAME_PERSON


# --- Clothing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PORTRAITS)
def test_clothing_drift_changes_the_clothes_and_leaves_the_face_alone(name: str) -> None:
    faithful_frame = middle((name,))
    drifted_frame = middle((name,), frozenset({"clothing"}))
    faithful_face, _ = closest(faces_in(faithful_frame), name)
    drifted_face, distance = closest(faces_in(drifted_frame), name)

    before_hue, before = hue_of_mean(body(faithful_frame, faithful_face))
    after_hue, after = hue_of_mean(body(drifted_frame, drifted_face))

    assert distance < FAITHFUL, f"{name}: {distance:.3f}"
    assert hue_gap(before_hue, after_hue) >= 90, (before_hue, after_hue)
    assert np.linalg.norm(np.subtract(before, after)) >= 30, (before, after)


# --- Style ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PORTRAITS)
def test_style_drift_changes_the_look_of_the_frame_and_not_who_is_in_it(name: str) -> None:
    faithful_frame = middle((name,))
    drifted_frame = middle((name,), frozenset({"style"}))

    _, distance = closest(faces_in(drifted_frame), name)

    assert distance < SAME_PERSON, f"{name}: {distance:.3f}"
    overlap = float(np.minimum(palette(faithful_frame), palette(drifted_frame)).sum())
    assert overlap < 0.6  # a different palette
    assert contrast(drifted_frame) > 1.05 * contrast(faithful_frame)  # harder
    assert grain(drifted_frame) > grain(faithful_frame) + 2  # grainy


def test_unknown_drift_axes_are_refused() -> None:
    with pytest.raises(ValueError, match="hair"):
        render_video(prompt="x", seconds=1, width=64, height=64, drift=frozenset({"hair"}))


# --- Prompt markers and settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "clean", "drift"),
    [
        ("Mina waves. [[emulate:drift]]", "Mina waves.", DRIFT_AXES),
        ("Mina waves. [[emulate:drift=face]]", "Mina waves.", {"face"}),
        ("[[emulate:drift=face,style]] Mina waves.", "Mina waves.", {"face", "style"}),
        (
            "Mina [[emulate:drift=clothing]] waves [[emulate:drift=style]]",
            "Mina waves",
            {"clothing", "style"},
        ),
        ("Mina waves. [[emulate:drift=face, clothing]]", "Mina waves.", {"face", "clothing"}),
        # An axis the emulators do not know makes no marker: the words stay in the prompt
        # (and so in the picture), and the take does not drift.
        ("Mina waves. [[emulate:drift=hair]]", "Mina waves. [[emulate:drift=hair]]", set()),
        ("Mina [[emulate:drift=face,hair]]", "Mina [[emulate:drift=face,hair]]", set()),
        ("Mina waves.", "Mina waves.", set()),
    ],
)
def test_drift_markers_are_read_and_removed_from_the_prompt(prompt, clean, drift) -> None:
    text, markers = strip_markers(prompt)

    assert (text, markers.drift) == (clean, frozenset(drift))


def test_drift_markers_go_with_the_other_markers() -> None:
    text, markers = strip_markers(
        "A cat [[emulate:latency=3]] [[emulate:drift=face]] [[emulate:fail]]"
    )

    assert (text, markers) == ("A cat", Markers(fail=True, latency=3.0, drift=frozenset({"face"})))


def test_the_drift_rate_makes_that_share_of_takes_drift_always_the_same_ones() -> None:
    config = EmulatorConfig().merged({"drift_rate": 0.3, "drift_axes": ["face", "clothing"]})
    ids = [f"task-{n}" for n in range(2000)]

    drifts = [take_drift(Markers(), config, job_id) for job_id in ids]

    assert set(drifts) == {frozenset(), frozenset({"face", "clothing"})}
    assert 0.27 < sum(bool(d) for d in drifts) / len(ids) < 0.33
    again = EmulatorConfig().merged({"drift_rate": 0.3, "drift_axes": "face,clothing"})
    assert [take_drift(Markers(), again, job_id) for job_id in ids] == drifts


def test_drift_settings_alone_and_together() -> None:
    plain = Markers()
    assert take_drift(plain, EmulatorConfig(), "a") == frozenset()  # by default nothing drifts
    every = EmulatorConfig().merged({"drift_axes": ["style"]})
    assert {take_drift(plain, every, f"t{n}") for n in range(50)} == {frozenset({"style"})}
    half = EmulatorConfig().merged({"drift_rate": 0.5})  # no axes named: all of them
    assert {take_drift(plain, half, f"t{n}") for n in range(50)} == {frozenset(), DRIFT_AXES}
    none = EmulatorConfig().merged({"drift_rate": 0, "drift_axes": ["face"]})
    assert {take_drift(plain, none, f"t{n}") for n in range(50)} == {frozenset()}
    # A marker in the prompt wins over the settings, either way.
    marked = Markers(drift=frozenset({"clothing"}))
    assert take_drift(marked, none, "a") == take_drift(marked, every, "a") == {"clothing"}


@pytest.mark.parametrize(
    "change",
    [
        {"drift_axes": ["hair"]},
        {"drift_axes": "face,hair"},
        {"drift_axes": 3},
        {"drift_rate": 1.5},
        {"drift_rate": -0.1},
        {"drift_rate": "half"},
        {"drift_rate": True},
    ],
)
def test_bad_drift_settings_are_refused(change) -> None:
    with pytest.raises(ValueError, match=next(iter(change))):
        EmulatorConfig().merged(change)


def test_run_emulators_takes_drift_options() -> None:
    assert _drift_settings("", "") == {}
    assert EmulatorConfig().merged(_drift_settings("face,clothing", "0.3")) == EmulatorConfig(
        drift_axes=frozenset({"face", "clothing"}), drift_rate=0.3
    )
    for axes, rate in (("hair", ""), ("", "lots"), ("", "2")):
        with pytest.raises(CommandError, match="drift"):
            _drift_settings(axes, rate)


# --- Over HTTP -----------------------------------------------------------------------------------

TASKS = "/contents/generations/tasks"


def _seedance_take(api: Api, prompt: str, picture: bytes) -> dict:
    reference = f"data:image/jpeg;base64,{base64.b64encode(picture).decode()}"
    body = {
        "model": "dreamina-seedance-2-0-260128",
        "content": [
            {"type": "text", "text": prompt},
            {"type": "image_url", "image_url": {"url": reference}, "role": "reference_image"},
        ],
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 4,
    }
    reply = api.post(TASKS, body)
    assert reply.status == 200, reply.body
    return api.wait(f"{TASKS}/{reply.json()['id']}", until=lambda t: t["status"] == "succeeded")


def test_a_drift_marker_at_an_emulator_makes_a_take_whose_clothes_drifted(
    seedance_api: Api,
) -> None:
    picture = (MEDIA / "astronaut.jpg").read_bytes()
    faithful = _seedance_take(seedance_api, "Mina (image 1) looks out to sea.", picture)
    drifted = _seedance_take(
        seedance_api, "Mina (image 1) looks out to sea. [[emulate:drift=clothing]]", picture
    )

    shown = {}
    for label, task in (("faithful", faithful), ("drifted", drifted)):
        video = call("GET", task["content"]["video_url"], token=None)
        assert video.status == 200
        frames_ = decode(video.body)
        frame = frames_[len(frames_) // 2]
        face, distance = closest(faces_in(frame), "astronaut")
        assert distance < FAITHFUL, f"{label}: {distance:.3f}"  # her own face, both times
        shown[label] = hue_of_mean(body(frame, face))[0]

    assert hue_gap(shown["faithful"], shown["drifted"]) >= 90, shown


def test_drift_settings_at_an_emulator_pick_takes_by_their_id(
    seedance_emulator, seedance_api: Api
) -> None:
    seedance_api.control("config", {"drift_rate": 0.5, "drift_axes": ["clothing"]})
    assert seedance_api.control("state")["config"]["drift_axes"] == ["clothing"]
    body = {"model": "dreamina-seedance-2-0-260128", "content": [{"type": "text", "text": "x"}]}

    ids = [seedance_api.post(TASKS, body).json()["id"] for _ in range(40)]

    config = seedance_emulator.app.config
    drifts = [seedance_emulator.app.tasks.get(task_id).drift for task_id in ids]
    assert drifts == [take_drift(Markers(), config, task_id) for task_id in ids]
    assert set(drifts) == {frozenset(), frozenset({"clothing"})}  # some do, some do not
    reply = call(
        "POST", f"{seedance_emulator.url}/_emulator/config", json_body={"drift_axes": ["hair"]}
    )
    assert reply.status == 400
    assert "hair" in reply.json()["error"]["message"]


def portrait_clip(name: str, seconds: float = 3.0, fps: int = 6) -> bytes:
    """An MP4 whose every frame is the portrait: a clip to make a character from."""
    buffer = io.BytesIO()
    picture = portrait(name).resize((512, 512))
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 512, 512, "yuv420p"
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_image(picture)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def test_a_registered_character_is_shown_as_its_clip_showed_it(openai_api: Api) -> None:
    character = openai_api.post(
        "/videos/characters",
        fields={"name": "Eileen"},
        files={"video": ("eileen.mp4", "video/mp4", portrait_clip("astronaut"))},
    )
    assert character.status == 200, character.body

    shown = {}
    for prompt in ("Eileen waves.", "Eileen waves. [[emulate:drift=face]]"):
        body = {
            "prompt": prompt,
            "size": "1280x720",
            "characters": [{"id": character.json()["id"]}],
        }
        created = openai_api.post("/videos", body)
        assert created.status == 200, created.body
        video_id = created.json()["id"]
        done = openai_api.wait(f"/videos/{video_id}", until=lambda v: v["status"] == "completed")
        assert done["prompt"] == "Eileen waves."  # the marker is not part of the take's prompt
        frames_ = decode(openai_api.get(f"/videos/{video_id}/content").body)
        faces = faces_in(frames_[len(frames_) // 2])
        shown[prompt] = min(face.distance(reference("astronaut")) for face in faces)

    assert shown["Eileen waves."] < FAITHFUL, shown
    assert shown["Eileen waves. [[emulate:drift=face]]"] >= SAME_PERSON, shown
