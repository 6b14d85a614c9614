from django.db import migrations, models


class Migration(migrations.Migration):
    """Nullable columns without a default: PostgreSQL adds them without rewriting or scanning the
    table (a catalog change under a brief ACCESS EXCLUSIVE lock), so it is safe on a live table;
    rows running when it is applied have no lease and are judged by their start time."""

    dependencies = [
        ("jobs", "0003_files_in_storage"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="claim",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="lease_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
