"""The default drift scorer: dlib face descriptors, HSV colour and texture statistics, on the CPU.

Per sampled frame (`frames.VideoFrames`: one every 0.5 s, at most 24, spread over longer
takes, at most 1280 px wide) and per character:

* Face identity. Faces are found with dlib's HOG detector: first around where the
  characters' faces were in the previous sample (each scaled to ~100 px, cheap); failing
  that, over the frame scaled to 640 px wide, upsampled once (faces from ~40 px); failing
  that, over the 1280 px frame (faces from ~20 px at 640). A grainy frame is smoothed for
  the detector. Each face is described by dlib's ResNet (128-d,
  `dlib_face_recognition_resnet_model_v1`, aligned by the 5-point landmarks) from the
  unsmoothed 1280 px frame. A character's distance to a face is the smallest Euclidean
  distance to its reference faces (one per reference picture: the detector's surest).
  With several characters, faces go to characters greedily, the closest pair first.
  dlib's own rule: the same person under 0.6 (SAME_PERSON): "recognised".
* Clothing. The region below the character's face (the face box redrawn from the eyes,
  so it does not wander with the detector's scale): from the face's bottom down three
  face heights, three face widths across, weighted towards the middle, against the same
  region of each reference in face units, both clipped to what both show: an HSV colour
  histogram (4 greys, 16 hues x 2 saturations x 2 values, hue-smoothed; Bhattacharyya
  distance) and a texture histogram (gradient magnitudes, resampled to 24 px per face
  unit). Without a face in the references, the references' middle region is looked for
  in the frame (the best window of a coarse search), and a note says so.
* Style. Palette (the colour histogram), contrast (luminance standard deviation) and
  texture (gradient-magnitude and local-binary-pattern histograms), plus grain (a
  median-Laplacian noise estimate, which edges barely move) of the whole frame. Where the
  character's face is recognised, palette, contrast and texture are taken on the face
  and hair (resampled to 32 px per face unit) against the references' own face: the same
  content on both sides, so what differs is the look (grading, contrast, texture), not
  the scene, which a take changes on purpose. Elsewhere (no face in the references, or
  not recognised in this frame) whole frames are compared, with a tolerant palette
  mapping, since a new scene alone moves a whole-frame palette by 0.5-0.65.

Each axis is the mean over the frames where it could be measured; persistence is the
share of sampled frames in which the character is recognised (without reference faces:
the clothing score at least CLOTHING_RECOGNISED).

Calibration. Raw distance -> score is piecewise linear through the points below (clamped
at both ends); a sub-score per cue, and an axis is their product (so one cue far off is
enough to pull it down). Raw distances measured on the fixture portraits
(tests/studio/consistency: portraits pasted over a backdrop; benchmarks/consistency.py:
the emulator renderer, 1280x720 and 720x1280, references mirrored/cropped/JPEG'd):

  face: descriptor distance        faithful 0.08-0.22; style-drifted 0.30-0.48; the other
        0.30->100 0.45->85           person 0.63-0.70; the renderer's disguise 0.65-0.73
        0.60->50 0.75->10 0.85->0
  clothing colour (Bhattacharyya)  faithful 0.02-0.07; the other person 0.28-0.66; body
        0.12->100 0.22->85           hue-turned 0.45-0.77 (a dark navy uniform only 0.27:
        0.35->50 0.55->0             hue barely shows on dark cloth)
  clothing texture                 faithful 0.01-0.05; the other person 0.25-0.41; body
        0.08->100 0.18->85           striped or checked 0.07-0.45
        0.35->50 0.60->0
  style palette (face anchored)    faithful 0.03-0.16; hue turned 20 degrees ~0.4, 40
        0.15->100 0.30->85           degrees ~0.67; the renderer's grading 0.84-0.91
        0.50->50 0.75->0
  style contrast |log(sd ratio)|   faithful 0.00-0.06; contrast x1.35 ~0.2, x0.7 ~0.33
        0.10->100 0.20->85 0.40->50 0.80->0
  style texture                    faithful 0.02-0.07; grain, posterizing, blur 0.09-0.18
        0.08->100 0.15->85 0.30->50 0.50->0
  style grain excess (frame minus reference, luminance steps): faithful 0 (video is
        2->100 4->85 8->50 16->0     smoother than photographs); the renderer's grain
                                     2.4-6.8; gaussian grain sigma 8 ~6.6, sigma 18 ~16
  style palette (whole frames)     a new scene alone: 0.23-0.6; hue-turned 0.68-0.80
        0.45->100 0.60->80 0.75->50 0.95->0

These are composited takes: a faithful one shows the reference itself. Real generated
takes (new poses, light, expressions) sit higher on every raw distance; dlib's 0.6 was
set on real photographs (LFW), the colour and texture points were not, and should be
re-fitted on reviewed takes when there are some.
"""

from __future__ import annotations

import importlib.util
import io
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFilter

from studio.consistency.frames import VideoFrames
from studio.consistency.scoring import (
    AXES,
    CharacterReference,
    CharacterResult,
    FrameScore,
    ScoreResult,
    ScoringError,
    WorstFrame,
)

__all__ = ["DlibScorer"]

NAME = "dlib-resnet-v1/hsv-texture 1"

DETECT_WIDTH = 640  # faces are looked for at this width (upsampled once: faces from ~40 px)
DETAIL_WIDTH = 1280  # descriptors are taken from the frame at up to this width
THUMBNAIL_WIDTH = 320
SAME_PERSON = 0.6  # dlib's threshold on the descriptor distance
MAX_FACES = 6  # faces described per frame (the detector's most confident)
GRAINY = 4.0  # noise level (luminance steps) above which faces are looked for in a smoothed copy
CLOTHING_RECOGNISED = 60.0  # without reference faces: recognised at this clothing score

# --- Calibration ----------------------------------------------------------------------------
# Raw distance -> score: piecewise linear through these (distance, score) points, clamped at
# both ends; see the module's docstring for what each was measured at. Faithful takes score
# ~80 or more and clearly drifted ones ~50 or less.
FACE_POINTS = ((0.30, 100.0), (0.45, 85.0), (0.60, 50.0), (0.75, 10.0), (0.85, 0.0))
CLOTHING_COLOUR_POINTS = ((0.12, 100.0), (0.22, 85.0), (0.35, 50.0), (0.55, 0.0))
CLOTHING_TEXTURE_POINTS = ((0.08, 100.0), (0.18, 85.0), (0.35, 50.0), (0.60, 0.0))
STYLE_PALETTE_POINTS = ((0.15, 100.0), (0.30, 85.0), (0.50, 50.0), (0.75, 0.0))
STYLE_CONTRAST_POINTS = ((0.10, 100.0), (0.20, 85.0), (0.40, 50.0), (0.80, 0.0))
STYLE_TEXTURE_POINTS = ((0.08, 100.0), (0.15, 85.0), (0.30, 50.0), (0.50, 0.0))
STYLE_GRAIN_POINTS = ((2.0, 100.0), (4.0, 85.0), (8.0, 50.0), (16.0, 0.0))
WHOLE_PALETTE_POINTS = ((0.45, 100.0), (0.60, 80.0), (0.75, 50.0), (0.95, 0.0))


def _map(distance: float, points: Sequence[tuple[float, float]]) -> float:
    xs, ys = zip(*points, strict=True)
    return float(np.interp(distance, xs, ys))


# --- Models ---------------------------------------------------------------------------------


def models_dir() -> Path:
    """Where face-recognition-models keeps its files, found without importing the package.

    (Its __init__ imports pkg_resources, which warns on import.)
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The drift scorer needs the package face-recognition-models.")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class _Models:
    """dlib's detector, landmark model and face encoder; one set per process."""

    def __init__(self) -> None:
        import dlib

        folder = models_dir()
        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shapes = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(
            str(folder / "dlib_face_recognition_resnet_model_v1.dat")
        )
        # The encoder's network keeps its buffers between calls: one caller at a time.
        self.lock = threading.Lock()

    def detect(
        self, image: np.ndarray, upsample: int
    ) -> list[tuple[tuple[int, int, int, int], float]]:
        with self.lock:
            rects, scores, _ = self.detector.run(image, upsample, 0.0)
        boxes = [
            ((r.left(), r.top(), r.right(), r.bottom()), float(s))
            for r, s in zip(rects, scores, strict=True)
        ]
        return sorted(boxes, key=lambda box: -box[1])

    def describe(self, image: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, Box]:
        """The face's 128-d descriptor, and its box redrawn from the landmarks.

        The detector's boxes wander by 10-20% of a face with scale; the eyes do not. The box
        is 2.3 eye distances wide, from 0.65 above the eyes to 1.65 below (the detector's
        own proportions, on average), so the regions measured from it line up across frames.
        """
        rect = self.dlib.rectangle(*box)
        with self.lock:
            shape = self.shapes(image, rect)
            descriptor = self.encoder.compute_face_descriptor(image, shape, 0)
        points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], dtype=float)
        right_eye, left_eye = points[0:2].mean(axis=0), points[2:4].mean(axis=0)
        eyes = (right_eye + left_eye) / 2
        span = max(1.0, float(np.linalg.norm(right_eye - left_eye)))
        landmarks_box = (
            eyes[0] - 1.15 * span,
            eyes[1] - 0.65 * span,
            eyes[0] + 1.15 * span,
            eyes[1] + 1.65 * span,
        )
        return np.asarray(descriptor, dtype=np.float64), landmarks_box


_models_instance: _Models | None = None
_models_lock = threading.Lock()


def _models() -> _Models:
    global _models_instance
    if _models_instance is None:
        with _models_lock:
            if _models_instance is None:
                _models_instance = _Models()
    return _models_instance


# --- Features -------------------------------------------------------------------------------

_HUE_BINS = 16


def _colour_bins(hsv: np.ndarray) -> np.ndarray:
    """Bin per pixel: 4 achromatic (by value), then 16 hues x 2 saturations x 2 values."""
    h = hsv[..., 0].astype(np.int32)
    s = hsv[..., 1].astype(np.int32)
    v = hsv[..., 2].astype(np.int32)
    grey = (s < 40) | (v < 40)
    grey_bin = np.where(v < 40, 0, 1 + np.minimum(2, (v - 40) * 3 // 216))
    hue = (h * _HUE_BINS) >> 8
    colour_bin = 4 + (hue * 4 + (s >= 128) * 2 + (v >= 150))
    return np.where(grey, grey_bin, colour_bin)


_COLOUR_BINS = 4 + _HUE_BINS * 4


def _colour_histogram(bins: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    hist = np.bincount(
        bins.ravel(), weights=None if weights is None else weights.ravel(), minlength=_COLOUR_BINS
    ).astype(np.float64)
    # Spread each hue over its neighbours, so a slight shift (compression, light) costs little.
    chroma = hist[4:].reshape(_HUE_BINS, 4)
    chroma = 0.5 * chroma + 0.25 * np.roll(chroma, 1, axis=0) + 0.25 * np.roll(chroma, -1, axis=0)
    hist = np.concatenate([hist[:4], chroma.ravel()])
    total = hist.sum()
    return hist / total if total > 0 else hist


_GRADIENT_EDGES = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _gradient_histogram(lum: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    gx = np.zeros_like(lum)
    gy = np.zeros_like(lum)
    gx[:, 1:-1] = (lum[:, 2:] - lum[:, :-2]) / 2
    gy[1:-1, :] = (lum[2:, :] - lum[:-2, :]) / 2
    magnitude = np.hypot(gx, gy)
    bins = np.searchsorted(_GRADIENT_EDGES, magnitude)
    hist = np.bincount(
        bins.ravel(),
        weights=None if weights is None else weights.ravel(),
        minlength=len(_GRADIENT_EDGES) + 1,
    ).astype(np.float64)
    total = hist.sum()
    return hist / total if total > 0 else hist


def _lbp_histogram(lum: np.ndarray) -> np.ndarray:
    """Uniform local binary patterns (8 neighbours, radius 1, 2-level tolerance): 10 bins."""
    centre = lum[1:-1, 1:-1]
    offsets = ((0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0))
    height, width = centre.shape
    bits = np.stack(
        [lum[dy : dy + height, dx : dx + width] >= centre + 2.0 for dy, dx in offsets], axis=-1
    )
    transitions = (bits != np.roll(bits, 1, axis=-1)).sum(axis=-1)
    ones = bits.sum(axis=-1)
    pattern = np.where(transitions <= 2, ones, 9)
    hist = np.bincount(pattern.ravel(), minlength=10).astype(np.float64)
    return hist / max(1.0, hist.sum())


def _bhattacharyya(p: np.ndarray, q: np.ndarray) -> float:
    coefficient = float(np.sqrt(p * q).sum())
    return float(np.sqrt(max(0.0, 1.0 - min(1.0, coefficient))))


@dataclass(frozen=True)
class _Look:
    """Style statistics of a picture or a region of one."""

    palette: np.ndarray  # colour histogram
    deviation: float  # luminance standard deviation
    gradients: np.ndarray  # gradient-magnitude histogram
    patterns: np.ndarray  # local binary pattern histogram


def _look(image: Image.Image) -> _Look:
    lum = _luminance(np.asarray(image, dtype=np.float32))
    return _Look(
        palette=_colour_histogram(_colour_bins(np.asarray(image.convert("HSV")))),
        deviation=float(lum.std()),
        gradients=_gradient_histogram(lum),
        patterns=_lbp_histogram(lum),
    )


def _grain(image: Image.Image) -> float:
    """Noise level (luminance steps), Immerkaer's Laplacian estimate made robust by a median.

    Edges and textures barely move the median, so this measures grain more than content.
    """
    lum = _luminance(np.asarray(image, dtype=np.float32))
    laplacian = (
        lum[:-2, :-2] - 2 * lum[:-2, 1:-1] + lum[:-2, 2:]
        - 2 * lum[1:-1, :-2] + 4 * lum[1:-1, 1:-1] - 2 * lum[1:-1, 2:]
        + lum[2:, :-2] - 2 * lum[2:, 1:-1] + lum[2:, 2:]
    )  # fmt: skip
    # The kernel's gain on white noise is 6; median |x| = 0.6745 sigma for a normal.
    return float(np.median(np.abs(laplacian))) / (6 * 0.6745)


_FACE_AREA = (-0.6, -0.3, 0.6, 1.0)  # the face and hair: x from the centre, y from the top
_FACE_PIXELS = 32  # the face area is resampled to this many pixels per face unit
_WHOLE_SIZE = 256 * 256  # pixels a whole picture is resampled to for its look


def _face_area(image: Image.Image, box) -> Image.Image:
    left, top, right, bottom = box
    fw, fh = max(1.0, right - left), max(1.0, bottom - top)
    cx = (left + right) / 2
    x0, y0, x1, y1 = _FACE_AREA
    crop = _inside((cx + x0 * fw, top + y0 * fh, cx + x1 * fw, top + y1 * fh), image.size)
    size = (
        max(4, round((crop[2] - crop[0]) / fw * _FACE_PIXELS)),
        max(4, round((crop[3] - crop[1]) / fh * _FACE_PIXELS)),
    )
    return image.resize(size, Image.Resampling.BILINEAR, box=crop, reducing_gap=2.0)


def _inside(box: Box, size: tuple[int, int]) -> Box:
    """`box` clipped to a picture of `size` (and at least a pixel across)."""
    left = min(max(0.0, box[0]), size[0] - 1.0)
    top = min(max(0.0, box[1]), size[1] - 1.0)
    return (
        left,
        top,
        max(left + 1.0, min(float(size[0]), box[2])),
        max(top + 1.0, min(float(size[1]), box[3])),
    )


def _whole(image: Image.Image) -> Image.Image:
    scale = (_WHOLE_SIZE / (image.width * image.height)) ** 0.5
    if scale >= 1:
        return image
    size = (max(8, round(image.width * scale)), max(8, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


@dataclass(frozen=True)
class _StyleDistances:
    anchored: bool  # measured on the character's own face (True) or on whole pictures
    palette: float
    contrast: float
    texture: float
    grain: float  # how much grainier the frame is than the reference (luminance steps)

    def score(self) -> float:
        if self.anchored:
            parts = (
                _map(self.palette, STYLE_PALETTE_POINTS),
                _map(self.contrast, STYLE_CONTRAST_POINTS),
                _map(self.texture, STYLE_TEXTURE_POINTS),
                _map(self.grain, STYLE_GRAIN_POINTS),
            )
        else:
            parts = (
                _map(self.palette, WHOLE_PALETTE_POINTS),
                _map(self.grain, STYLE_GRAIN_POINTS),
            )
        return 100.0 * float(np.prod([part / 100 for part in parts]))


def _style(
    frame_look: _Look,
    frame_grain: float,
    reference_look: _Look,
    reference_grain: float,
    *,
    anchored: bool,
) -> _StyleDistances:
    return _StyleDistances(
        anchored=anchored,
        palette=_bhattacharyya(frame_look.palette, reference_look.palette),
        contrast=abs(float(np.log((frame_look.deviation + 4) / (reference_look.deviation + 4)))),
        texture=max(
            _bhattacharyya(frame_look.gradients, reference_look.gradients),
            _bhattacharyya(frame_look.patterns, reference_look.patterns),
        ),
        grain=max(0.0, frame_grain - reference_grain),
    )


# Clothing: the region below a face, in face units (x from the face's centre, y from its
# bottom; one unit = the face's width across, its height down).
_BODY = (-1.5, 0.0, 1.5, 3.0)
_UNIT_PIXELS = 24  # the region is resampled to this many pixels per face unit


def _visible_body(box: tuple[float, float, float, float], size: tuple[int, int]):
    """The part of _BODY inside the picture, in face units, or None if too little shows."""
    left, top, right, bottom = box
    fw, fh = max(1.0, right - left), max(1.0, bottom - top)
    cx = (left + right) / 2
    x0 = max(_BODY[0], (0 - cx) / fw)
    x1 = min(_BODY[2], (size[0] - cx) / fw)
    y0 = max(_BODY[1], (0 - bottom) / fh)
    y1 = min(_BODY[3], (size[1] - bottom) / fh)
    if x1 - x0 < 1.0 or y1 - y0 < 0.5:
        return None
    return x0, y0, x1, y1


def _body_crop(image: Image.Image, box, units) -> Image.Image:
    left, top, right, bottom = box
    fw, fh = max(1.0, right - left), max(1.0, bottom - top)
    cx = (left + right) / 2
    x0, y0, x1, y1 = units
    crop = _inside((cx + x0 * fw, bottom + y0 * fh, cx + x1 * fw, bottom + y1 * fh), image.size)
    size = (max(4, round((x1 - x0) * _UNIT_PIXELS)), max(4, round((y1 - y0) * _UNIT_PIXELS)))
    return image.resize(size, Image.Resampling.BILINEAR, box=crop, reducing_gap=2.0)


def _centre_weights(units, size) -> np.ndarray:
    """Weights across the region: 1 below the face's centre, 0.37 a face width to the side
    (where the background often starts), 0.1 at the region's edges."""
    x0, _, x1, _ = units
    xs = np.linspace(x0, x1, size[0])
    weights = np.exp(-(xs**2))
    return np.broadcast_to(weights[None, :], (size[1], size[0]))


def _region_distances(a: Image.Image, b: Image.Image, weights: np.ndarray) -> tuple[float, float]:
    colour = _bhattacharyya(
        _colour_histogram(_colour_bins(np.asarray(a.convert("HSV"))), weights),
        _colour_histogram(_colour_bins(np.asarray(b.convert("HSV"))), weights),
    )
    texture = _bhattacharyya(
        _gradient_histogram(_luminance(np.asarray(a, dtype=np.float32)), weights),
        _gradient_histogram(_luminance(np.asarray(b, dtype=np.float32)), weights),
    )
    return colour, texture


def _clothing_score(distances: tuple[float, float]) -> float:
    colour, texture = distances
    return _map(colour, CLOTHING_COLOUR_POINTS) * _map(texture, CLOTHING_TEXTURE_POINTS) / 100


def _clothing_rank(distances: tuple[float, float]) -> tuple[float, float]:
    """Orders candidate matches: the better score, then (both at 0) the smaller distances."""
    return _clothing_score(distances), -sum(distances)


# --- References -----------------------------------------------------------------------------


def _scaled(image: Image.Image, width: int) -> Image.Image:
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.width <= width:
        return image
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)


@dataclass
class _Picture:
    """A reference picture or a frame, at the two working sizes."""

    detail: Image.Image  # at most DETAIL_WIDTH wide
    small: Image.Image  # at most DETECT_WIDTH wide
    grain: float  # the noise level of `small` (_grain)
    # What faces are looked for in: the same, smoothed when grainy (heavy grain hides small
    # faces from the HOG detector). They are described from the unsmoothed `detail`.
    seen_detail: Image.Image
    seen_small: Image.Image

    @classmethod
    def of(cls, image: Image.Image) -> _Picture:
        detail = _scaled(image, DETAIL_WIDTH)
        small = _scaled(detail, DETECT_WIDTH)
        grain = _grain(small)
        seen_detail, seen_small = detail, small
        if grain > GRAINY:
            radius = min(2.0, grain / GRAINY * 0.6)
            seen_small = small.filter(ImageFilter.GaussianBlur(radius))
            if detail is not small:
                ratio = detail.width / small.width
                seen_detail = detail.filter(ImageFilter.GaussianBlur(radius * ratio))
            else:
                seen_detail = seen_small
        return cls(
            detail=detail, small=small, grain=grain, seen_detail=seen_detail, seen_small=seen_small
        )

    def faces(
        self, models: _Models, limit: int, *, expected: int = 1, near: Sequence[Box] = ()
    ) -> list[tuple[Box, np.ndarray]]:
        """(box in `small` coordinates, descriptor) for up to `limit` faces, likeliest first.

        Looks first around the faces of the previous frame (`near`), each scaled to about
        100 px, which is cheap; then, if any is missing, over the whole picture at 640 px
        (upsampled once: faces from ~40 px); then, if fewer than `expected` were found,
        over the sharper picture (faces from ~20 px at 640), which costs four times more.
        """
        ratio = self.detail.width / self.small.width
        detail = np.asarray(self.detail)
        found: list[tuple[Box, float]] = []  # in `detail` coordinates
        if near:
            found = self._around(models, [_scale(box, ratio) for box in near])
            if len(found) < max(len(near), expected):  # one lost, or someone still missing
                found = []
        if not found:
            small = models.detect(np.asarray(self.seen_small), 1)
            found = [(_scale(box, ratio), score) for box, score in small]
            if len(found) < expected and ratio > 1.01:
                found = models.detect(np.asarray(self.seen_detail), 1)
        found = sorted(found, key=lambda item: -item[1])[:limit]
        faces = []
        for box, _score in found:
            descriptor, landmarks_box = models.describe(detail, tuple(round(v) for v in box))
            faces.append((_scale(landmarks_box, 1 / ratio), descriptor))
        return faces

    def _around(self, models: _Models, boxes: list[Box]) -> list[tuple[Box, float]]:
        """The likeliest face near each box (detail coordinates), found at ~100 px a face."""
        found: list[tuple[Box, float]] = []
        for left, top, right, bottom in boxes:
            width, height = right - left, bottom - top
            crop = (
                max(0.0, left - 1.5 * width),
                max(0.0, top - 1.5 * height),
                min(float(self.detail.width), right + 1.5 * width),
                min(float(self.detail.height), bottom + 1.5 * height),
            )
            factor = _TRACKED_FACE / max(1.0, width)
            size = (round((crop[2] - crop[0]) * factor), round((crop[3] - crop[1]) * factor))
            if min(size) < _TRACKED_FACE:
                continue
            region = self.seen_detail.resize(size, Image.Resampling.BILINEAR, box=crop)
            hits = models.detect(np.asarray(region), 0)
            if not hits:
                continue
            (x0, y0, x1, y1), score = hits[0]
            box = (
                crop[0] + x0 / factor,
                crop[1] + y0 / factor,
                crop[0] + x1 / factor,
                crop[1] + y1 / factor,
            )
            if all(_overlap(box, other) < 0.5 for other, _ in found):
                found.append((box, score))
        return found


Box = tuple[float, float, float, float]  # left, top, right, bottom
_TRACKED_FACE = 100  # px a face is scaled to when looked for around its last place


def _scale(box: Box, factor: float) -> Box:
    return (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor)


def _overlap(a: Box, b: Box) -> float:
    """Intersection over union."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


@dataclass
class _Reference:
    small: Image.Image
    face: Box | None
    descriptor: np.ndarray | None
    body: tuple[float, float, float, float] | None  # visible body region, face units
    face_look: _Look | None  # the look of the face area
    whole_look: _Look
    grain: float


@dataclass
class _Character:
    key: str
    name: str
    references: list[_Reference]

    @property
    def descriptors(self) -> list[np.ndarray]:
        return [r.descriptor for r in self.references if r.descriptor is not None]

    @property
    def has_face(self) -> bool:
        return any(r.descriptor is not None for r in self.references)


def _prepare(reference: CharacterReference, models: _Models) -> _Character:
    prepared = []
    for image in reference.images:
        picture = _Picture.of(image)
        faces = picture.faces(models, 1)
        face, descriptor, body, face_look = None, None, None, None
        if faces:
            face, descriptor = faces[0]
            body = _visible_body(face, picture.small.size)
            face_look = _look(_face_area(picture.small, face))
        prepared.append(
            _Reference(
                small=picture.small,
                face=face,
                descriptor=descriptor,
                body=body,
                face_look=face_look,
                whole_look=_look(_whole(picture.small)),
                grain=picture.grain,
            )
        )
    return _Character(key=reference.key, name=reference.name, references=prepared)


# --- Fallback clothing search (no face in the references) -----------------------------------

_SEARCH_WIDTH = 160
_REF_CENTRE = (0.2, 0.25, 0.8, 0.95)  # the references' central-lower region, as fractions


def _fallback_clothing(frame: Image.Image, character: _Character) -> tuple[float, float] | None:
    """The best (colour, texture) distance between any reference's centre and a frame window."""
    scale = _SEARCH_WIDTH / frame.width
    small = frame.resize(
        (_SEARCH_WIDTH, max(8, round(frame.height * scale))), Image.Resampling.BILINEAR
    )
    bins = _colour_bins(np.asarray(small.convert("HSV")))
    lum = _luminance(np.asarray(small, dtype=np.float32))
    best: tuple[float, float] | None = None
    for reference in character.references:
        ref = reference.small
        fx0, fy0, fx1, fy1 = _REF_CENTRE
        crop = (ref.width * fx0, ref.height * fy0, ref.width * fx1, ref.height * fy1)
        aspect = (crop[2] - crop[0]) / max(1.0, crop[3] - crop[1])
        for fraction in (0.45, 0.65, 0.85):
            wh = max(8, round(small.height * fraction))
            ww = min(small.width, max(8, round(wh * aspect)))
            patch = ref.resize((ww, wh), Image.Resampling.BILINEAR, box=crop, reducing_gap=2.0)
            ref_colour = _colour_histogram(_colour_bins(np.asarray(patch.convert("HSV"))))
            ref_texture = _gradient_histogram(_luminance(np.asarray(patch, dtype=np.float32)))
            step_x, step_y = max(1, ww // 4), max(1, wh // 4)
            for y in range(0, small.height - wh + 1, step_y):
                for x in range(0, small.width - ww + 1, step_x):
                    colour = _bhattacharyya(
                        ref_colour, _colour_histogram(bins[y : y + wh, x : x + ww])
                    )
                    texture = _bhattacharyya(
                        ref_texture, _gradient_histogram(lum[y : y + wh, x : x + ww])
                    )
                    if best is None or _clothing_rank((colour, texture)) > _clothing_rank(best):
                        best = (colour, texture)
    return best


# --- The scorer -----------------------------------------------------------------------------


@dataclass
class _Track:
    """One character's scores over the frames."""

    frames: list[FrameScore] = field(default_factory=list)
    raw: list[dict] = field(default_factory=list)  # raw distances, for calibration


class DlibScorer:
    """Scores a take on the CPU with dlib and colour/texture statistics (see the module doc)."""

    name = NAME

    def __init__(self, *, interval: float = 0.5, max_frames: int = 24) -> None:
        self.interval = interval
        self.max_frames = max_frames

    def score(self, video: str | BinaryIO, references: Sequence[CharacterReference]) -> ScoreResult:
        return self.measure(video, references)[0]

    def measure(
        self, video: str | BinaryIO, references: Sequence[CharacterReference]
    ) -> tuple[ScoreResult, dict[str, list[dict]]]:
        """The score, and per character key the raw distances of each frame (calibration)."""
        started = time.process_time()
        if not references:
            raise ValueError("Scoring needs at least one character reference.")
        models = _models()
        characters = [_prepare(reference, models) for reference in references]
        with_faces = [c for c in characters if c.has_face]
        tracks = [_Track() for _ in characters]
        thumbnails: list[Image.Image] = []
        near: list[Box] = []  # where the characters' faces were in the previous sample
        with VideoFrames(
            video, interval=self.interval, limit=self.max_frames, max_width=DETAIL_WIDTH
        ) as frames:
            for sample in frames:
                picture = _Picture.of(sample.image)
                faces = []
                if with_faces:
                    faces = picture.faces(
                        models,
                        min(MAX_FACES, len(with_faces) + 1),
                        expected=len(with_faces),
                        near=near,
                    )
                assigned = _assign(characters, faces)
                near = [box for box, _distance in assigned.values()]
                whole_look = _look(_whole(picture.small))
                grain = picture.grain
                for number, (character, track) in enumerate(zip(characters, tracks, strict=True)):
                    score, raw = _score_frame(
                        character,
                        picture,
                        assigned.get(number),
                        whole_look,
                        grain,
                        sample.seconds,
                    )
                    track.frames.append(score)
                    track.raw.append(raw)
                thumbnails.append(_scaled(picture.small, THUMBNAIL_WIDTH))
            video_seconds = frames.seconds
        if not thumbnails:
            raise ScoringError("No frame of the video could be sampled.")
        results = tuple(
            _result(character, track, thumbnails)
            for character, track in zip(characters, tracks, strict=True)
        )
        raw = {
            character.key: track.raw for character, track in zip(characters, tracks, strict=True)
        }
        return ScoreResult(
            scorer=self.name,
            characters=results,
            frames_sampled=len(thumbnails),
            video_seconds=round(video_seconds, 3),
            cpu_seconds=round(time.process_time() - started, 3),
        ), raw


def _assign(characters: list[_Character], faces) -> dict[int, tuple[Box, float]]:
    """Greedy: the closest (character, face) pair first, each used once.

    Returns {index in `characters`: (face box, distance)}; characters without reference
    faces take no part.
    """
    pairs = []
    for number, character in enumerate(characters):
        if not character.has_face:
            continue
        for index, (_box, descriptor) in enumerate(faces):
            distance = min(float(np.linalg.norm(descriptor - ref)) for ref in character.descriptors)
            pairs.append((distance, number, index))
    pairs.sort()
    assigned: dict[int, tuple[Box, float]] = {}
    taken_faces: set[int] = set()
    for distance, number, index in pairs:
        if number in assigned or index in taken_faces:
            continue
        taken_faces.add(index)
        assigned[number] = (faces[index][0], distance)
    return assigned


def _score_frame(
    character: _Character,
    picture: _Picture,
    match,
    whole_look: _Look,
    grain: float,
    seconds: float,
):
    raw: dict = {"seconds": seconds}
    face_score = clothing_score = None
    recognised = False
    if character.has_face:
        if match is not None:
            box, distance = match
            raw["face"] = distance
            face_score = _map(distance, FACE_POINTS)
            recognised = distance < SAME_PERSON
            visible = _visible_body(box, picture.small.size)
            best = None
            if visible is not None:
                for reference in character.references:
                    if reference.body is None:
                        continue
                    units = (
                        max(visible[0], reference.body[0]),
                        max(visible[1], reference.body[1]),
                        min(visible[2], reference.body[2]),
                        min(visible[3], reference.body[3]),
                    )
                    if units[2] - units[0] < 1.0 or units[3] - units[1] < 0.5:
                        continue
                    mine = _body_crop(picture.small, box, units)
                    theirs = _body_crop(reference.small, reference.face, units)
                    distances = _region_distances(mine, theirs, _centre_weights(units, mine.size))
                    if best is None or _clothing_rank(distances) > _clothing_rank(best):
                        best = distances
            if best is not None:
                raw["clothing"] = best
                clothing_score = _clothing_score(best)
    else:
        best = _fallback_clothing(picture.small, character)
        if best is not None:
            raw["clothing"] = best
            clothing_score = _clothing_score(best)
            recognised = clothing_score >= CLOTHING_RECOGNISED
    styles = []
    if recognised and character.has_face:
        # Anchored on the character's own face: the same content in the frame and the
        # references, so what differs is the look (grading, contrast, texture), not the scene.
        face_look = _look(_face_area(picture.small, match[0]))
        styles = [
            _style(face_look, grain, r.face_look, r.grain, anchored=True)
            for r in character.references
            if r.face_look is not None
        ]
    if not styles:
        styles = [
            _style(whole_look, grain, r.whole_look, r.grain, anchored=False)
            for r in character.references
        ]
    style_score = None
    if styles:  # none without reference pictures
        style = max(styles, key=_StyleDistances.score)
        raw["style"] = style
        style_score = style.score()

    def rounded(value):
        return None if value is None else round(value, 1)

    return (
        FrameScore(
            seconds=seconds,
            face=rounded(face_score),
            clothing=rounded(clothing_score),
            style=rounded(style_score),
            recognised=recognised,
        ),
        raw,
    )


def _result(character: _Character, track: _Track, thumbnails: list[Image.Image]) -> CharacterResult:
    frames = track.frames
    notes: list[str] = []
    if not character.references:
        notes.append(f"{character.name} has no reference pictures, so nothing is scored.")
    elif not character.has_face:
        notes.append("No face found in the references, so face identity is not scored.")
        notes.append(
            "Without a face to follow, clothing compares the middle of the references with "
            "the part of each frame that looks most like it."
        )
    else:
        faceless = sum(1 for r in character.references if r.descriptor is None)
        if faceless:
            notes.append(
                f"No face found in {faceless} of {len(character.references)} reference "
                "pictures; they count for style only."
            )
        missing = sum(1 for f in frames if f.face is None)
        if frames and missing == len(frames):
            notes.append(
                f"No face was found in the take, so face identity is not scored "
                f"and {character.name} is not recognised in any frame."
            )
        elif missing:
            notes.append(
                f"{character.name}'s face was not found in {missing} of {len(frames)} "
                "sampled frames; those frames have no face or clothing score."
            )

    def mean(axis: str) -> float | None:
        values = [getattr(f, axis) for f in frames if getattr(f, axis) is not None]
        return round(sum(values) / len(values), 1) if values else None

    worst = []
    for axis in AXES:
        scored = [
            (getattr(f, axis), i) for i, f in enumerate(frames) if getattr(f, axis) is not None
        ]
        scored.sort()
        for value, index in scored[:2]:
            worst.append(
                WorstFrame(
                    axis=axis,
                    seconds=frames[index].seconds,
                    score=value,
                    jpeg=_jpeg(thumbnails[index]),
                )
            )
    return CharacterResult(
        key=character.key,
        face=mean("face"),
        clothing=mean("clothing"),
        style=mean("style"),
        persistence=round(sum(f.recognised for f in frames) / len(frames), 3) if frames else 0.0,
        frames=tuple(frames),
        worst=tuple(worst),
        notes=tuple(notes),
    )


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()
