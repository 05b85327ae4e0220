"""Question bands become duplicate-search keys (`workbench.quality.filters.question_bands`): a question's term keys and
near-copy keys take several rows of one band, and the rows stored under the earlier scheme (MinHash LSH bands of every
question's terms) mean nothing to the new lookup, so every project's rows are rebuilt from its pairs' questions."""

from django.db import migrations, models


def rebuild_question_bands(apps, schema_editor, batch=2000):
    """Replace every stored band with the keys `question_bands` gives now, per project with its term threshold."""
    from workbench.quality.filters import FilterConfig, question_bands

    Project = apps.get_model("projects", "Project")
    QAPair = apps.get_model("generation", "QAPair")
    QuestionBand = apps.get_model("quality", "QuestionBand")
    db = schema_editor.connection.alias
    QuestionBand.objects.using(db).all().delete()
    for project in Project.objects.using(db).order_by("pk"):
        term_threshold = FilterConfig.from_overrides(project.filter_thresholds)["duplicate.term_similarity"]
        pairs = QAPair.objects.using(db).filter(project=project).exclude(question="").order_by("pk")
        rows = []
        for pair_id, question in pairs.values_list("pk", "question").iterator(chunk_size=batch):
            rows += [
                QuestionBand(project_id=project.pk, pair_id=pair_id, band=band, hash=value)
                for band, value in question_bands(question, term_threshold)
            ]
            if len(rows) >= batch * 8:
                QuestionBand.objects.using(db).bulk_create(rows)
                rows = []
        QuestionBand.objects.using(db).bulk_create(rows)


def drop_question_bands(apps, schema_editor):
    """Back to the one-row-per-band constraint: the rows go (a project's re-score stores them again)."""
    apps.get_model("quality", "QuestionBand").objects.using(schema_editor.connection.alias).all().delete()


class Migration(migrations.Migration):
    dependencies = [("quality", "0003_unsupported_embedding")]

    operations = [
        migrations.RemoveConstraint(model_name="questionband", name="question_band_once"),
        migrations.AddConstraint(
            model_name="questionband",
            constraint=models.UniqueConstraint(fields=("pair", "band", "hash"), name="question_band_once"),
        ),
        migrations.RunPython(rebuild_question_bands, drop_question_bands),
    ]
