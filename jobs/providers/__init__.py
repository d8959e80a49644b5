"""Provider adapters, one module each, behind one interface (jobs.providers.base.Provider).

Importing this package imports every adapter module, and each adapter registers itself
by its kind (Provider.__init_subclass__). Nothing here knows the engine's rows: an
account is anything with a kind, a base URL, a model and a key.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Protocol

from django.conf import settings

from jobs.providers.base import ADAPTERS, Capabilities, Provider
from jobs.providers.http import shared_client

# The package's plumbing; every other module in it is an adapter, and registers itself.
_PLUMBING = {"base", "errors", "http", "speech", "transport"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _PLUMBING:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ADAPTERS", "AccountSettings", "capabilities_of", "provider_for"]


class AccountSettings(Protocol):
    """What an adapter needs of a provider account (jobs.models.ProviderAccount has it)."""

    kind: str
    base_url: str
    model: str

    def api_key(self) -> str: ...


def capabilities_of(kind: str, model: str = "") -> Capabilities:
    """What a kind of provider can make (with `model`), as its adapter declares it."""
    return ADAPTERS[kind].capabilities_for(model)


def provider_for(account: AccountSettings, *, timeout: float | None = None) -> Provider:
    """An adapter speaking to the account's provider with its decrypted key."""
    timeout = float(timeout or settings.JOBS_PROVIDER_TIMEOUT_SECONDS)
    adapter = ADAPTERS[account.kind]
    return adapter(
        base_url=account.base_url,
        api_key=account.api_key(),
        model=account.model,
        http=shared_client(timeout),
        max_result_bytes=settings.JOBS_RESULT_MAX_BYTES,
    )
