"""What an emulator remembers and how it behaves: config, clock, store, faults, log, timelines."""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from jobs.emulators.render import DRIFT_AXES, check_drift
from jobs.emulators.webhooks import decode_secret

T = TypeVar("T")


# --- Config -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EmulatorConfig:
    latency_seconds: float = 2.0  # from create to a terminal state
    progress_steps: int = 5  # distinct progress values while in progress
    poll_after_ms: int = 1000  # OpenAI's `openai-poll-after-ms` hint
    rate_limit_per_minute: int | None = None  # None: no limit
    outage: bool = False  # every API call answers 503
    webhook_url: str | None = None
    webhook_secret: str | None = None  # "whsec_<base64>"
    webhook_duplicates: int = 1  # deliver each event this many times
    pad_video_bytes: int = 0  # append a `free` box of this size to downloaded videos
    accepted_api_keys: tuple[str, ...] = ()  # empty: any non-empty bearer passes
    fps: int = 12  # frames per second of rendered videos
    asset_ttl_seconds: int = 3600  # results expire this long after completion
    # Takes that drift from their characters' references (see `take_drift`): the axes a
    # drifting take drifts on (empty: all of them when drift_rate picks it), and the share
    # of takes that drift (None: every take when drift_axes is set, else none).
    drift_axes: frozenset[str] = frozenset()
    drift_rate: float | None = None

    def merged(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """A copy with `changes` applied; ValueError names the first bad key."""
        known = {f.name for f in fields(self)}
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"Unknown config key '{key}'.")
            values[key] = _CHECKS[key](key, value)
        return replace(self, **values)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["accepted_api_keys"] = list(self.accepted_api_keys)
        data["drift_axes"] = sorted(self.drift_axes)
        return data


def _number(minimum: float) -> Callable[[str, Any], float]:
    def check(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise ValueError(f"'{key}' must be a number >= {minimum}.")
        return float(value)

    return check


def _integer(minimum: int, *, nullable: bool = False) -> Callable[[str, Any], int | None]:
    def check(key: str, value: Any) -> int | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"'{key}' must be an integer >= {minimum}.")
        return value

    return check


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"'{key}' must be true or false.")
    return value


def _url(key: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"'{key}' must be an http(s) URL or null.")
    return value


def _secret(key: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string like 'whsec_<base64>'.")
    decode_secret(value)
    return value


def _keys(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(k, str) and k for k in value):
        raise ValueError(f"'{key}' must be a list of non-empty strings.")
    return tuple(value)


def _axes(key: str, value: Any) -> frozenset[str]:
    """Drift axes as a list (or set) of names or one comma-separated string; empty for none."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple | set | frozenset) or not all(
        isinstance(axis, str) for axis in value
    ):
        raise ValueError(f"'{key}' must be a list of drift axes ({', '.join(sorted(DRIFT_AXES))}).")
    try:
        return check_drift(value)
    except ValueError as exc:
        raise ValueError(f"'{key}': {exc}.") from exc


def _share(key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"'{key}' must be a number from 0 to 1, or null.")
    return float(value)


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "latency_seconds": _number(0),
    "progress_steps": _integer(1),
    "poll_after_ms": _integer(0),
    "rate_limit_per_minute": _integer(1, nullable=True),
    "outage": _boolean,
    "webhook_url": _url,
    "webhook_secret": _secret,
    "webhook_duplicates": _integer(1),
    "pad_video_bytes": _integer(0),
    "accepted_api_keys": _keys,
    "fps": _integer(1),
    "asset_ttl_seconds": _integer(0),
    "drift_axes": _axes,
    "drift_rate": _share,
}


# --- Clock --------------------------------------------------------------------------------


class Clock:
    """Wall time plus an offset tests can advance (to reach expiry without waiting an hour)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0


# --- Store --------------------------------------------------------------------------------


class Store(Generic[T]):
    """A thread-safe dict that remembers insertion order (lists page through it)."""

    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()

    def add(self, key: str, item: T) -> T:
        with self._lock:
            self._items[key] = item
        return item

    def get(self, key: str) -> T | None:
        with self._lock:
            return self._items.get(key)

    def remove(self, key: str) -> T | None:
        with self._lock:
            return self._items.pop(key, None)

    def values(self) -> list[T]:
        with self._lock:
            return list(self._items.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class Once(Generic[T]):
    """Compute a value at most once, on first need, even with concurrent callers.

    Rendering is the expensive part of a job, so it happens lazily after completion
    and is shared by every download of the same job.
    """

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._value: T | None = None
        self._done = False

    def get(self) -> T:
        with self._lock:
            if not self._done:
                self._value = self._make()
                self._done = True
            return self._value  # type: ignore[return-value]


# --- Faults -------------------------------------------------------------------------------

FAULT_OPS = frozenset({"create", "retrieve", "list", "content", "character", "any"})
FAULT_KINDS = frozenset({"429", "500", "503", "timeout", "moderation", "quota"})


@dataclass
class Fault:
    op: str
    kind: str
    times: int = 1
    retry_after: float = 1.0  # seconds, for 429s
    timeout_seconds: float = 5.0  # how long a "timeout" holds the connection

    @classmethod
    def parse(cls, data: Any) -> Fault:
        if not isinstance(data, dict):
            raise ValueError("Each fault is an object.")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"Unknown fault keys: {sorted(unknown)}.")
        op, kind = data.get("op", "any"), str(data.get("kind", ""))
        if op not in FAULT_OPS:
            raise ValueError(f"'op' must be one of {sorted(FAULT_OPS)}.")
        if kind not in FAULT_KINDS:
            raise ValueError(f"'kind' must be one of {sorted(FAULT_KINDS)}.")
        times = _integer(1)("times", data.get("times", 1))
        return cls(
            op=op,
            kind=kind,
            times=times or 1,
            retry_after=_number(0)("retry_after", data.get("retry_after", 1.0)),
            timeout_seconds=_number(0)("timeout_seconds", data.get("timeout_seconds", 5.0)),
        )


class FaultQueue:
    """Faults waiting for matching requests, consumed in the order they were queued."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, faults: list[Fault]) -> None:
        with self._lock:
            self._faults.extend(faults)

    def take(self, op: str, *, can_moderate: bool) -> Fault | None:
        """The next fault for `op`; a moderation fault only fits requests that create something."""
        with self._lock:
            for fault in self._faults:
                if fault.op not in (op, "any"):
                    continue
                if fault.kind == "moderation" and not can_moderate:
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return replace(fault, times=1)
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(fault) for fault in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class RateLimiter:
    """A sliding one-minute window over accepted API calls (real time, not the emulator clock)."""

    def __init__(self) -> None:
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def check(self, limit: int | None) -> float | None:
        """Seconds to wait if over `limit`, else None (and the call is counted)."""
        if limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            while self._calls and self._calls[0] <= now - 60:
                self._calls.popleft()
            if len(self._calls) >= limit:
                return max(0.001, self._calls[0] + 60 - now)
            self._calls.append(now)
        return None

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


# --- Request log and counters ----------------------------------------------------------------


class RequestLog:
    """The last API calls: method, path, op, status, time and, for creates, the job id."""

    def __init__(self, limit: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass
class Counters:
    requests: int = 0
    creates: int = 0
    polls: dict[str, int] = field(default_factory=dict)  # by op: retrieve, list
    downloads: dict[str, int] = field(default_factory=dict)  # by variant
    faults_served: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def bump(self, name: str, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                setattr(self, name, getattr(self, name) + 1)
            else:
                bucket: dict[str, int] = getattr(self, name)
                bucket[key] = bucket.get(key, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "creates": self.creates,
                "polls": dict(self.polls),
                "downloads": dict(self.downloads),
                "faults_served": self.faults_served,
            }

    def clear(self) -> None:
        with self._lock:
            self.requests = self.creates = self.faults_served = 0
            self.polls.clear()
            self.downloads.clear()


class InFlight:
    """Provider jobs created and not yet finished at the emulator's clock, and the most
    there ever were at once since reset: what a client's concurrency limit is checked by.

    Each job is kept as its (start, finish) span, so the maximum is exact even when two
    creates are recorded out of order by concurrent request threads.
    """

    def __init__(self) -> None:
        self._spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def add(self, timeline: Timeline) -> None:
        with self._lock:
            self._spans.append((timeline.started, timeline.finishes_at))

    def report(self, now: float) -> dict[str, int]:
        """{"in_flight": jobs started and unfinished at `now`, "max_in_flight": the most ever}."""
        with self._lock:
            spans = list(self._spans)
        in_flight = sum(1 for started, finishes in spans if started <= now < finishes)
        # A job is in flight on [start, finish): at a shared instant, a finish comes first.
        events = sorted([(finishes, -1) for _, finishes in spans] + [(s, 1) for s, _ in spans])
        most = running = 0
        for _, step in events:
            running += step
            most = max(most, running)
        return {"in_flight": in_flight, "max_in_flight": most}

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()


# --- Prompt markers and timelines ------------------------------------------------------------

_AXIS = "(?:face|clothing|style)"
# A drift marker naming anything but DRIFT_AXES is no marker: it stays in the prompt as text.
_MARKER = re.compile(
    r"\s*\[\[emulate:(moderation|fail|latency=(\d+(?:\.\d+)?)"
    rf"|drift(?:=({_AXIS}(?:\s*,\s*{_AXIS})*))?)\]\]"
)


@dataclass(frozen=True)
class Markers:
    moderation: bool = False
    fail: bool = False
    latency: float | None = None
    drift: frozenset[str] = frozenset()  # empty: no drift marker (the settings decide)


def strip_markers(prompt: str) -> tuple[str, Markers]:
    """Remove `[[emulate:…]]` markers from a prompt and say what they asked for.

    `[[emulate:drift]]` asks for a take that drifts on every axis, `[[emulate:drift=face]]`
    or `[[emulate:drift=face,style]]` on those (several drift markers add up).
    """
    moderation = fail = False
    latency: float | None = None
    drift: set[str] = set()
    for match in _MARKER.finditer(prompt):
        if match.group(1) == "moderation":
            moderation = True
        elif match.group(1) == "fail":
            fail = True
        elif match.group(1).startswith("drift"):
            axes = match.group(3)
            drift |= {axis.strip() for axis in axes.split(",")} if axes else DRIFT_AXES
        else:
            latency = float(match.group(2))
    return _MARKER.sub("", prompt).strip(), Markers(moderation, fail, latency, frozenset(drift))


def take_drift(markers: Markers, config: EmulatorConfig, job_id: str) -> frozenset[str]:
    """The axes a take drifts on: its prompt's drift marker if it has one; else the
    emulator's settings: with drift_rate set, that share of takes (picked by a hash of the
    job id, so the same job always gets the same answer) drifts on drift_axes (all axes if
    none are set); without, every take drifts on drift_axes."""
    if markers.drift:
        return markers.drift
    if config.drift_rate is None:
        return config.drift_axes
    digest = hashlib.sha256(job_id.encode()).digest()
    if int.from_bytes(digest[:8], "big") / 2**64 >= config.drift_rate:
        return frozenset()
    return config.drift_axes or DRIFT_AXES


QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
_QUEUED_SHARE = 0.1  # the first tenth of the latency is spent in the queue


@dataclass(frozen=True)
class Timeline:
    """Where a job stands at any emulator time; nothing needs to tick in the background."""

    started: float
    latency: float
    steps: int
    fails: bool = False
    fails_early: bool = False  # moderation rejects before any generation happens

    @property
    def queued_until(self) -> float:
        return self.started + self.latency * _QUEUED_SHARE

    @property
    def finishes_at(self) -> float:
        return self.queued_until if self.fails_early else self.started + self.latency

    def phase(self, now: float) -> tuple[str, int]:
        """(phase, progress percent) at `now`."""
        if now >= self.finishes_at:
            if not self.fails:
                return SUCCEEDED, 100
            return FAILED, 0 if self.fails_early else self._progress(self.steps - 1)
        if now < self.queued_until:
            return QUEUED, 0
        span = self.finishes_at - self.queued_until
        share = (now - self.queued_until) / span if span > 0 else 1.0
        return RUNNING, self._progress(min(self.steps - 1, math.floor(share * self.steps)))

    def _progress(self, step: int) -> int:
        # Step k of n shows (k+1)/(n+1): never 0 (that reads as queued) and never 100.
        return (100 * (step + 1)) // (self.steps + 1)
