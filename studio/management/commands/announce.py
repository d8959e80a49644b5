"""Wait until every process of `make run` answers, then print where Castboard is and how to
log in (and review), with how long the whole stack took since the supervisor started."""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand
from django.urls import reverse
from kombu.exceptions import OperationalError

from jobs.emulators.catalog import EMULATORS
from studio.management.commands.seed_demo import (
    DEMO_PASSWORD,
    DEMO_USERNAME,
    REVIEWER_USERNAME,
)
from studio.project.supervisor import STARTED_AT, duration

# The Celery workers the Procfile starts (their --hostname before the @).
WORKERS = "worker,media,scores"
# How often the wait says what it is still waiting for.
REMIND_EVERY = 20.0


def web_answers(url: str) -> bool:
    """The login page opens (the web process is up and its database migrated)."""
    try:
        with urllib.request.urlopen(f"{url}login/", timeout=2) as response:  # noqa: S310 - loopback URL from our own Makefile
            return response.status == 200
    except OSError:
        return False


def emulator_address(kind: str) -> tuple[str, int]:
    """Where the demo's account for this emulator sends its calls (as seed_demo set it)."""
    row = next(row for row in EMULATORS if row.kind == kind)
    url = urlsplit(settings.EMULATOR_URLS.get(kind) or row.api_url())
    return url.hostname or "127.0.0.1", url.port or 80


def emulator_answers(kind: str) -> bool:
    try:
        with socket.create_connection(emulator_address(kind), timeout=0.5):
            return True
    except OSError:
        return False


def answering_workers(names: Sequence[str]) -> set[str]:
    """The named workers that answer a Celery ping (through the broker, within a second)."""
    from studio.project.celery import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=1)
            replies = app.control.ping(timeout=1.0, connection=connection)
    except (OSError, OperationalError):  # the broker is not up yet: keep waiting
        return set()
    hosts = {host.partition("@")[0] for reply in replies for host in reply}
    return {name for name in names if name in hosts}


class Command(BaseCommand):
    help = (
        "Print the URL and the demo logins once the web server, the emulators and the "
        "workers all answer (used by `make run`)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/")
        parser.add_argument(
            "--emulators",
            default=",".join(row.kind for row in EMULATORS),
            help="emulator kinds to wait for, comma-separated ('' for none)",
        )
        parser.add_argument(
            "--workers",
            default=WORKERS,
            help="Celery worker names to wait for, comma-separated ('' for none)",
        )

    def handle(self, *args, url: str, emulators: str, workers: str, **options) -> None:
        started = _started_at()
        waiting: dict[str, Callable[[], bool]] = {"web": lambda: web_answers(url)}
        for kind in _names(emulators):
            waiting[f"{kind} emulator"] = lambda kind=kind: emulator_answers(kind)
        worker_names = _names(workers)
        answered: set[str] = set()

        def workers_answer() -> bool:
            answered.update(answering_workers([n for n in worker_names if n not in answered]))
            return answered >= set(worker_names)

        if worker_names:
            waiting["workers"] = workers_answer

        reminded = time.time()
        while waiting:
            for name, answers in list(waiting.items()):
                if answers():
                    del waiting[name]
            if not waiting:
                break
            if time.time() - reminded >= REMIND_EVERY:
                reminded = time.time()
                still = _describe(waiting, worker_names, answered)
                self.stdout.write(f"Still waiting for: {still}")
            time.sleep(0.3)

        everything = ["web", _count(len(_names(emulators)), "emulator")]
        everything.append(_count(len(worker_names), "worker"))
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Castboard is ready at {url}  (everything answered in "
                f"{duration(time.time() - started)}: {', '.join(everything)})\n"
                f"  Log in as {DEMO_USERNAME} / {DEMO_PASSWORD}\n"
                f"  Reviewers: {REVIEWER_USERNAME} / {DEMO_PASSWORD} at "
                f"{url.rstrip('/')}{reverse('review_index', args=['demo'])}\n"
                "  Ctrl-C stops everything.\n"
            )
        )
        # Then exit: the Procfile marks it `once`, so the supervisor does not restart it.


def _started_at() -> float:
    """When the supervisor started (it says so in the environment), else now."""
    try:
        return float(os.environ[STARTED_AT])
    except (KeyError, ValueError):
        return time.time()


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _describe(waiting: dict, worker_names: list[str], answered: set[str]) -> str:
    parts = [name for name in waiting if name != "workers"]
    if "workers" in waiting:
        missing = [name for name in worker_names if name not in answered]
        parts.append(f"workers ({', '.join(missing)})")
    return ", ".join(parts)
