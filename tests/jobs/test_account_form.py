"""The provider account form: an empty base URL means the provider's own address."""

from __future__ import annotations

import pytest

from jobs.forms import ProviderAccountForm
from jobs.providers import ADAPTERS

pytestmark = pytest.mark.django_db

OFFICIAL = sorted(kind for kind, adapter in ADAPTERS.items() if adapter.official_base_url)
USERS_OWN = sorted(kind for kind, adapter in ADAPTERS.items() if not adapter.official_base_url)


def _form(kind: str, base_url: str = "") -> ProviderAccountForm:
    return ProviderAccountForm(
        {
            "name": "Studio account",
            "kind": kind,
            "base_url": base_url,
            "model": "",
            "enabled": "on",
            "concurrency_limit": "2",
            "api_key": "key-abcdefgh",
        }
    )


def test_the_live_providers_have_an_address_of_their_own():
    assert {"kling", "gemini", "runway", "fal", "seedance"} <= set(OFFICIAL)
    # A gateway, a relay and a Vertex project are each the user's own address.
    assert {"openai", "sora_relay", "veo"} <= set(USERS_OWN)


@pytest.mark.parametrize("kind", OFFICIAL)
def test_an_empty_base_url_becomes_the_providers_own(kind):
    form = _form(kind)

    assert form.is_valid(), form.errors
    assert form.save(commit=False).base_url == ADAPTERS[kind].official_base_url


@pytest.mark.parametrize("kind", USERS_OWN)
def test_a_provider_without_an_address_of_its_own_asks_for_one(kind):
    form = _form(kind)

    assert not form.is_valid()
    assert "has no address of its own" in form.errors["base_url"][0]


def test_a_base_url_given_is_kept():
    form = _form("kling", "https://api-beijing.klingai.com")

    assert form.is_valid(), form.errors
    assert form.save(commit=False).base_url == "https://api-beijing.klingai.com"


def test_the_form_lists_each_official_address():
    help_text = str(ProviderAccountForm().fields["base_url"].help_text)

    for kind in OFFICIAL:
        assert ADAPTERS[kind].official_base_url in help_text
