"""The requests the live server's threads are still serving, so that a test's database is
flushed only once none of them can touch it.

A browser or client that has gone does not end what the server is doing for it: an event
stream runs on until its next write fails (studio/views/live.py), and meanwhile reads the
rows. On PostgreSQL such a read, taking its tables' locks one after another, can deadlock
with the flush's TRUNCATE of them all; CI once saw the flush fail with a stream still
running, and the next test found the last one's rows ("duplicate key ... slug=(gull)").
"""

from __future__ import annotations

import threading

from django.core.signals import request_finished, request_started


class InFlight:
    """Requests being served in other threads than the test's own, counted by Django's
    request signals (the test client's requests run in the test's thread: not counted)."""

    def __init__(self) -> None:
        self._paths: dict[int, str] = {}  # serving thread -> the path it serves
        self._changed = threading.Condition()

    def connect(self) -> None:
        request_started.connect(self._started, dispatch_uid="tests-in-flight-started")
        request_finished.connect(self._finished, dispatch_uid="tests-in-flight-finished")

    def _started(self, sender, environ=None, **kwargs) -> None:
        if threading.current_thread() is threading.main_thread():
            return
        with self._changed:
            self._paths[threading.get_ident()] = (environ or {}).get("PATH_INFO", "?")

    def _finished(self, sender, **kwargs) -> None:
        with self._changed:
            if self._paths.pop(threading.get_ident(), None) is not None:
                self._changed.notify_all()

    def wait_until_done(self, timeout: float) -> list[str]:
        """Wait until no request is in flight, or `timeout` seconds; the paths still served."""
        with self._changed:
            self._changed.wait_for(lambda: not self._paths, timeout=timeout)
            return sorted(self._paths.values())


in_flight = InFlight()
