"""Celery tasks: thin wrappers taking a job id and calling one pipeline step.

The engine names the steps it schedules (jobs.dispatch.Step) and sends them by name: the
pipeline never imports this module, this module imports the pipeline.

Send and download steps are told their delivery's id: a delivery that comes back while
its job is still held under that id was requeued because its worker process died
(acks late, reject on worker lost), and takes the step over at once.
"""

from __future__ import annotations

from celery import shared_task

from jobs import pipeline, sweep
from jobs.dispatch import Step


@shared_task(name=Step.SUBMIT, bind=True, ignore_result=True)
def submit_job(self, job_id: int) -> None:
    pipeline.submit(job_id, delivery=self.request.id or "")


@shared_task(name=Step.POLL, ignore_result=True)
def poll_job(job_id: int, force: bool = False) -> None:
    pipeline.poll(job_id, force=force)


@shared_task(name=Step.DOWNLOAD, bind=True, ignore_result=True)
def download_job(self, job_id: int) -> None:
    pipeline.download(job_id, delivery=self.request.id or "")


@shared_task(name=Step.RECONCILE, ignore_result=True)
def reconcile_job(job_id: int) -> None:
    pipeline.reconcile(job_id)


@shared_task(ignore_result=True)
def sweep_jobs() -> None:
    """Enqueue whatever is due: lost submits, polls, downloads, reconciliations (beat)."""
    sweep.run()
