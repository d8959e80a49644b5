"""A share becomes an offer the receiving owners answer; every existing share was in use,
so it becomes an accepted one."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def accept_existing_shares(apps, schema_editor):
    CharacterShare = apps.get_model("characters", "CharacterShare")
    shares = CharacterShare.objects.select_related("workspace")
    for share in shares.iterator():
        share.status = "accepted"
        share.offered_slug = share.workspace.slug
        share.answered_at = share.created_at
        share.save(update_fields=["status", "offered_slug", "answered_at"])


def drop_unaccepted_shares(apps, schema_editor):
    # Before this migration every row was a share in use: keeping an offer would
    # hand the character over without its receivers' consent.
    CharacterShare = apps.get_model("characters", "CharacterShare")
    CharacterShare.objects.exclude(status="accepted").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("characters", "0002_initial"),
        ("studio", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="charactershare",
            name="status",
            field=models.CharField(
                choices=[
                    ("offered", "Offered"),
                    ("accepted", "Accepted"),
                    ("declined", "Declined"),
                    ("removed", "Removed by the receiving workspace"),
                ],
                default="offered",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="charactershare",
            name="offered_slug",
            field=models.SlugField(db_index=False, default="", max_length=60),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="charactershare",
            name="answered_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="charactershare",
            name="answered_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="charactershare",
            name="workspace",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="shared_characters",
                to="studio.workspace",
            ),
        ),
        migrations.AlterModelOptions(
            name="charactershare",
            options={"ordering": ["created_at", "pk"]},
        ),
        migrations.RunPython(accept_existing_shares, drop_unaccepted_shares),
    ]
