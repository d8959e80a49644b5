"""Wait for the web server, then print where Castboard is and how to log in (and review)."""

from __future__ import annotations

import time
import urllib.request

from django.core.management.base import BaseCommand
from django.urls import reverse

from studio.management.commands.seed_demo import (
    DEMO_PASSWORD,
    DEMO_USERNAME,
    REVIEWER_USERNAME,
)


class Command(BaseCommand):
    help = "Print the URL and the demo logins once the web server answers (used by `make run`)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, url: str, **options) -> None:
        started = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"{url}login/", timeout=2) as response:  # noqa: S310 - loopback URL from our own Makefile
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Castboard is ready at {url}  (up in {time.monotonic() - started:.1f} s)\n"
                f"  Log in as {DEMO_USERNAME} / {DEMO_PASSWORD}\n"
                f"  Reviewers: {REVIEWER_USERNAME} / {DEMO_PASSWORD} at "
                f"{url.rstrip('/')}{reverse('review_index', args=['demo'])}\n"
                "  Ctrl-C stops everything.\n"
            )
        )
        # Then exit: the Procfile marks it `once`, so the supervisor does not restart it.
