"""Forms for provider accounts: keys are write-only."""

from __future__ import annotations

from django import forms

from jobs.models import ProviderAccount, ProviderKind
from jobs.providers import ADAPTERS


def _official_addresses() -> str:
    return "; ".join(
        f"{kind}: {adapter.official_base_url}"
        for kind, adapter in sorted(ADAPTERS.items())
        if adapter.official_base_url
    )


class ProviderAccountForm(forms.ModelForm):
    base_url = forms.URLField(
        max_length=300,
        required=False,
        assume_scheme="https",
        help_text=(
            "Leave empty for the provider's own address "
            f"({_official_addresses()}). A gateway, a relay or a Vertex AI project "
            "(https://<region>-aiplatform.googleapis.com/v1/projects/<project>/locations/"
            "<region>) needs its own."
        ),
    )
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted and never shown again. Leave empty to keep the current key.",
    )
    webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=(
            "The provider's signing secret (whsec_…), if it sends webhooks. Leave empty to keep it."
        ),
    )

    class Meta:
        model = ProviderAccount
        fields = [
            "name",
            "kind",
            "base_url",
            "model",
            "enabled",
            "callbacks",
            "concurrency_limit",
            "price_override",
        ]
        labels = {"price_override": "Price per unit"}

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind and not cleaned.get("base_url") and "base_url" not in self.errors:
            official = ADAPTERS[kind].official_base_url
            if official:
                cleaned["base_url"] = official
            else:
                self.add_error(
                    "base_url",
                    f"{ProviderKind(kind).label} has no address of its own: give the base URL "
                    "of the gateway, relay or project you use.",
                )
        return cleaned
