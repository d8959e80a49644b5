"""Live news of jobs: "job N of workspace W changed", published on Redis when it commits.

The engine says only which job changed; a reader (the storyboard's event stream) decides
what that means for its page and reads the rows itself, so the engine stays scene-agnostic
and a message carries nothing that could go stale. Messages are a hint, not a record: one
lost (Redis restarting, no one listening) costs a page a few seconds, because every reader
also looks at the rows' `updated_at` every few seconds. So announcing never fails the
change it announces.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import NamedTuple

import redis
from django.db import transaction

from jobs.locks import _broker_url

log = logging.getLogger(__name__)

CHANNEL = "castboard:jobs:changed"
# After Redis failed to take a message, the next ones skip it for this long: a worker
# reporting progress must not wait on a connect timeout at every step.
_QUIET_SECONDS = 5.0
_quiet_until: dict[str, float] = {}  # by Redis URL


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # Short timeouts: a message is only a hint, and the worker sending it has work to do.
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=0.5)


@dataclass(frozen=True, slots=True)
class Change:
    """One announced change: the job and its workspace (readers filter on it unread)."""

    workspace_id: int
    job_id: int

    def encode(self) -> str:
        return f"{self.workspace_id}:{self.job_id}"

    @classmethod
    def decode(cls, data: bytes | str) -> Change | None:
        text = data.decode() if isinstance(data, bytes) else data
        workspace, _, job = text.partition(":")
        if not (workspace.isdigit() and job.isdigit()):
            return None
        return cls(int(workspace), int(job))


def _publish(change: Change) -> None:
    url = _broker_url()
    if time.monotonic() < _quiet_until.get(url, 0.0):
        return
    try:
        _client(url).publish(CHANNEL, change.encode())
    except (redis.RedisError, OSError) as error:
        _quiet_until[url] = time.monotonic() + _QUIET_SECONDS
        log.debug("Job %s: change not announced (%s).", change.job_id, error)


def announce_changed(job_id: int, *, workspace_id: int) -> None:
    """Tell live pages the job changed, once the current transaction commits (at once
    outside one). Never raises: readers resync from the database anyway."""
    change = Change(workspace_id, job_id)
    transaction.on_commit(lambda: _publish(change))


# How many announcements a process keeps for its readers: a reader further behind than this
# (a stream stalled for minutes) is told it missed some and reads the rows instead.
_KEPT = 10_000
# After the subscription broke, the next try waits this long.
_RETRY_SECONDS = 1.0
# How long a new reader waits for a process's first subscription to be confirmed.
_SUBSCRIBE_WAIT_SECONDS = 1.0


class _Heard(NamedTuple):
    """An announcement as the process heard it: its number, when (time.monotonic() and
    time.time()), and what."""

    seq: int
    at: float
    wall: float
    change: Change


class _Hub:
    """A process's one subscription to the channel, shared by all its readers.

    Each open page used to hold its own subscription, and every announcement woke every
    stream of the process (50 open pages, a board's hundred jobs moving: over a thousand
    wake-ups a second, each taking the interpreter's lock from the requests being served).
    Here one thread hears each announcement once and keeps it, numbered; a reader asks for
    what came after the number it last saw, when it is ready for a batch.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.started = time.monotonic()
        self.changed = threading.Condition()
        self.seq = 0  # the number of the newest announcement heard
        self.log: deque[_Heard] = deque(maxlen=_KEPT)
        self.listening = False
        self.listening_since = 0.0  # time.time() the subscription was last confirmed
        self.breaks = 0  # how many times the subscription broke (readers may have missed news)
        self._thread = threading.Thread(target=self._run, name="castboard-live", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            pubsub = None
            try:
                pubsub = _client(self.url).pubsub()
                pubsub.subscribe(CHANNEL)
                while True:
                    message = pubsub.get_message(timeout=5.0)
                    if message is None:
                        continue
                    if message.get("type") == "subscribe":
                        with self.changed:
                            self.listening = True
                            self.listening_since = time.time()
                            self.changed.notify_all()
                    elif message.get("type") == "message":
                        change = Change.decode(message["data"])
                        if change is not None:
                            self._add(change)
            except (redis.RedisError, OSError) as error:
                log.debug("Not listening to job changes (%s).", error)
            finally:
                with self.changed:
                    if self.listening:
                        self.breaks += 1
                    self.listening = False
                    self.changed.notify_all()
                if pubsub is not None:
                    with suppress(redis.RedisError, OSError):
                        pubsub.close()
            time.sleep(_RETRY_SECONDS)

    def _add(self, change: Change) -> None:
        heard = time.monotonic()
        with self.changed:
            self.seq += 1
            self.log.append(_Heard(self.seq, heard, time.time(), change))
            self.changed.notify_all()

    def after(self, seq: int) -> tuple[list[_Heard], bool]:
        """(what was heard after `seq`, whether some of it is no longer kept); call holding
        `changed`."""
        if self.seq == seq:
            return [], False
        lost = not self.log or self.log[0].seq > seq + 1
        return self._newest(lambda entry: entry.seq > seq), lost

    def since(self, moment: float) -> list[_Heard] | None:
        """What was heard after `moment` (a time.time() value), or None if this process
        cannot vouch for having heard all of it (it was not subscribed all along since,
        or keeps no more that far back); call holding `changed`."""
        if not self.listening or self.listening_since > moment:
            return None
        if len(self.log) == self.log.maxlen and self.log[0].wall > moment:
            return None
        return self._newest(lambda entry: entry.wall > moment)

    def _newest(self, wanted: Callable[[_Heard], bool]) -> list[_Heard]:
        """The newest entries that are `wanted`, oldest first: read from the newest end, so
        a reader's batch costs what it holds, not what the process keeps."""
        found = []
        for entry in reversed(self.log):
            if not wanted(entry):
                break
            found.append(entry)
        found.reverse()
        return found


_hubs: dict[tuple[int, str], _Hub] = {}
_hubs_lock = threading.Lock()


def _hub(url: str) -> _Hub:
    """This process's hub for the Redis at `url` (a forked process starts its own: threads
    do not survive a fork)."""
    key = (os.getpid(), url)
    with _hubs_lock:
        hub = _hubs.get(key)
        if hub is None:
            hub = _hubs[key] = _Hub(url)
    return hub


class Listener:
    """One reader of the process's announcements (an open page's stream holds one).

    Redis being away is not an error here: `wait` then just sleeps out its timeout while
    the hub keeps trying to subscribe, and the reader resyncs from the database.
    """

    def __init__(self) -> None:
        hub = self._hub = _hub(_broker_url())
        with hub.changed:
            # A process's first readers give its subscription a moment to be confirmed (so
            # they hear what is announced once they are made); with Redis away, later ones
            # do not wait for it.
            patience = hub.started + _SUBSCRIBE_WAIT_SECONDS - time.monotonic()
            hub.changed.wait_for(lambda: hub.listening, timeout=patience)
            self._seq = hub.seq
            self._breaks = hub.breaks
        # Whether announcements may have been missed since the reader last asked (see
        # `missed`): true until the first look, and after any break in the subscription.
        self._missed = True
        self.last_heard = 0.0  # time.monotonic() when the newest announcement read arrived
        self.heard: dict[int, float] = {}  # of the last batch: job id -> when it was heard

    def missed(self) -> bool:
        """Whether announcements may have been lost since the last call (the subscription
        was not up all along): the reader then reads every change from the rows."""
        hub = self._hub
        if hub is None:
            return True
        with hub.changed:
            broken = not hub.listening or hub.breaks != self._breaks
            self._breaks = hub.breaks
        missed, self._missed = self._missed or broken, False
        return missed

    @property
    def listening(self) -> bool:
        return self._hub is not None and self._hub.listening

    def wait(self, timeout: float, *, gather: float = 0.2, not_before: float = 0.0) -> list[Change]:
        """The changes announced within `timeout` seconds (empty if none): once the first
        arrives, those announced during the next `gather` seconds, and until `not_before`
        (a time.monotonic() value) if that is later, come with it: a burst of progress is
        read as one batch, and a reader can space its batches (it sleeps until then, woken
        by nothing)."""
        deadline = time.monotonic() + max(0.0, timeout)
        hub = self._hub
        if hub is None:
            time.sleep(max(0.0, deadline - time.monotonic()))
            return []
        with hub.changed:
            while True:
                news, _ = hub.after(self._seq)
                if news:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                hub.changed.wait(left)
        until = min(deadline, max(news[0].at + gather, not_before))
        if (pause := until - time.monotonic()) > 0:
            time.sleep(pause)
        with hub.changed:
            news, lost = hub.after(self._seq)
            if lost or hub.breaks != self._breaks:
                self._missed = True
            if news:
                self._seq = news[-1].seq
        return self._read(news)

    def since(self, moment: float) -> list[Change] | None:
        """The changes this process heard after `moment` (a time.time() value), or None if
        it cannot vouch for having heard them all (then read the rows). A page rendered at
        `moment` showed every change committed before, and so announced before: what it
        needs is this, not the rows changed since (which reach back further, to allow for
        commits later than their stamps)."""
        hub = self._hub
        if hub is None:
            return None
        with hub.changed:
            news = hub.since(moment)
            if news is None or hub.breaks != self._breaks:
                return None
            self._seq = hub.seq  # what `wait` returns from now on comes after these
        return self._read(news)

    def _read(self, news: list[_Heard]) -> list[Change]:
        self.heard = {}
        for entry in news:
            self.heard[entry.change.job_id] = entry.at
        if news:
            self.last_heard = news[-1].at
        return [entry.change for entry in news]

    def close(self) -> None:
        self._hub = None
