"""Typed readers for configuration taken from environment variables.

Each helper fails loudly (ImproperlyConfigured) on a value it cannot parse, so a
typo in production stops the process at start instead of being ignored.
"""

from __future__ import annotations

import math
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false, 1/0), got {raw!r}")


def _env_number(name: str, default, *, parse, kind: str, minimum):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {kind}, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    return _env_number(name, default, parse=int, kind="an integer", minimum=minimum)


def _finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    """Seconds and the like, fractions allowed (not nan nor inf)."""
    return _env_number(name, default, parse=_finite, kind="a finite number", minimum=minimum)


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_int_list(name: str, default: list[int], *, minimum: int | None = None) -> list[int]:
    """Comma-separated integers, e.g. "5,300,1800"; one that is not a number stops us by name."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    values = []
    for part in (part.strip() for part in raw.split(",")):
        if not part.lstrip("-").isdigit():
            raise ImproperlyConfigured(f"{name} must list whole numbers, e.g. 5,300; got {raw!r}")
        if minimum is not None and int(part) < minimum:
            raise ImproperlyConfigured(f"{name} values must be at least {minimum}, got {part}")
        values.append(int(part))
    return values


def env_rate(name: str, default: str) -> str:
    """A rate limit as "requests/seconds", e.g. "20/60"; checked here, parsed where used."""
    raw = os.environ.get(name)
    value = default if raw is None or not raw.strip() else raw.strip()
    count, _, seconds = value.partition("/")
    if not (count.isdigit() and seconds.isdigit() and int(count) > 0 and int(seconds) > 0):
        raise ImproperlyConfigured(
            f"{name} must look like 20/60 (requests per seconds), got {value!r}"
        )
    return value


def env_secret(name: str, *, fallback_file: Path, generate: bool, length: int = 64) -> str:
    """Return the secret in `name`; on a development machine, one generated once into
    `fallback_file` when the variable is unset.

    `generate` is on only with DEBUG (settings.py): in production every web process and
    worker must share one value, and a key generated per machine would make what one host
    stored (provider keys encrypted with ENCRYPTION_KEYS, signed sessions) unreadable on
    another. So off DEBUG a missing secret is left empty (never generated), and the
    processes that would use it refuse to start, naming it (studio.project.startup).
    """
    raw = os.environ.get(name)
    if raw:
        return raw
    if not generate:
        return ""
    if fallback_file.exists():
        return fallback_file.read_text().strip()
    fallback_file.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(length)
    fallback_file.write_text(value)
    fallback_file.chmod(0o600)
    return value
