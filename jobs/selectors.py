"""Reads of the engine for pages: the capability matrix of a workspace's accounts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from jobs import breaker, prices, routing
from jobs.compiled import Compiled
from jobs.models import ProviderAccount
from jobs.providers import provider_for
from jobs.providers.base import Capabilities

_MENTIONS = {
    "name": "the character's name, with its saved id sent alongside",
    "@id": "@ and the provider's character id",
    "image n": "by reference: “Mina (image 1)”",
    "<<<element_n>>>": "by the saved element: “<<<element_1>>>”",
    "@tag": "by reference, tagged: “Mina (@Image1)”",
    "plain": "described in words",
}
_UNITS = {
    "second": "a second of video",
    "request": "a video",
    "token": "a million tokens",
    "credit": "a credit",
}


_enabled_accounts = Compiled(
    lambda workspace_id: ProviderAccount.objects.filter(
        workspace_id=workspace_id, enabled=True
    ).order_by("name", "pk")
)


def accounts_enabled(*, workspace_id: int) -> list[ProviderAccount]:
    """The workspace's switched-on accounts by name: what every quote and route reads
    (compiled once per process)."""
    return _enabled_accounts(workspace_id=workspace_id)


@dataclass(frozen=True)
class AccountColumn:
    """One account's column of the matrix."""

    account: ProviderAccount
    label: str
    capabilities: Capabilities
    unit_price: Decimal
    price_from: str  # "account", "price book" or "list price"
    example: Decimal | None  # an 8 s 1280x720 video, where it makes one
    health: routing.Health
    breaker: breaker.BreakerState

    @property
    def mentions(self) -> str:
        syntax = self.capabilities.mention_syntax
        return _MENTIONS.get(syntax, syntax)

    @property
    def price_words(self) -> str:
        unit = self.capabilities.pricing_unit
        if self.capabilities.output == "speech":  # fractions of a cent a character
            return f"${self.unit_price * 1000:.2f} for 1,000 credits (about 1,000 characters)"
        amount = self.unit_price * 1_000_000 if unit == "token" else self.unit_price
        return f"${amount:.2f} {_UNITS.get(unit, unit)}"


def capability_matrix(accounts: Iterable[ProviderAccount]) -> list[AccountColumn]:
    accounts = list(accounts)
    health = routing.health_of(a.pk for a in accounts)
    columns = []
    for account in accounts:
        provider = provider_for(account)
        try:
            caps = provider.capabilities
            price = prices.unit_price(account, provider)
            if account.price_override is not None:
                source = "account"
            elif prices.book_price(account, unit=caps.pricing_unit, size="") is not None:
                source = "price book"
            else:
                source = "list price"
            example = None
            if 8 in caps.durations and "1280x720" in caps.sizes:
                example = prices.estimate(account, provider, seconds=8, size="1280x720")
            columns.append(
                AccountColumn(
                    account=account,
                    label=provider.label,
                    capabilities=caps,
                    unit_price=price,
                    price_from=source,
                    example=example,
                    health=health.get(account.pk, routing.Health()),
                    breaker=breaker.state(account.pk),
                )
            )
        finally:
            provider.close()
    return columns
