"""Every character gets its first version: its description and references as they are."""

from django.db import migrations


def first_versions(apps, schema_editor):
    Character = apps.get_model("characters", "Character")
    CharacterVersion = apps.get_model("characters", "CharacterVersion")
    for character in Character.objects.filter(versions__isnull=True).iterator():
        version = CharacterVersion.objects.create(
            character=character,
            number=1,
            description=character.description,
            change="The character as it was when versions began.",
            created_by_id=character.created_by_id,
        )
        version.assets.set(character.assets.all())


class Migration(migrations.Migration):
    dependencies = [("characters", "0005_character_versions")]

    operations = [migrations.RunPython(first_versions, migrations.RunPython.noop)]
