"""Job.request moves to version 2 of jobs.requests: a request may give the frames its video
starts from and ends on. A version-1 request had none, so it gains `"frames": []`; going
back, a request that gave frames loses them (the older code could not send them).

Written on plain dicts, so it stays what it was when jobs.requests changes later.
"""

from __future__ import annotations

from django.db import migrations

_BATCH = 500


def upgraded(request: dict) -> dict:
    """A version-1 request as version 2; anything else (empty, already 2) as it is."""
    if request.get("version") != 1:
        return request
    return {**request, "version": 2, "frames": []}


def downgraded(request: dict) -> dict:
    if request.get("version") != 2:
        return request
    old = {key: value for key, value in request.items() if key != "frames"}
    return {**old, "version": 1}


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
    dependencies = [("jobs", "0011_longer_provider_ids")]
    operations = [migrations.RunPython(forwards, backwards)]
