"""A circuit breaker per provider account, its state in Redis so every worker shares it.

Closed: requests go. After JOBS_BREAKER_FAILURES consecutive outage-like failures
(transport errors, timeouts, 5xx answers) it opens: nothing is sent for
JOBS_BREAKER_COOLDOWN_SECONDS. Then it lets exactly one trial request through (the
worker that wins a Redis SET NX); a success closes it, a failure opens it again for
another cool-down. Refusals that say nothing about the provider's health (a 400, a
429, moderation) neither open nor close it.

If Redis cannot be reached, the breaker stays out of the way (requests go, and the
log says so): the pipeline's own retries still apply.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from jobs.locks import _broker_url

log = logging.getLogger(__name__)

OUTAGE_KINDS = frozenset({"unavailable", "timeout"})
_PREFIX = "castboard:breaker"


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _redis() -> redis.Redis:
    return _client(_broker_url())


def _key(account_id: int) -> str:
    return f"{_PREFIX}:{account_id}"


@dataclass(frozen=True)
class BreakerState:
    """What the breaker says about an account right now (for routing and display)."""

    state: str  # "closed", "open" or "half-open"
    failures: int = 0
    reopens_in: float = 0.0  # seconds until a trial may go (when open)
    last_error: str = ""

    @property
    def is_open(self) -> bool:
        return self.state == "open"


def state(account_id: int) -> BreakerState:
    try:
        data = _redis().hgetall(_key(account_id))
    except redis.RedisError as error:
        log.warning("Breaker state of account %s unavailable (%s).", account_id, error)
        return BreakerState("closed")
    if not data:
        return BreakerState("closed")
    failures = int(data.get(b"failures", 0))
    last_error = data.get(b"last_error", b"").decode()
    opened_at = float(data.get(b"opened_at", 0) or 0)
    if not opened_at:
        return BreakerState("closed", failures, last_error=last_error)
    remaining = opened_at + settings.JOBS_BREAKER_COOLDOWN_SECONDS - time.time()
    if remaining > 0:
        return BreakerState("open", failures, remaining, last_error)
    return BreakerState("half-open", failures, last_error=last_error)


def allow(account_id: int) -> bool:
    """Whether a request may go to this account now (claims the one trial when half-open)."""
    current = state(account_id)
    if current.state == "closed":
        return True
    if current.state == "open":
        return False
    try:
        # One trial per cool-down, whichever worker gets here first.
        return bool(
            _redis().set(
                f"{_key(account_id)}:trial",
                "1",
                nx=True,
                ex=max(1, int(settings.JOBS_BREAKER_COOLDOWN_SECONDS)),
            )
        )
    except redis.RedisError:
        return True


def record_success(account_id: int) -> None:
    """A healthy answer: close the breaker (and forget the failures)."""
    try:
        client = _redis()
        if client.exists(_key(account_id)):
            client.delete(_key(account_id), f"{_key(account_id)}:trial")
            log.info("Breaker of account %s closed.", account_id)
    except redis.RedisError as error:
        log.warning("Breaker of account %s not updated (%s).", account_id, error)


# Count the failure and open (or re-open) the breaker in one step, whatever other workers do.
_FAIL = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[3])
local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
if failures >= tonumber(ARGV[1]) or opened > 0 then
  redis.call('HSET', KEYS[1], 'opened_at', ARGV[2])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""


def record_failure(account_id: int, message: str) -> bool:
    """An outage-like failure; True if the breaker is (now) open."""
    try:
        client = _redis()
        opened = client.eval(
            _FAIL,
            2,
            _key(account_id),
            f"{_key(account_id)}:trial",
            settings.JOBS_BREAKER_FAILURES,
            repr(time.time()),
            message[:300],
        )
        # Forget a breaker nobody has touched for a day (a provider that went away).
        client.expire(_key(account_id), 86400)
    except redis.RedisError as error:
        log.warning("Breaker of account %s not updated (%s).", account_id, error)
        return False
    if opened:
        log.warning("Breaker of account %s is open: %s", account_id, message)
    return bool(opened)


def reset(account_id: int) -> None:
    """Close by hand (the admin's "provider is back" action, and tests)."""
    try:
        _redis().delete(_key(account_id), f"{_key(account_id)}:trial")
    except redis.RedisError as error:
        log.warning("Breaker of account %s not reset (%s).", account_id, error)
