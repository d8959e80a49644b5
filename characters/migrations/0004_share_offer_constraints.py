"""Constraints that need 0003's data in place; a separate migration, so PostgreSQL adds
them outside the transaction that rewrote the rows."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("characters", "0003_share_offers"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="charactershare",
            constraint=models.UniqueConstraint(
                fields=("character", "offered_slug"), name="one_share_per_offered_slug"
            ),
        ),
        migrations.AddConstraint(
            model_name="charactershare",
            constraint=models.CheckConstraint(
                condition=models.Q(("status", "accepted"), _negated=True)
                | models.Q(("workspace__isnull", False)),
                name="accepted_share_has_workspace",
            ),
        ),
    ]
