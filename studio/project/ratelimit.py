"""Rate limits shared by every web process: sliding windows counted in Redis.

A limit is "so many in so many seconds" for one key (a user, a workspace, a login name
at an address). Each hit is recorded in a sorted set under the key, scored by time,
by one Lua script, so concurrent processes never both take the last place. A refused
hit says how long until the oldest one in the window ages out: the Retry-After.

If Redis cannot be reached the limit stands aside (and the log says so): a limiter
must never be the reason a request fails, and budgets still cap what work can cost.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from dataclasses import dataclass

import redis
from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger(__name__)

PREFIX = "castboard:rate"

# KEYS[1]: the window's sorted set. ARGV: now (s), window (s), limit, a unique member.
# Returns -1 when the hit is counted, else the seconds until one is allowed.
_HIT = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window * 1000))
  return '-1'
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""
# How many hits a key has in its window, without adding one.
_COUNT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
return redis.call('ZCARD', KEYS[1])
"""


@dataclass(frozen=True)
class Rate:
    """`count` hits per `seconds`, parsed from settings such as "20/60"."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, value: str, *, setting: str) -> Rate:
        try:
            count, seconds = (int(part) for part in value.split("/"))
        except ValueError:
            raise ImproperlyConfigured(
                f"{setting} must look like 20/60 (requests/seconds), got {value!r}"
            ) from None
        if count < 1 or seconds < 1:
            raise ImproperlyConfigured(f"{setting} must allow at least 1 request in 1 second.")
        return cls(count, seconds)


@dataclass(frozen=True)
class Refusal:
    """A refused hit: which limit, and how long until one is allowed again."""

    what: str
    retry_after: float

    @property
    def retry_after_header(self) -> str:
        return str(max(1, int(self.retry_after + 0.999)))

    @property
    def wait_in_words(self) -> str:
        seconds = int(self.retry_after + 0.999)
        if seconds < 90:
            return f"{max(1, seconds)} second{'s' if seconds != 1 else ''}"
        minutes = (seconds + 59) // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # Short timeouts: a Redis that does not answer may cost a request half a second, no more.
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def _redis() -> redis.Redis:
    from studio.project.celery import app  # the broker's Redis, wherever the app was pointed

    connection = app.connection_for_write()
    try:
        return _client(connection.as_uri(include_password=True))
    finally:
        connection.release()


def _key(name: str, subject: str) -> str:
    return f"{PREFIX}:{name}:{subject}"


def hit(name: str, subject: str, rate: Rate) -> Refusal | None:
    """Count one hit of `name` by `subject`; a Refusal when the window is full."""
    try:
        answer = _redis().eval(
            _HIT, 1, _key(name, subject), time.time(), rate.seconds, rate.count, uuid.uuid4().hex
        )
    except redis.RedisError as error:
        log.warning("Rate limit %s unavailable (%s); letting the request through.", name, error)
        return None
    wait = float(answer)
    return None if wait < 0 else Refusal(name, max(wait, 0.001))


def hits(name: str, subject: str, rate: Rate) -> int:
    """How many hits `subject` has in the current window (0 if Redis cannot say)."""
    try:
        return int(_redis().eval(_COUNT, 1, _key(name, subject), time.time(), rate.seconds))
    except redis.RedisError:
        return 0


def refused(name: str, subject: str, rate: Rate) -> Refusal | None:
    """Whether the window is full now, without counting a hit (the login throttle asks
    before checking a password, and counts only the failures)."""
    if hits(name, subject, rate) < rate.count:
        return None
    try:
        oldest = _redis().zrange(_key(name, subject), 0, 0, withscores=True)
    except redis.RedisError:
        return None
    wait = (oldest[0][1] + rate.seconds - time.time()) if oldest else rate.seconds
    return Refusal(name, max(wait, 0.001))


def clear(name: str, subject: str) -> None:
    try:
        _redis().delete(_key(name, subject))
    except redis.RedisError as error:
        log.warning("Rate limit %s could not be cleared (%s).", name, error)
