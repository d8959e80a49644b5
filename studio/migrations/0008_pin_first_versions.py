"""Takes made before versions were made with each character's first version, and the series
that made them are pinned to it."""

from django.db import migrations


def pin_first_versions(apps, schema_editor):
    Take = apps.get_model("studio", "Take")
    SeriesCharacter = apps.get_model("studio", "SeriesCharacter")
    CharacterVersion = apps.get_model("characters", "CharacterVersion")
    first = {v.character_id: v for v in CharacterVersion.objects.filter(number=1)}
    pinned = set()
    takes = Take.objects.select_related("scene__episode").prefetch_related("scene__mentions")
    for take in takes.iterator(chunk_size=500):
        versions = [first[c.pk] for c in take.scene.mentions.all() if c.pk in first]
        take.character_versions.set(versions)
        series_id = take.scene.episode.series_id
        for version in versions:
            if (series_id, version.character_id) not in pinned:
                SeriesCharacter.objects.get_or_create(
                    series_id=series_id,
                    character_id=version.character_id,
                    defaults={"version": version},
                )
                pinned.add((series_id, version.character_id))


class Migration(migrations.Migration):
    dependencies = [
        ("studio", "0007_consistency"),
        ("characters", "0006_first_versions"),
    ]

    operations = [migrations.RunPython(pin_first_versions, migrations.RunPython.noop)]
