"""Prices in Decimal: the price book's most specific line, account overrides, estimates, actuals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jobs import prices
from jobs.models import PriceEntry
from jobs.providers import ADAPTERS
from jobs.providers.fal import catalog
from jobs.providers.openai import OpenAIProvider
from jobs.providers.sora_relay import SoraRelayProvider
from tests.jobs.factories import ProviderAccountFactory

pytestmark = pytest.mark.django_db


def _adapter(account):
    return (OpenAIProvider if account.kind == "openai" else SoraRelayProvider)(
        base_url=account.base_url, api_key="k", model=account.model
    )


def test_the_seeded_book_prices_sora_2_at_ten_cents_a_second():
    account = ProviderAccountFactory(kind="openai", model="sora-2")
    with _adapter(account) as adapter:
        assert prices.estimate(account, adapter, seconds=8, size="1280x720") == Decimal("0.8000")


@pytest.mark.parametrize(
    ("size", "per_second"),
    [("1280x720", Decimal("0.30")), ("1792x1024", Decimal("0.50")), ("1024x1792", Decimal("0.50"))],
)
def test_sora_2_pro_costs_more_for_its_large_sizes(size, per_second):
    account = ProviderAccountFactory(kind="openai", model="sora-2-pro")
    with _adapter(account) as adapter:
        assert prices.estimate(account, adapter, seconds=12, size=size) == per_second * 12


def test_the_relay_charges_one_flat_price_whatever_the_length():
    account = ProviderAccountFactory(kind="sora_relay", model="")
    with _adapter(account) as adapter:
        assert prices.estimate(account, adapter, seconds=10, size="720x1280") == Decimal("0.12")
        assert prices.estimate(account, adapter, seconds=15, size="720x1280") == Decimal("0.12")


def test_an_account_override_beats_the_book():
    account = ProviderAccountFactory(kind="openai", model="sora-2", price_override=Decimal("0.15"))
    with _adapter(account) as adapter:
        assert prices.estimate(account, adapter, seconds=8, size="1280x720") == Decimal("1.2000")


def test_a_changed_book_line_changes_the_next_estimate():
    PriceEntry.objects.filter(provider_kind="openai", model="sora-2", unit="second").update(
        amount=Decimal("0.0875")
    )
    account = ProviderAccountFactory(kind="openai", model="sora-2")
    with _adapter(account) as adapter:
        # 0.0875 * 12 = 1.05 exactly: no float ever rounds it to 1.0499999.
        assert prices.estimate(account, adapter, seconds=12, size="1280x720") == Decimal("1.0500")


def test_with_no_book_line_the_adapters_list_price_applies():
    PriceEntry.objects.filter(provider_kind="openai").delete()
    account = ProviderAccountFactory(kind="openai", model="sora-2")
    with _adapter(account) as adapter:
        assert prices.estimate(account, adapter, seconds=4, size="1280x720") == Decimal("0.4000")


def test_a_per_second_video_is_charged_for_the_seconds_it_has():
    account = ProviderAccountFactory(kind="openai", model="sora-2")
    with _adapter(account) as adapter:
        cost = prices.actual(
            account,
            adapter,
            estimate=Decimal("0.80"),
            size="1280x720",
            requested_seconds=8,
            made_seconds=7.96,
            usage=None,
        )
    assert cost == Decimal("0.8000")


def test_reported_usage_is_what_is_charged():
    account = ProviderAccountFactory(kind="openai", model="sora-2")
    with _adapter(account) as adapter:
        cost = prices.actual(
            account,
            adapter,
            estimate=Decimal("0.80"),
            size="1280x720",
            requested_seconds=8,
            made_seconds=8.0,
            usage=Decimal("4"),
        )
    assert cost == Decimal("0.4000")


def test_rounding_is_half_up_to_the_hundredth_of_a_cent():
    assert prices.rounded(Decimal("0.66134")) == Decimal("0.6613")
    assert prices.rounded(Decimal("0.66135")) == Decimal("0.6614")


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_the_seeded_book_prices_every_provider_in_its_own_unit(kind):
    unit = ADAPTERS[kind].capabilities.pricing_unit

    line = PriceEntry.objects.get(provider_kind=kind, model="", size="", unit=unit)

    assert line.amount > 0
    assert line.source


@pytest.mark.parametrize("model", sorted(catalog().models))
def test_the_book_prices_every_hosted_fal_model_as_its_row_does(model):
    row = catalog().models[model]

    line = PriceEntry.objects.get(provider_kind="fal", model=model, unit=row.price_unit)

    assert line.amount == row.price
