"""The web process sets its startup objects aside from the garbage collector."""

from __future__ import annotations

import gc

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
