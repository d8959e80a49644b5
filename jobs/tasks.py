"""Celery tasks: thin wrappers taking a job id and calling one pipeline step."""

from __future__ import annotations

from celery import shared_task

from jobs import pipeline, sweep


@shared_task(ignore_result=True)
def submit_job(job_id: int) -> None:
    pipeline.submit(job_id)


@shared_task(ignore_result=True)
def poll_job(job_id: int, force: bool = False) -> None:
    pipeline.poll(job_id, force=force)


@shared_task(ignore_result=True)
def download_job(job_id: int) -> None:
    pipeline.download(job_id)


@shared_task(ignore_result=True)
def reconcile_job(job_id: int) -> None:
    pipeline.reconcile(job_id)


@shared_task(ignore_result=True)
def sweep_jobs() -> None:
    """Enqueue whatever is due: lost submits, polls, downloads, reconciliations (beat)."""
    sweep.run()
