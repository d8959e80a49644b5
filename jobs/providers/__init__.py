"""Provider adapters, one module each, behind one interface (jobs.providers.base.Provider)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.providers.base import Provider
from jobs.providers.http import shared_client
from jobs.providers.openai import OpenAIProvider
from jobs.providers.seedance import SeedanceProvider
from jobs.providers.sora_relay import SoraRelayProvider

if TYPE_CHECKING:
    from jobs.models import ProviderAccount

ADAPTERS: dict[str, type[Provider]] = {
    OpenAIProvider.kind: OpenAIProvider,
    SoraRelayProvider.kind: SoraRelayProvider,
    SeedanceProvider.kind: SeedanceProvider,
}


def provider_for(account: ProviderAccount, *, timeout: float | None = None) -> Provider:
    """An adapter speaking to the account's provider with its decrypted key."""
    from django.conf import settings

    timeout = float(timeout or settings.JOBS_PROVIDER_TIMEOUT_SECONDS)
    adapter = ADAPTERS[account.kind]
    return adapter(
        base_url=account.base_url,
        api_key=account.api_key(),
        model=account.model,
        http=shared_client(timeout),
        max_result_bytes=settings.JOBS_RESULT_MAX_BYTES,
    )
