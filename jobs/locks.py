"""Short locks shared by every worker, kept in the broker's Redis."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import redis
from celery import current_app

log = logging.getLogger(__name__)

LOCK_POLL_SECONDS = 0.02


def _broker_url() -> str:
    """The broker's Redis, wherever the project's Celery app was pointed (its current app)."""
    connection = current_app.connection_for_write()
    try:
        return connection.as_uri(include_password=True)
    finally:
        connection.release()


@contextmanager
def shared_lock(name: str, *, hold_seconds: float, wait_seconds: float) -> Iterator[bool]:
    """Hold `name` across workers; yields whether it was acquired.

    If Redis cannot be reached the work goes ahead unlocked (and says so in the
    log): a rare duplicate is better than a stuck job.
    """
    client = redis.Redis.from_url(_broker_url())
    # A waiter checks every 20 ms (redis-py's default is 100 ms): the lock guards provider
    # calls that take a fraction of a second, and every waiter is a send held back.
    lock = client.lock(
        f"castboard:lock:{name}",
        timeout=hold_seconds,
        blocking_timeout=wait_seconds,
        sleep=LOCK_POLL_SECONDS,
    )
    acquired = False
    try:
        try:
            acquired = bool(lock.acquire())
        except redis.RedisError as error:
            log.warning("Lock %s unavailable (%s); going ahead without it.", name, error)
        yield acquired
    finally:
        if acquired:
            # Expired, or Redis gone: either way nothing is left to release.
            with suppress(redis.RedisError):
                lock.release()
        client.close()
