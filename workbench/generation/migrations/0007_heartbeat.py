from django.db import migrations, models
from django.db.models.functions import Now


def existing_batches_were_sent(apps, schema_editor):
    # Batches from before this migration were sent when their run started; only a later failure clears the time.
    apps.get_model("generation", "GenerationBatch").objects.filter(dispatched_at__isnull=True).update(dispatched_at=Now())


class Migration(migrations.Migration):

    dependencies = [
        ('generation', '0006_run_preflight'),
    ]

    operations = [
        migrations.AddField(
            model_name='generationbatch',
            name='dispatched_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='generationbatch',
            name='heartbeat_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='generationrun',
            name='status',
            field=models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('dispatch_failed', 'Failed to dispatch')], default='queued', max_length=16),
        ),
        migrations.AddIndex(
            model_name='generationbatch',
            index=models.Index(condition=models.Q(('status__in', ['queued', 'running'])), fields=['status'], name='batch_active_idx'),
        ),
    ]
