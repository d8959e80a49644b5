"""Stored files leave storage with the rows that own them: a take's result files, a cut's files
and a take's worst-frame pictures, whether the row is deleted on its own or with its scene,
episode or series.

Receivers rather than service calls because most of these rows go by cascade (a series
deleted takes every scene, take and cut with it), which no service sees. Files are deleted
once the deletion commits, so a rolled-back delete keeps them; on local storage and S3 alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from jobs.models import Job
from studio.models import CharacterScore, Cut, Take

log = logging.getLogger(__name__)

_JOB_FILES = ("video", "thumbnail", "spritesheet", "audio")


def delete_stored_on_commit(names: Iterable[str]) -> None:
    """Delete these stored names once the current transaction commits (at once outside one)."""
    names = [name for name in names if name]
    if names:
        transaction.on_commit(lambda: _delete(names))


def _delete(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # a file left behind must not fail a deletion that has committed
            log.exception("Could not delete the stored file %s.", name)


@receiver(post_delete, sender=Take, dispatch_uid="studio.storage_cleanup.take")
def _take_deleted(sender, instance: Take, **kwargs) -> None:
    # The job stays on record (what was paid); the take's result files go with the take.
    job = Job.objects.filter(pk=instance.job_id)
    names = job.values_list(*_JOB_FILES).first()
    if names and any(names):
        job.update(**dict.fromkeys(_JOB_FILES, ""))
        delete_stored_on_commit(names)


@receiver(post_delete, sender=Cut, dispatch_uid="studio.storage_cleanup.cut")
def _cut_deleted(sender, instance: Cut, **kwargs) -> None:
    delete_stored_on_commit(
        getattr(instance, field.name).name
        for field in Cut._meta.get_fields()
        if isinstance(field, models.FileField)
    )


@receiver(post_delete, sender=CharacterScore, dispatch_uid="studio.storage_cleanup.score")
def _character_score_deleted(sender, instance: CharacterScore, **kwargs) -> None:
    delete_stored_on_commit(frame.get("image", "") for frame in instance.worst or [])
