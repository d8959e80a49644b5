"""The Celery application: configured from Django settings (CELERY_* names)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.project.settings")

app = Celery("castboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_to_work_without_keys(**kwargs) -> None:
    """A worker or beat off DEBUG without its shared keys stops, naming them (see startup)."""
    from django.core.exceptions import ImproperlyConfigured

    from studio.project.startup import require_secrets

    try:
        require_secrets()
    except ImproperlyConfigured as missing:
        # Celery logs and carries on past an exception in a signal handler; this must stop it.
        raise SystemExit(f"Castboard: {missing}") from None


@signals.worker_init.connect
@signals.beat_init.connect
def _quiet_routine_task_lines(**kwargs) -> None:
    """Celery's per-run lines about the beat schedule's routine tasks at DEBUG (jobs.sweep)."""
    from jobs.sweep import quiet_routine_task_lines

    quiet_routine_task_lines()
