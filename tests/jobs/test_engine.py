"""The engine's entry point (jobs.engine) fed plain data: what it fits a request to at each
kind of account, what it charges, what it refuses, and what goes over the wire."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs import engine
from jobs.emulators.base import RunningEmulator, serve
from jobs.emulators.seedance import SeedanceEmulator
from jobs.models import PriceEntry, PriceUnit, ProviderAccount, Registration
from jobs.services import account_save
from tests.jobs.factories import ProviderAccountFactory
from tests.samples import clip_bytes, image_bytes
from tests.support.engine import EMULATOR_FPS, EMULATOR_LATENCY


def _clip(name: str, seconds: float) -> engine.Asset:
    return engine.Asset(file=name, kind=engine.VIDEO, content_type="video/mp4", seconds=seconds)


def _image(name: str) -> engine.Asset:
    return engine.Asset(file=name, kind=engine.IMAGE, content_type="image/png")


def _member(n: int, name: str, *, images=(), clips=()) -> engine.CastMember:
    return engine.CastMember(
        subject=f"character:{n}",
        name=name,
        handle=name.lower(),
        images=tuple(images),
        clips=tuple(clips),
    )


def _request(*cast: engine.CastMember, seconds: int = 8) -> engine.JobRequest:
    prompt = " and ".join(engine.placeholder(m.subject) for m in cast) or "The sea"
    return engine.JobRequest(
        kind=engine.GENERATE,
        prompt=f"{prompt} at dusk.",
        seconds=seconds,
        size="1280x720",
        cast=cast,
    )


# --- Quotes at an account that keeps characters ----------------------------------------------


@pytest.fixture
def openai(workspace):
    return ProviderAccountFactory(workspace=workspace, name="OpenAI", kind="openai")


@pytest.fixture
def seedance(workspace):
    return ProviderAccountFactory(workspace=workspace, name="Seedance", kind="seedance", model="")


@pytest.mark.django_db
def test_at_openai_each_member_registers_from_the_clip_that_fits_its_window(openai):
    long_take, short_take = _clip("mina/long.mp4", 9.0), _clip("mina/short.mp4", 3.0)
    mina = _member(1, "Mina", images=[_image("mina/front.png")], clips=[long_take, short_take])
    cy = _member(2, "Cy", clips=[_clip("cy/long.mp4", 12.0)])  # only longer: cut to 4 s

    quote = engine.quote(_request(mina, cy), openai)

    assert quote.problems == []
    clips = quote.fit.registration_clips
    assert [(c.subject, c.asset.file) for c in clips] == [
        ("character:1", "mina/short.mp4"),
        ("character:2", "cy/long.mp4"),
    ]
    assert quote.fit.references == ()  # nothing travels with the create itself
    assert quote.degraded_note == ""
    assert quote.estimate == Decimal("0.8000")  # 8 s at $0.10; registering is free here


@pytest.mark.django_db
def test_at_openai_the_price_counts_only_the_characters_still_to_register(openai):
    PriceEntry.objects.update_or_create(
        provider_kind="openai",
        model="",
        size="",
        unit=PriceUnit.CHARACTER,
        defaults={"amount": Decimal("0.05")},
    )
    mina = _member(1, "Mina", clips=[_clip("mina/short.mp4", 3.0)])
    cy = _member(2, "Cy", clips=[_clip("cy/short.mp4", 2.5)])
    Registration.objects.create(provider_account=openai, subject="character:2", external_id="c_2")

    quote = engine.quote(_request(mina, cy), openai)

    assert quote.estimate == Decimal("0.8500")  # 8 s at $0.10, and Mina at $0.05
    # Cy's clip still travels, in case OpenAI has lost him by the time the take is sent.
    assert [c.subject for c in quote.fit.registration_clips] == ["character:1", "character:2"]


@pytest.mark.django_db
def test_at_openai_a_member_without_a_clip_and_a_length_it_does_not_make_are_refused(openai):
    pip = _member(3, "Pip", images=[_image("pip/front.png")])

    quote = engine.quote(_request(pip, seconds=5), openai)

    assert quote.problems == [
        "OpenAI makes videos of 4, 8, 12 seconds; this scene asks for 5.",
        "Pip (@pip) has no reference clip of at least 2 s; OpenAI makes characters from a "
        "2-4 s clip. Add one in the character library.",
    ]


# --- Quotes at an account that keeps none ----------------------------------------------------


@pytest.mark.django_db
def test_at_seedance_the_cast_travels_as_its_first_images_and_a_fitting_clip(seedance):
    mina = _member(
        1,
        "Mina",
        images=[_image(f"mina/{n}.png") for n in range(6)],
        clips=[_clip("mina/long.mp4", 20.0), _clip("mina/short.mp4", 3.0)],
    )
    cy = _member(2, "Cy", images=[_image("cy/front.png")])

    quote = engine.quote(_request(mina, cy), seedance)

    assert quote.problems == []
    # Nine images between two: four each at most, the library's first; one clip, in window.
    assert [(r.subject, r.asset.file) for r in quote.fit.references] == [
        ("character:1", "mina/0.png"),
        ("character:1", "mina/1.png"),
        ("character:1", "mina/2.png"),
        ("character:1", "mina/3.png"),
        ("character:1", "mina/short.mp4"),
        ("character:2", "cy/front.png"),
    ]
    assert quote.fit.registration_clips == ()
    assert quote.degraded_note == (
        "Mina, Cy travel as 5 reference images and 1 clip: Seedance has no saved characters, "
        "so consistency rests on the references."
    )
    assert quote.estimate == Decimal("0.6613")  # 172,800 tokens for 8 s at 1280x720


@pytest.mark.django_db
def test_at_seedance_a_member_with_nothing_to_show_is_refused(seedance):
    pip = _member(3, "Pip", clips=[_clip("pip/long.mp4", 40.0)])  # longer than it takes

    quote = engine.quote(_request(pip), seedance)

    assert quote.problems == [
        "Seedance has no saved characters, so it needs a reference image of "
        "Pip (@pip); add one in the character library."
    ]


@pytest.mark.django_db
def test_routes_rank_the_quotes_and_carry_the_others_as_fallbacks(openai, seedance):
    mina = _member(1, "Mina", images=[_image("mina/front.png")], clips=[_clip("m.mp4", 3.0)])

    routes = engine.routes(_request(mina), accounts=[openai, seedance], policy="cost")

    assert routes.chosen.account == seedance  # about $0.66 against $0.80
    (fallback,) = routes.fallbacks()
    assert (fallback.account_id, fallback.estimate) == (openai.pk, Decimal("0.8000"))
    assert fallback.fit == routes.quotes[openai.pk].fit


@pytest.mark.django_db
def test_a_request_that_could_not_be_built_is_refused_everywhere_for_the_same_reason(
    openai, seedance
):
    routes = engine.routes(
        None, accounts=[openai, seedance], policy="cost", problems=["@nobody is unknown."]
    )
    assert routes.chosen is None
    assert [why for _, why in routes.ranking.excluded] == ["@nobody is unknown."] * 2


@pytest.mark.django_db
def test_a_quote_with_problems_starts_nothing(openai):
    quote = engine.quote(_request(seconds=5), openai)
    with pytest.raises(ValueError, match="cannot go to OpenAI"):
        engine.start(quote, policy="manual", reason="By hand.")


# --- What goes over the wire -----------------------------------------------------------------


def _stored(name: str, data: bytes) -> str:
    return default_storage.save(name, ContentFile(data))


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_job_started_from_plain_data_sends_openai_the_body_it_always_did(studio, wait_for_job):
    clip = _stored("cast/mina.mp4", clip_bytes(seconds=3.0))
    mina = _member(1, "Mina", clips=[_clip(clip, 3.0)])
    request = engine.JobRequest(
        kind=engine.GENERATE,
        prompt=f"{engine.placeholder(mina.subject)} walks in.",
        seconds=4,
        size="1280x720",
        cast=(mina,),
    )
    job = engine.start(
        engine.quote(request, studio["accounts"]["openai"]), policy="manual", reason="By hand."
    )

    job = wait_for_job(job)

    assert job.state == "succeeded", job.error_message
    registration = Registration.objects.get(subject="character:1")
    assert registration.source == clip
    assert job.sent_payload == {
        "prompt": "Mina walks in.",
        "seconds": "4",
        "size": "1280x720",
        "model": "sora-2",
        "characters": [{"id": registration.external_id}],
    }
    assert job.cost_actual == Decimal("0.4000")


@pytest.fixture
def seedance_emulator() -> Iterator[RunningEmulator]:
    running = serve(SeedanceEmulator(latency_seconds=EMULATOR_LATENCY, fps=EMULATOR_FPS))
    yield running
    running.stop()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_job_started_from_plain_data_sends_seedance_the_body_it_always_did(
    studio, seedance_emulator, wait_for_job, live_server
):
    account = account_save(
        account=ProviderAccount(
            workspace=studio["workspace"],
            name="Seedance",
            kind="seedance",
            base_url=seedance_emulator.api_url,
        ),
        api_key="ark-test-1234",
    )
    picture = _stored("cast/mina.png", image_bytes("PNG", size=(64, 64)))
    clip = _stored("cast/mina.mp4", clip_bytes(seconds=3.0))
    mina = _member(1, "Mina", images=[_image(picture)], clips=[_clip(clip, 3.0)])
    request = engine.JobRequest(
        kind=engine.GENERATE,
        prompt=f"{engine.placeholder(mina.subject)} looks out to sea.",
        seconds=5,
        size="1280x720",
        cast=(mina,),
    )
    job = engine.start(engine.quote(request, account), policy="manual", reason="By hand.")
    assert job.routing["degraded"] is True

    job = wait_for_job(job)

    assert job.state == "succeeded", job.error_message
    sent = job.sent_payload
    urls = [item.pop(item["type"])["url"] for item in sent["content"][1:]]
    assert sent == {
        "model": "dreamina-seedance-2-0-260128",
        "content": [
            {"type": "text", "text": "Mina (image 1) looks out to sea."},
            {"type": "image_url", "role": "reference_image"},
            {"type": "video_url", "role": "reference_video"},
        ],
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 5,
        "watermark": False,
    }
    assert all(url.startswith(f"{live_server.url}/") for url in urls)
    assert not Registration.objects.exists()  # Seedance keeps no characters
