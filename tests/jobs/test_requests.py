"""The engine's typed request (jobs.requests): what survives a trip through Job.request, and
what a wrong shape is told."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from jobs import engine
from jobs.models import JobKind
from jobs.providers.base import PLACEHOLDER
from jobs.requests import (
    KINDS,
    Asset,
    CastAsset,
    CastMember,
    Fallback,
    Fit,
    FittedRequest,
    Frame,
    JobRequest,
    RequestShapeError,
)

MINA_FRONT = Asset(file="characters/1/front.png", kind="image", content_type="image/png")
MINA_CLIP = Asset(file="characters/1/walk.mp4", kind="video", content_type="video/mp4", seconds=3.0)
DAWN = Asset(file="scenes/1/frames/dawn.png", kind="image", content_type="image/png")
MINA = CastMember(
    subject="character:1",
    name="Mina",
    handle="mina",
    description="A keeper in a yellow coat.",
    images=(MINA_FRONT,),
    clips=(MINA_CLIP,),
)


def _fitted() -> FittedRequest:
    """At OpenAI (Mina registered from her clip), falling back to Seedance (as references)."""
    request = JobRequest(
        kind="generate",
        prompt="{{character:1}} waves.\n\nStyle: Watercolour.",
        seconds=8,
        size="1280x720",
        cast=(MINA,),
        frames=(Frame(position="first", asset=DAWN),),
    )
    at_seedance = Fit(
        references=(
            CastAsset(subject="character:1", asset=MINA_FRONT),
            CastAsset(subject="character:1", asset=MINA_CLIP),
        ),
        degraded_note="Mina travels as 1 reference image and 1 clip.",
    )
    return FittedRequest(
        request=request,
        fit=Fit(registration_clips=(CastAsset(subject="character:1", asset=MINA_CLIP),)),
        fallbacks=(Fallback(account_id=7, estimate=Decimal("0.6612"), fit=at_seedance),),
    )


# --- Round trips -----------------------------------------------------------------------------


def test_a_fitted_request_survives_json_unchanged():
    fitted = _fitted()
    stored = json.loads(json.dumps(fitted.to_dict(), allow_nan=False))
    assert FittedRequest.from_dict(stored) == fitted
    assert stored["version"] == 3
    assert stored["frames"][0]["position"] == "first"
    assert stored["fallbacks"][0]["estimate"] == "0.6612"  # money as text, never a float


def test_a_job_request_alone_survives_json_unchanged():
    request = _fitted().request
    assert JobRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request


def test_a_whole_number_of_seconds_reads_back_as_the_same_clip():
    stored = MINA_CLIP.to_dict() | {"seconds": 3}
    assert Asset.from_dict(stored) == MINA_CLIP


def test_the_request_is_the_same_at_every_account_only_the_fit_moves():
    fitted = _fitted()
    moved = fitted.falling_back(0, leaving_account_id=3, leaving_estimate=Decimal("0.8000"))
    assert moved.request == fitted.request
    assert moved.fit == fitted.fallbacks[0].fit
    assert moved.fallbacks == (Fallback(account_id=3, estimate=Decimal("0.8000"), fit=fitted.fit),)


def test_the_engine_kinds_are_the_jobs_kinds():
    assert set(KINDS) == set(JobKind.values)


def test_a_placeholder_is_what_providers_render():
    text = engine.placeholder("character:12")
    assert text == "{{character:12}}"
    assert PLACEHOLDER.fullmatch(text).group(1) == "character:12"
    with pytest.raises(ValueError, match="cannot be named in a prompt"):
        engine.placeholder("Mina")


# --- Strict reading --------------------------------------------------------------------------


def _broken(change) -> dict:
    stored = _fitted().to_dict()
    change(stored)
    return stored


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda d: d.pop("prompt"), "job request: missing prompt"),
        (lambda d: d.update(characters=[]), r"job request: unknown key\(s\) characters"),
        (lambda d: d.update(version=1), "job request.version: this engine reads version 3"),
        (lambda d: d.pop("frames"), "job request: missing frames"),
        (
            lambda d: d["frames"][0].update(position="middle"),
            r"job request.frames\[0\]: a frame is first or last, not 'middle'",
        ),
        (
            lambda d: d["frames"][0].update(asset=MINA_CLIP.to_dict()),
            r"frames\[0\]: the first frame must be an image",
        ),
        (lambda d: d["frames"].append(d["frames"][0]), "one first frame and one last frame"),
        (lambda d: d.pop("version"), "job request: missing version"),
        (lambda d: d.update(seconds="8"), "job request.seconds: expected a whole number"),
        (lambda d: d.update(seconds=True), "job request.seconds: expected a whole number"),
        (lambda d: d.update(kind="dance"), "job request: kind must be one of generate"),
        (lambda d: d.update(cast={}), "job request.cast: expected a list"),
        (
            lambda d: d["cast"][0]["images"][0].update(kind="clip"),
            r"job request.cast\[0\].images\[0\]: "
            r"an asset is an image, a video or audio, not 'clip'",
        ),
        (
            lambda d: d["cast"][0]["images"][0].update(seconds=2.0),
            r"cast\[0\].images\[0\]: an image has no length in seconds",
        ),
        (
            lambda d: d["cast"][0]["clips"][0].update(seconds=-1),
            r"cast\[0\].clips\[0\]: a clip cannot last -1.0 seconds",
        ),
        (
            lambda d: d["cast"][0]["clips"].append(d["cast"][0]["images"][0]),
            r"job request.cast\[0\]: cast member character:1: its clips must be videos",
        ),
        (lambda d: d["cast"].append(d["cast"][0]), "each cast member may appear once"),
        (lambda d: d["cast"][0].update(name=""), "cast member character:1 has no name"),
        (
            lambda d: d["fit"]["references"].append(
                {"subject": "character:9", "asset": MINA_FRONT.to_dict()}
            ),
            "character:9 travel",
        ),
        (lambda d: d.update(fit=[]), "fit: expected an object, got list"),
        (
            lambda d: d["fallbacks"][0].update(estimate="lots"),
            r"fallbacks\[0\].estimate: not an amount: 'lots'",
        ),
        (
            lambda d: d["fallbacks"][0].update(account_id="7"),
            r"fallbacks\[0\].account_id: expected a whole number",
        ),
        (
            lambda d: d["fallbacks"].append(d["fallbacks"][0]),
            "each fallback account may appear once",
        ),
        (
            lambda d: d.update(kind="remix", source_provider_job_id="video_1"),
            "only a new video starts or ends on given frames",
        ),
        (
            lambda d: d.update(kind="remix", frames=[]),
            "a remix or an extension names the provider's job",
        ),
        (lambda d: d.update(kind="register_character", cast=[]), "registers exactly one"),
    ],
)
def test_a_wrong_shape_is_refused_saying_where(change, said):
    with pytest.raises(RequestShapeError, match=said):
        FittedRequest.from_dict(_broken(change))


def test_a_refusal_is_a_value_error():
    with pytest.raises(ValueError, match="expected an object, got str"):
        FittedRequest.from_dict("prompt")


def test_an_invalid_value_is_refused_when_it_is_built_too():
    with pytest.raises(RequestShapeError, match="a registration clip must be a video"):
        Fit(registration_clips=(CastAsset(subject="character:1", asset=MINA_FRONT),))
    with pytest.raises(RequestShapeError, match="estimate cannot be"):
        Fallback(account_id=1, estimate=Decimal("-1"))
