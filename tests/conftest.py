"""Shared fixtures: users per role, an outsider, a real Redis, and a Celery worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from studio.models import Role
from tests.factories import MembershipFactory, WorkspaceFactory
from tests.support.in_flight import in_flight

pytest_plugins = ["tests.support.engine"]


def pytest_configure(config) -> None:
    """Process-wide test settings, in place before any server (live_server too) starts."""
    from django.conf import settings

    settings.SECURE_SSL_REDIRECT = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.WHITENOISE_USE_FINDERS = True
    settings.COMPILED_QUERIES_VERIFY = True  # every compiled query checked against Django's
    settings.WHITENOISE_AUTOREFRESH = True
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # An event stream whose browser or client has gone notices at its next write: soon.
    settings.LIVE_HEARTBEAT_SECONDS = 0.25
    in_flight.connect()


@pytest.fixture(autouse=True)
def _live_server_done_before_flush(request) -> Iterator[None]:
    """A test that served pages from the live server ends once the server has finished
    with them, event streams included, and only then is its database flushed (see
    tests/support/in_flight.py). Its browser or client has gone by then: fixtures made
    after this one (a page) are torn down before it."""
    if "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")  # made before this one, so flushed after it
    yield
    left = in_flight.wait_until_done(timeout=30)
    assert not left, f"30 s after the test, the live server was still serving {left}"


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path: Path) -> None:
    """Each test stores its uploads and results in its own temporary folder."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media"},
        },
    }


@pytest.fixture
def workspace():
    return WorkspaceFactory()


@pytest.fixture
def members(workspace):
    """One user per role in `workspace`, plus an outsider who belongs elsewhere."""
    users = {role.value: MembershipFactory(workspace=workspace, role=role).user for role in Role}
    users["outsider"] = MembershipFactory(role=Role.OWNER).user
    return users


@pytest.fixture
def owner(members):
    return members["owner"]


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real Redis: REDIS_URL when set (CI), else an embedded server on a free port."""
    url = os.environ.get("REDIS_URL")
    if url:
        redis.Redis.from_url(url).flushdb()
        yield url
        return
    from studio.project.redis_server import free_port, start_redis

    port = free_port()
    process = start_redis(port=port, directory=tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(autouse=True, scope="session")
def _celery_uses_the_test_redis(redis_url):
    """Whatever a test enqueues goes to the test's Redis, never to a server the machine runs."""
    from studio.project.celery import app
    from tests.support.processes import point_celery_at

    point_celery_at(redis_url)
    app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def _breakers_start_closed(redis_url):
    """Account and user ids come back between tests: no breaker state or rate-limit count
    may leak from one test to the next."""
    client = redis.Redis.from_url(redis_url)
    keys = [*client.scan_iter("castboard:breaker:*"), *client.scan_iter("castboard:rate:*")]
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(autouse=True)
def _live_caches_start_empty():
    """Ids come back between tests: what live streams keep per process starts empty."""
    from studio import live

    live.forget()


@pytest.fixture
def celery_worker(redis_url, transactional_db):
    """A Celery worker consuming from the real Redis broker, in this process."""
    from celery.contrib.testing.worker import start_worker

    from studio.project.celery import app

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker
