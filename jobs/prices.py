"""Prices: what a job (a video, or speech) will cost before it is sent, and what it cost once
made.

The price per unit comes from, in order: the account's own override, the most
specific line of the price book (model and size before "any"), the adapter's list
price. Arithmetic is Decimal throughout and rounded once, to the cent's hundredth
(the precision of Job.cost_estimate and cost_actual), half up.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from jobs.compiled import Compiled
from jobs.models import PriceEntry, PriceUnit, ProviderAccount
from jobs.providers.base import Provider
from jobs.providers.speech import SpeechProvider

COST_PLACES = Decimal("0.0001")


def rounded(amount: Decimal) -> Decimal:
    return amount.quantize(COST_PLACES, rounding=ROUND_HALF_UP)


def book_price(account: ProviderAccount, *, unit: str, size: str) -> Decimal | None:
    """The most specific price-book line for this account's provider, model and size."""
    lines = _price_lines(
        kind=account.kind, unit=unit, models=[account.model or "", ""], sizes=[size, ""]
    )
    best: tuple[int, Decimal] | None = None
    for line in lines:
        rank = (2 if line.model else 0) + (1 if line.size else 0)
        if best is None or rank > best[0]:
            best = (rank, line.amount)
    return None if best is None else best[1]


# Every quote reads its prices: compiled once per process (jobs.compiled).
_price_lines = Compiled(
    lambda kind, unit, models, sizes: PriceEntry.objects.filter(
        provider_kind=kind, unit=unit, model__in=models, size__in=sizes
    )
)


def unit_price(account: ProviderAccount, provider: Provider, *, size: str = "") -> Decimal:
    """The price of one pricing unit (second, video or token) at this account."""
    if account.price_override is not None:
        return account.price_override
    unit = provider.capabilities.pricing_unit
    found = book_price(account, unit=unit, size=size)
    return provider.capabilities.price if found is None else found


def character_price(account: ProviderAccount, provider: Provider) -> Decimal:
    found = book_price(account, unit=PriceUnit.CHARACTER, size="")
    return provider.capabilities.character_price if found is None else found


def estimate(
    account: ProviderAccount,
    provider: Provider,
    *,
    seconds: int,
    size: str,
    characters_to_register: int = 0,
) -> Decimal:
    """What a video will cost before it is made, characters to register included."""
    units = provider.usage_estimate(seconds=seconds, size=size)
    total = unit_price(account, provider, size=size) * units
    if characters_to_register:  # the price book is read only for what is bought
        total += character_price(account, provider) * characters_to_register
    return rounded(total)


def actual(
    account: ProviderAccount,
    provider: Provider,
    *,
    estimate: Decimal,
    size: str,
    requested_seconds: int,
    made_seconds: float | None,
    usage: Decimal | None,
) -> Decimal:
    """What a finished video cost: the provider's reported usage where it gives one, else
    the seconds actually made for per-second pricing, else the estimate. What the
    estimate held besides the video (characters registered on the way) is kept."""
    price = unit_price(account, provider, size=size)
    planned = rounded(price * provider.usage_estimate(seconds=requested_seconds, size=size))
    extras = max(Decimal(0), estimate - planned)
    if usage is not None:
        return rounded(price * usage) + extras
    if provider.capabilities.pricing_unit == "second" and made_seconds and requested_seconds:
        return rounded(price * Decimal(round(made_seconds))) + extras
    return estimate


def speech_estimate(account: ProviderAccount, provider: SpeechProvider, *, text: str) -> Decimal:
    """What speaking `text` will cost before it is spoken (ElevenLabs: its credits)."""
    return rounded(unit_price(account, provider) * provider.credits_for(text))


def speech_actual(
    account: ProviderAccount,
    provider: SpeechProvider,
    *,
    estimate: Decimal,
    credits: Decimal | None,
) -> Decimal:
    """What a synthesis cost: the credits the provider says it took, else the estimate."""
    if credits is None:
        return estimate
    return rounded(unit_price(account, provider) * credits)
