"""The data migrations of stored requests: to typed requests (jobs 0007), then version 2
(frames, 0012) and version 3 (dialogue and voices, 0013). A job stored before them, in the old
untyped shape, reads the same afterwards, and migrating back gives the old shape again."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from jobs.models import Job
from jobs.requests import Asset, CastAsset, FittedRequest
from tests.jobs.factories import ProviderAccountFactory

migration = importlib.import_module("jobs.migrations.0007_typed_job_requests")
frames_migration = importlib.import_module("jobs.migrations.0012_request_frames")
speech_migration = importlib.import_module("jobs.migrations.0013_speech")

BEFORE = ("jobs", "0006_job_claimed_by")  # the last migration before typed requests

# As studio.generation wrote them before: at OpenAI, Mina registered from her clip, with
# Seedance to fall back to, where she travels as her references.
AT_SEEDANCE = {
    "kind": "generate",
    "prompt": "{{character:1}} waves.",
    "seconds": 8,
    "size": "1280x720",
    "characters": [
        {"subject": "character:1", "name": "Mina", "handle": "mina", "as_references": True}
    ],
    "references": [
        {
            "file": "c/1/front.png",
            "kind": "image",
            "content_type": "image/png",
            "subject": "character:1",
            "name": "mina",
        },
        {
            "file": "c/1/walk.mp4",
            "kind": "video",
            "content_type": "video/mp4",
            "subject": "character:1",
            "name": "mina",
        },
    ],
}
NOTE = "Mina travels as 1 reference image and 1 clip: Seedance has no saved characters."
AT_OPENAI = {
    "kind": "generate",
    "prompt": "{{character:1}} waves.",
    "seconds": 8,
    "size": "1280x720",
    "characters": [
        {
            "subject": "character:1",
            "name": "Mina",
            "handle": "mina",
            "description": "A keeper in a yellow coat.",
            "clip": "c/1/walk.mp4",
            "clip_seconds": 3.0,
        }
    ],
}
WITH_FALLBACK = {
    **AT_OPENAI,
    "fallbacks": [
        {
            "account_id": 7,
            "estimate": "0.6612",
            "request": AT_SEEDANCE,
            "degraded": True,
            "degraded_note": NOTE,
        }
    ],
}


def _read(old: dict, *, kind: str = "generate", degraded_note: str = "") -> FittedRequest:
    """An old request as the engine reads it after every migration since (0007, 0012, 0013)."""
    version_1 = migration.converted(old, kind=kind, degraded_note=degraded_note)
    version_2 = frames_migration.upgraded(version_1)
    return FittedRequest.from_dict(speech_migration.upgraded(version_2))


def test_a_take_at_a_provider_with_characters_keeps_its_prompt_cast_and_clip():
    fitted = _read(WITH_FALLBACK)
    request = fitted.request
    assert (request.kind, request.prompt, request.seconds, request.size) == (
        "generate",
        "{{character:1}} waves.",
        8,
        "1280x720",
    )
    (mina,) = request.cast
    assert (mina.subject, mina.name, mina.handle, mina.description) == (
        "character:1",
        "Mina",
        "mina",
        "A keeper in a yellow coat.",
    )
    clip = fitted.fit.registration_clip("character:1")
    assert (clip.file, clip.seconds) == ("c/1/walk.mp4", 3.0)
    assert fitted.fit.references == ()
    assert not fitted.fit.degraded


def test_its_fallback_keeps_its_account_price_references_and_note():
    (fallback,) = _read(WITH_FALLBACK).fallbacks
    assert (fallback.account_id, fallback.estimate) == (7, Decimal("0.6612"))
    assert fallback.fit.references == (
        CastAsset("character:1", Asset("c/1/front.png", "image", "image/png")),
        CastAsset("character:1", Asset("c/1/walk.mp4", "video", "video/mp4")),
    )
    assert fallback.degraded_note == NOTE
    # Her references join the cast, so either fit can be read from the one request.
    (mina,) = _read(WITH_FALLBACK).request.cast
    assert [a.file for a in mina.images] == ["c/1/front.png"]
    assert [a.file for a in mina.clips] == ["c/1/walk.mp4"]


def test_a_take_sent_as_references_keeps_them_in_order_with_the_jobs_own_note():
    fitted = _read(AT_SEEDANCE, degraded_note=NOTE)
    assert [(r.subject, r.asset.kind) for r in fitted.fit.references] == [
        ("character:1", "image"),
        ("character:1", "video"),
    ]
    assert fitted.fit.degraded_note == NOTE


def test_a_registration_from_a_clip_and_one_from_a_finished_job():
    from_clip = _read(
        {
            "kind": "register_character",
            "character": {
                "subject": "character:4",
                "name": "Pip",
                "clip": "c/4/span.mp4",
                "clip_seconds": 2.5,
            },
        },
        kind="register_character",
    )
    (pip,) = from_clip.request.cast
    assert from_clip.request.kind == "register_character"
    assert from_clip.fit.registration_clip(pip.subject).file == "c/4/span.mp4"

    from_job = _read(
        {
            "kind": "register_character",
            "character": {"subject": "character:4", "name": "Pip", "from_provider_job_id": "t_9"},
        },
        kind="register_character",
    )
    assert from_job.request.cast[0].from_provider_job_id == "t_9"
    assert from_job.fit.registration_clips == ()


def test_a_remix_keeps_its_source_and_a_request_without_a_kind_takes_the_jobs():
    remix = _read(
        {
            "kind": "remix",
            "prompt": "At night.",
            "seconds": 8,
            "size": "1280x720",
            "characters": [],
            "source_provider_job_id": "video_1",
        }
    )
    assert (remix.request.kind, remix.request.source_provider_job_id) == ("remix", "video_1")
    untyped = _read(
        {"prompt": "Further.", "seconds": 4, "size": "", "source_provider_job_id": "video_1"},
        kind="extend",
    )
    assert untyped.request.kind == "extend"


def test_a_converted_request_is_left_as_it_is():
    new = migration.converted(WITH_FALLBACK, kind="generate")
    assert migration.converted(new, kind="generate") is new


@pytest.mark.parametrize(
    "old",
    [
        AT_OPENAI | {"fallbacks": []},
        {
            "kind": "register_character",
            "character": {"subject": "character:4", "name": "Pip", "from_provider_job_id": "t_9"},
        },
    ],
)
def test_migrating_back_gives_the_old_shape(old):
    kind = old["kind"]
    assert migration.reverted(migration.converted(old, kind=kind)) == old


def test_migrating_back_keeps_what_the_old_code_read_of_references():
    back = migration.reverted(migration.converted(AT_SEEDANCE, kind="generate"))
    assert back["references"] == AT_SEEDANCE["references"]
    assert back["prompt"] == AT_SEEDANCE["prompt"]


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_change_is_migrated_and_its_jobs_read():
    account = ProviderAccountFactory()
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    try:
        old_apps = executor.loader.project_state([BEFORE]).apps
        OldJob = old_apps.get_model("jobs", "Job")
        job_id = OldJob.objects.create(
            workspace_id=account.workspace_id,
            provider_account_id=account.pk,
            request=WITH_FALLBACK,
            routing={"policy": "cost", "degraded": False, "degraded_note": ""},
        ).pk
    finally:
        _migrate_to_the_latest()

    job = Job.objects.get(pk=job_id)
    assert job.job_request == _read(WITH_FALLBACK)
    assert job.prompt_to_send == "@mina waves."

    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    try:
        old_apps = executor.loader.project_state([BEFORE]).apps
        back = old_apps.get_model("jobs", "Job").objects.get(pk=job_id).request
        assert back["prompt"] == WITH_FALLBACK["prompt"]
        assert back["characters"][0]["clip"] == "c/1/walk.mp4"
        assert back["fallbacks"][0]["request"]["references"] == AT_SEEDANCE["references"]
    finally:
        _migrate_to_the_latest()


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_speech_jobs_is_migrated_and_back():
    account = ProviderAccountFactory()
    before = ("jobs", "0012_request_frames")
    version_2 = frames_migration.upgraded(migration.converted(WITH_FALLBACK, kind="generate"))
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    try:
        OldJob = executor.loader.project_state([before]).apps.get_model("jobs", "Job")
        job_id = OldJob.objects.create(
            workspace_id=account.workspace_id,
            provider_account_id=account.pk,
            request=version_2,
            routing={"policy": "cost", "degraded": False, "degraded_note": ""},
        ).pk
    finally:
        _migrate_to_the_latest()

    job = Job.objects.get(pk=job_id)
    assert job.request["version"] == 3
    assert job.job_request == _read(WITH_FALLBACK)

    executor = MigrationExecutor(connection)
    executor.migrate([before])
    try:
        OldJob = executor.loader.project_state([before]).apps.get_model("jobs", "Job")
        assert OldJob.objects.get(pk=job_id).request == version_2
    finally:
        _migrate_to_the_latest()


def _migrate_to_the_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_a_version_1_request_gains_no_frames_and_goes_back_unchanged():
    version_1 = migration.converted(WITH_FALLBACK, kind="generate")

    version_2 = frames_migration.upgraded(version_1)

    assert FittedRequest.from_dict(speech_migration.upgraded(version_2)).request.frames == ()
    assert frames_migration.downgraded(version_2) == version_1
    assert frames_migration.upgraded(version_2) is version_2


def test_a_version_2_request_gains_no_dialogue_nor_voice_and_goes_back_unchanged():
    version_2 = frames_migration.upgraded(migration.converted(WITH_FALLBACK, kind="generate"))

    version_3 = speech_migration.upgraded(version_2)

    request = FittedRequest.from_dict(version_3).request
    assert (request.dialogue, request.voice) == ((), None)
    assert speech_migration.downgraded(version_3) == version_2
    assert speech_migration.upgraded(version_3) is version_3


def test_going_back_drops_dialogue_the_older_code_never_sent_and_keeps_a_speech_job():
    version_3 = speech_migration.upgraded(
        frames_migration.upgraded(migration.converted(AT_OPENAI, kind="generate"))
    )
    spoken = {**version_3, "dialogue": [{"subject": "character:1", "text": "Hi.", "start": 1.0}]}
    speech = {
        **version_3,
        "kind": "speech",
        "prompt": "Hi.",
        "voice": {
            "subject": "voice:character:1:v1",
            "name": "Mina",
            "voice_id": "v",
            "sample": None,
        },
    }

    back = speech_migration.downgraded(spoken)

    assert back["version"] == 2
    assert "dialogue" not in back
    assert "voice" not in back
    assert back["prompt"] == spoken["prompt"]
    assert speech_migration.downgraded(speech) is speech
