"""Speech jobs (ElevenLabs-style text to speech) and their audio; Job.request moves to
version 3 of jobs.requests: a video may carry dialogue, and a speech job names its voice. A
version-2 request had neither, so it gains `"dialogue": []` and `"voice": null`; going back,
a request with dialogue loses it (the older code sent none) and a speech job's stays as it
is (the older code cannot read it, and no older code made one).

The rewrite works on plain dicts, so it stays what it was when jobs.requests changes later.
"""

from __future__ import annotations

from django.db import migrations, models

import jobs.models

_BATCH = 500


def upgraded(request: dict) -> dict:
    """A version-2 request as version 3; anything else (empty, already 3) as it is."""
    if request.get("version") != 2:
        return request
    return {**request, "version": 3, "dialogue": [], "voice": None}


def downgraded(request: dict) -> dict:
    if request.get("version") != 3 or request.get("voice") is not None:
        return request
    old = {key: value for key, value in request.items() if key not in ("dialogue", "voice")}
    return {**old, "version": 2}


def _rewrite(apps, change) -> None:
    Job = apps.get_model("jobs", "Job")
    batch = []
    for job in Job.objects.only("pk", "request").iterator(chunk_size=_BATCH):
        request = change(job.request or {})
        if request != job.request:
            job.request = request
            batch.append(job)
        if len(batch) >= _BATCH:
            Job.objects.bulk_update(batch, ["request"])
            batch = []
    if batch:
        Job.objects.bulk_update(batch, ["request"])


def forwards(apps, schema_editor) -> None:
    _rewrite(apps, upgraded)


def backwards(apps, schema_editor) -> None:
    _rewrite(apps, downgraded)


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0012_request_frames"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="audio",
            field=models.FileField(blank=True, max_length=300, upload_to=jobs.models._result_path),
        ),
        migrations.AlterField(
            model_name="job",
            name="kind",
            field=models.CharField(
                choices=[
                    ("generate", "Generate"),
                    ("remix", "Remix"),
                    ("extend", "Extend"),
                    ("register_character", "Register character"),
                    ("speech", "Speech"),
                ],
                default="generate",
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="priceentry",
            name="provider_kind",
            field=models.CharField(
                choices=[
                    ("openai", "OpenAI Videos API (or compatible gateway)"),
                    ("sora_relay", "Sora relay"),
                    ("seedance", "ByteDance Seedance 2.0 (ModelArk)"),
                    ("kling", "Kling (v3 Omni)"),
                    ("veo", "Google Veo 3.1 (Vertex AI)"),
                    ("gemini", "Google Gemini Omni Flash (Gemini API)"),
                    ("runway", "Runway"),
                    ("fal", "fal.ai (hosted models)"),
                    ("elevenlabs", "ElevenLabs (text to speech)"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="provideraccount",
            name="kind",
            field=models.CharField(
                choices=[
                    ("openai", "OpenAI Videos API (or compatible gateway)"),
                    ("sora_relay", "Sora relay"),
                    ("seedance", "ByteDance Seedance 2.0 (ModelArk)"),
                    ("kling", "Kling (v3 Omni)"),
                    ("veo", "Google Veo 3.1 (Vertex AI)"),
                    ("gemini", "Google Gemini Omni Flash (Gemini API)"),
                    ("runway", "Runway"),
                    ("fal", "fal.ai (hosted models)"),
                    ("elevenlabs", "ElevenLabs (text to speech)"),
                ],
                max_length=20,
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
