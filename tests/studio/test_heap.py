"""The web process sets its startup objects aside from the garbage collector."""

from __future__ import annotations

import gc
import os

from studio.project.heap import freeze_startup_objects


def test_startup_objects_leave_the_collectors_full_pass():
    before = len(gc.get_objects(generation=2))
    try:
        frozen = freeze_startup_objects()
        assert frozen > 10_000  # Django, its apps and the URLconf
        # A full pass now walks only what was made after startup.
        assert len(gc.get_objects(generation=2)) < before / 4
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


def test_warm_up_builds_the_provider_client_a_first_webhook_would_wait_for(settings):
    from jobs.providers import http
    from studio.project.startup import warm_up

    timeout = float(settings.JOBS_PROVIDER_TIMEOUT_SECONDS)
    http._clients.clear()
    warm_up()
    warmed = http._clients[(os.getpid(), timeout)]
    # The same pooled client serves the first provider call: nothing is built on the way.
    assert http.shared_client(timeout) is warmed
    assert not warmed.is_closed
