"""Real Celery worker processes (fault tests, benchmarks) on the caller's database and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from django.db import connection
from kombu import pools
from kombu.utils.collections import eqhash

ROOT = Path(__file__).resolve().parents[2]


def database_url_of_current_connection() -> str:
    """A DATABASE_URL for the database this process uses now (pytest's test database too)."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(config['NAME']).resolve()}"
    if connection.vendor == "postgresql":
        user = config.get("USER") or "postgres"
        password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
        host = config.get("HOST") or "127.0.0.1"
        port = config.get("PORT") or 5432
        return f"postgres://{user}{password}@{host}:{port}/{config['NAME']}"
    raise RuntimeError(f"Unsupported database for worker processes: {connection.vendor}")


class WorkerProcess:
    """`celery -A studio worker` in its own process group, so it can be killed like a crash.

    `queues` limits it to some queues (CELERY_TASK_QUEUES: "celery" for sends, polls and
    reconciliations, "media" for downloads); by default it takes every queue. Two workers
    running at once need different `name`s. `beat` embeds Celery beat (one per deployment),
    its schedule file under the process's CASTBOARD_VAR_DIR.
    """

    def __init__(
        self,
        *,
        redis_url: str,
        media_root: Path,
        env: Mapping[str, str] | None = None,
        concurrency: int = 2,
        log_path: Path | None = None,
        queues: Sequence[str] = (),
        name: str = "worker",
        beat: bool = False,
    ) -> None:
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "studio.project.settings",
            "DATABASE_URL": database_url_of_current_connection(),
            "REDIS_URL": redis_url,
            "MEDIA_ROOT": str(media_root),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.concurrency = concurrency
        self.queues = tuple(queues)
        self.name = name
        self.beat = beat
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self) -> WorkerProcess:
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "studio",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(self.concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            f"{self.name}@%h",
            *(["--queues", ",".join(self.queues)] if self.queues else []),
            *(["--beat"] if self.beat else []),
        ]
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - our own worker, fixed argv
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): a crash, no cleanup."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        """A warm shutdown (SIGTERM), then SIGKILL if it does not finish in time."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(predicate, *, timeout: float, interval: float = 0.1, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(message or "condition not met in time")
        time.sleep(interval)


def point_celery_at(url: str, *, forget_current: bool = False) -> None:
    """Send this process's tasks to `url`: the app caches its pools, so drop them too.

    `forget_current` also closes the current broker's pools and removes them from kombu's
    process-wide registry (the port may be reused by a later test's server).
    """
    from studio.project.celery import app

    if forget_current:
        current = app.connection_for_write()
        try:
            key = eqhash(current)
            for group in (pools.producers, pools.connections):
                pool = dict.pop(group, key, None)
                if pool is not None:
                    pool.force_close_all()
        finally:
            current.release()
    # Celery 5.6 reads the Django-namespaced key first, 5.7 the plain one: set both.
    app.conf.CELERY_BROKER_URL = url
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None
    used = app.connection_for_write()
    try:
        wanted = urlsplit(url)
        if (used.hostname, used.port) != (wanted.hostname, wanted.port):
            raise RuntimeError(f"Celery still sends to {used.as_uri()}, not {url}")
    finally:
        used.release()
