"""Run the embedded Redis in the foreground (for `make run`'s supervisor)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand

from studio.project.redis_server import redis_server_args


class Command(BaseCommand):
    help = "Run an embedded Redis server on a loopback port, keeping its data under var/redis."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=6390)

    def handle(self, *args, port: int, **options) -> None:
        argv = redis_server_args(port=port, directory=settings.VAR_DIR / "redis", persistent=True)
        # exec: the supervisor's signals reach Redis itself, which saves and exits cleanly.
        os.execv(argv[0], argv)  # noqa: S606 - fixed argv, no shell
