"""Forms for provider accounts: keys are write-only."""

from __future__ import annotations

from django import forms

from jobs.models import ProviderAccount


class ProviderAccountForm(forms.ModelForm):
    base_url = forms.URLField(
        max_length=300,
        assume_scheme="https",
        help_text="For example https://api.openai.com/v1, or a compatible gateway's base URL.",
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
