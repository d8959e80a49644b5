"""What every serving process checks before it starts: the keys it must share with the others.

Off DEBUG, SECRET_KEY and ENCRYPTION_KEYS are never generated (a key made per machine
would leave a second host unable to read what the first signed or encrypted). Settings
leave a missing one empty, so commands that need neither (makemigrations, migrate) still
run; the web (WSGI, ASGI), Celery workers and beat call require_secrets() and stop,
naming what is missing, and `check --deploy` reports it.
"""

from __future__ import annotations

from celery import current_app
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from jobs.providers.http import shared_client


def missing_secrets_message(names: list[str]) -> str:
    return (
        f"{' and '.join(names)} must be set when DEBUG is off: every web process and worker "
        "needs the same value (see .env.example). Castboard only generates one itself for a "
        "development machine, with DEBUG=true."
    )


def require_secrets() -> None:
    """Stop a process that would serve or work without its shared keys."""
    if settings.MISSING_SECRETS:
        raise ImproperlyConfigured(missing_secrets_message(settings.MISSING_SECRETS))


@checks.register(checks.Tags.security, deploy=True)
def check_secrets(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if not settings.MISSING_SECRETS:
        return []
    return [checks.Error(missing_secrets_message(settings.MISSING_SECRETS), id="studio.E001")]


def warm_up() -> None:
    """Build now what a serving process's first requests would otherwise pay for.

    The provider HTTP client (its TLS context loads the CA bundle) and Celery's producer
    pool (its transport modules) are made lazily; a webhook arriving first after a start
    would wait ~150 ms for them, with every request behind it. Neither connects anywhere.
    """
    shared_client(float(settings.JOBS_PROVIDER_TIMEOUT_SECONDS))
    current_app.producer_pool  # noqa: B018 - builds the pool (and imports its transport)
