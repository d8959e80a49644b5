"""Celery runs on a real Redis broker with JSON only, late acks and on-commit enqueueing."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from studio.project.celery import app
from studio.tasks import clear_expired_sessions


def test_the_broker_settings_are_safe_for_long_running_work():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] > conf.max_task_delay


def test_no_result_is_kept_and_threads_share_the_one_result_backend():
    from concurrent.futures import ThreadPoolExecutor

    assert app.conf.task_ignore_result is True
    with ThreadPoolExecutor(4) as pool:
        backends = set(pool.map(lambda _: id(app.backend), range(8)))
    assert backends == {id(app.backend)}
    assert type(app.backend).__name__ == "DisabledBackend"


@pytest.mark.redis
def test_a_task_enqueued_on_commit_runs_on_a_real_worker(celery_worker):
    Session.objects.create(
        session_key="expired", session_data="", expire_date=timezone.now() - timedelta(days=1)
    )
    Session.objects.create(
        session_key="alive", session_data="", expire_date=timezone.now() + timedelta(days=1)
    )
    with transaction.atomic():
        clear_expired_sessions.delay_on_commit()
        # Nothing is sent before the commit, so the worker cannot see half-written rows.
        time.sleep(0.3)
        assert Session.objects.filter(session_key="expired").exists()
    deadline = time.monotonic() + 20
    while Session.objects.filter(session_key="expired").exists():
        assert time.monotonic() < deadline, "the worker never ran the task"
        time.sleep(0.1)
    assert Session.objects.filter(session_key="alive").exists()
