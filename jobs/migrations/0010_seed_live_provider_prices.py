"""Price the live providers in the price book (editable in the admin).

Figures marked [3P] come from third-party summaries of the provider's published price
list, [C] from the provider's own documents, [?] from a page not re-checked offline.
fal.ai's rows repeat jobs/providers/fal_models.toml, where each hosted model is a row.
"""

from decimal import Decimal

from django.db import migrations

# (provider kind, model, size, unit, amount, source)
PRICES = [
    (
        "kling",
        "",
        "",
        "second",
        "0.168",
        "Kling developer pricing (kling-v3-omni, 1080p with sound) via Atlas Cloud [3P]",
    ),
    ("kling", "", "", "character", "0", "No published charge for creating an element"),
    ("veo", "", "", "second", "0.40", "Vertex AI list price, Veo 3.1 with audio [3P]"),
    (
        "veo",
        "veo-3.1-fast-generate-001",
        "",
        "second",
        "0.15",
        "Vertex AI list price, Veo 3.1 Fast with audio [3P]",
    ),
    (
        "gemini",
        "",
        "",
        "second",
        "0.10",
        "Gemini Omni Flash preview, 720p with audio (docs.gmicloud.ai) [3P]",
    ),
    ("runway", "", "", "credit", "0.01", "Runway API: one credit is $0.01 [3P]"),
    (
        "fal",
        "",
        "",
        "second",
        "0.3034",
        "fal.ai: as its default hosted model, Seedance 2.0 reference-to-video [?]",
    ),
    (
        "fal",
        "bytedance/seedance-2.0/reference-to-video",
        "",
        "second",
        "0.3034",
        "fal.ai model page, 720p with audio [?]",
    ),
    (
        "fal",
        "fal-ai/kling-video/v2.1/master/text-to-video",
        "",
        "second",
        "0.28",
        "fal.ai model page: $1.40 for 5 s, $0.28 per further second [3P]",
    ),
    (
        "fal",
        "fal-ai/kling-video/v1.6/standard/elements",
        "",
        "second",
        "0.056",
        "fal.ai llms.txt for fal-ai/kling-video/v1.6/standard/elements [C]",
    ),
    ("fal", "fal-ai/veo3.1", "", "second", "0.40", "fal.ai model page, audio on [3P]"),
    (
        "fal",
        "fal-ai/veo3.1/reference-to-video",
        "",
        "second",
        "0.40",
        "fal.ai model page, as fal-ai/veo3.1 with audio [3P]",
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
    dependencies = [("jobs", "0009_live_providers")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
