"""Price ElevenLabs in the price book (editable in the admin): a credit per character of
Multilingual v2 (Flash and Turbo v2.5 take half a credit a character, which the adapter
counts), and a voice made from a sample (an instant clone) at no charge.

[?]: from ElevenLabs' published pricing page, not re-checked offline.
"""

from decimal import Decimal

from django.db import migrations

# (provider kind, model, size, unit, amount, source)
PRICES = [
    (
        "elevenlabs",
        "",
        "",
        "credit",
        "0.0003",
        "ElevenLabs pricing: Creator plan usage beyond its credits, $0.30 per 1,000 credits "
        "(1 credit a character, Multilingual v2) [?]",
    ),
    (
        "elevenlabs",
        "",
        "",
        "character",
        "0",
        "ElevenLabs: instant voice clones are included in paid plans",
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


def unseed(apps, schema_editor):
    PriceEntry = apps.get_model("jobs", "PriceEntry")
    for kind, model, size, unit, _, source in PRICES:
        PriceEntry.objects.filter(
            provider_kind=kind, model=model, size=size, unit=unit, source=source
        ).delete()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0013_speech")]
    operations = [migrations.RunPython(seed, unseed)]
