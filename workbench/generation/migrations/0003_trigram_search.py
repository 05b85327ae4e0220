"""Trigram indexes for searching Korean text in questions and answers (PostgreSQL only; SQLite falls back to LIKE)."""
from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS pair_question_trgm ON generation_qapair USING gin (question gin_trgm_ops)"
    )
    schema_editor.execute("CREATE INDEX IF NOT EXISTS pair_answer_trgm ON generation_qapair USING gin (answer gin_trgm_ops)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS pair_question_trgm")
    schema_editor.execute("DROP INDEX IF EXISTS pair_answer_trgm")


class Migration(migrations.Migration):
    dependencies = [("generation", "0002_queue_order")]
    operations = [migrations.RunPython(forwards, backwards)]
