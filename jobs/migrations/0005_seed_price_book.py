"""Seed the price book with the figures in shared/PROVIDERS.md (editable in the admin)."""

from decimal import Decimal

from django.db import migrations

# (provider kind, model, size, unit, amount, source)
PRICES = [
    ("openai", "sora-2", "", "second", "0.10", "PROVIDERS.md: sora-2, 720p [C]"),
    ("openai", "sora-2-pro", "", "second", "0.30", "PROVIDERS.md: sora-2-pro, 720p [C]"),
    ("openai", "sora-2-pro", "1024x1792", "second", "0.50", "PROVIDERS.md: sora-2-pro, 1024x1792 [3P]"),
    ("openai", "sora-2-pro", "1792x1024", "second", "0.50", "PROVIDERS.md: sora-2-pro, 1792x1024 [3P]"),
    ("openai", "", "", "second", "0.10", "PROVIDERS.md: sora-2's price, for a gateway's other models"),
    ("openai", "", "", "character", "0", "No published price for creating a character"),
    ("sora_relay", "", "", "request", "0.12", "PROVIDERS.md: flat, about $0.12 a video"),
    ("sora_relay", "", "", "character", "0", "PROVIDERS.md: creating a character is free"),
    (
        "seedance",
        "",
        "",
        "token",
        "0.0000038272",
        "PROVIDERS.md: about $0.93 for 5 s at 1080p [3P] = 243,000 tokens (W×H×24×s/1024)",
    ),
]


def seed(apps, schema_editor):
    PriceEntry = apps.get_model("jobs", "PriceEntry")
    for kind, model, size, unit, amount, source in PRICES:
        PriceEntry.objects.get_or_create(
            provider_kind=kind,
            model=model,
            size=size,
            unit=unit,
            defaults={"amount": Decimal(amount), "source": source},
        )


class Migration(migrations.Migration):
    dependencies = [("jobs", "0004_routing_prices_budgets")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
