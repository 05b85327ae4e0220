"""A large export runs on the real Celery worker and its progress moves on the Exports page while it runs, on
PostgreSQL (progress written beside the export's read-only snapshot) and on SQLite (written between pages of reading)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from django.db import connections
from django.urls import reverse

from tests.browser import chromium_page, log_in
from tests.conftest import ROOT
from tests.factories import make_pairs
from workbench.exports.models import Export
from workbench.generation.models import PairStatus, QAPair
from workbench.jobs import JobStatus

GATE_KEY = 7_274_001
# Test scaffolding, not product code: a trigger holds the export's second progress write until the test lets it go,
# so the page is looked at while the export is surely mid-way (after 10 of 51 rows), however fast the machine is.
GATE_SQL = f"""
CREATE OR REPLACE FUNCTION test_export_progress_gate() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'running' AND OLD.rows_done > 0 AND NEW.rows_done > OLD.rows_done THEN
        PERFORM pg_advisory_xact_lock_shared({GATE_KEY});
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER test_export_progress_gate BEFORE UPDATE ON exports_export
    FOR EACH ROW EXECUTE FUNCTION test_export_progress_gate();
"""


@pytest.fixture
def progress_gate(transactional_db):
    """Closed while the test holds it: the export's progress stops moving after its first report."""
    gate = connections.create_connection("default")
    with gate.cursor() as cursor:
        cursor.execute(GATE_SQL)
        cursor.execute("SELECT pg_advisory_lock(%s)", [GATE_KEY])

    def open_gate():
        with gate.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock_all()")

    yield open_gate
    with gate.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock_all()")
        cursor.execute("DROP TRIGGER IF EXISTS test_export_progress_gate ON exports_export")
        cursor.execute("DROP FUNCTION IF EXISTS test_export_progress_gate()")
    gate.close()


@pytest.mark.worker
def test_large_export_progress_moves_on_the_page_while_the_worker_runs(
    live_server, start_worker, progress_gate, project, owner, settings
):
    settings.EXPORT_INLINE_MAX_ROWS = 50
    pairs = make_pairs(project, settings.EXPORT_INLINE_MAX_ROWS + 1, question="질문 {i}?", answer="답 {i}.")
    QAPair.objects.filter(pk__in=[p.pk for p in pairs]).update(status=PairStatus.APPROVED)
    start_worker(EXPORT_BATCH_ROWS="10")
    base = live_server.url
    with chromium_page() as page:
        log_in(page, base, owner.username)
        page.goto(f"{base}/p/{project.slug}/exports/")
        page.select_option("#id_format", "messages")
        page.click("#export-form button[type=submit]")
        page.wait_for_selector(".messages li.success")
        assert "of 51 pairs started" in page.inner_text(".messages")
        export = Export.objects.get(project=project)

        # Mid-way: the page's bar shows the worker's first batch while the export still runs.
        # What the page shows once its bar first moves (or the export ended without it moving).
        shown = page.wait_for_function(
            """() => {
            const row = document.querySelector('tr.export-active');
            const bar = row && row.querySelector('progress');
            const status = row && row.querySelector('.export-status').textContent.trim().toLowerCase();
            if (row && bar.value === 0 && (status === 'queued' || status === 'running')) return false;
            return row ? [status, bar.value, bar.max, row.querySelector('.export-rows').textContent] : ['no row'];
        }""",
            timeout=60_000,
        ).json_value()
        assert shown == ["running", 10, 51, "10"]
        status = page.request.get(f"{base}{reverse('exports:status', args=[project.slug, export.pk])}").json()
        assert (status["status"], status["rows_done"], status["rows_total"]) == ("running", 10, 51)

        progress_gate()
        page.wait_for_selector("#export-list a:text('train.jsonl')", timeout=60_000)  # the page reloads when done
        assert "train.jsonl (51)" in page.inner_text("#export-list")
        assert page.csp_violations == []
    export.refresh_from_db()
    assert (export.status, export.rows_done, export.rows_total) == (JobStatus.DONE, 51, 51), export.error
    assert export.manifest["counts"]["total"] == 51


SQLITE_EXPORT = textwrap.dedent("""
    import json, sqlite3

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from tests.factories import make_pairs, make_project, make_user
    from workbench.exports import services
    from workbench.generation.models import PairStatus, QAPair

    call_command("migrate", verbosity=0)
    owner = make_user("owner")
    project = make_project(admins=[owner])
    exported = make_pairs(project, 51)
    QAPair.objects.filter(pk__in=[p.pk for p in exported]).update(status=PairStatus.APPROVED)
    (other_pair,) = make_pairs(project, 1)
    export = services.export_record(project=project, fmt="messages", options=services.ExportOptions(), created_by=owner)
    seen = {}
    write = services._Sink.write

    def look_mid_way(self, record):
        # A spy, only to pick the moment: after 35 of 51 rows, another connection (the page, a reviewer) looks in.
        if self.rows == 35:
            other = sqlite3.connect(settings.DATABASES["default"]["NAME"], timeout=0.5)
            seen["export"] = other.execute(
                "SELECT status, rows_done, rows_total FROM exports_export WHERE id = ?", [export.pk]).fetchone()
            with other:  # a reviewer's decision goes through meanwhile
                other.execute("UPDATE generation_qapair SET status = 'rejected' WHERE id = ?", [other_pair.pk])
            other.close()
        return write(self, record)

    services._Sink.write = look_mid_way
    done = services.export_run(export_id=export.pk)
    print(json.dumps({"seen": seen["export"], "done": [done.status, done.rows_done, done.manifest["counts"]["total"]],
                      "other": QAPair.objects.get(pk=other_pair.pk).status}))
""")


def test_progress_moves_on_sqlite_while_reviews_go_on(tmp_path):
    env = os.environ | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'workbench.sqlite3'}",
        "WORKBENCH_DATA_DIR": str(tmp_path),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "EXPORT_BATCH_ROWS": "10",
        "DJANGO_SETTINGS_MODULE": "workbench.settings",
    }
    result = subprocess.run([sys.executable, "-c", SQLITE_EXPORT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["seen"] == ["running", 30, 51]
    assert out["done"] == ["done", 51, 51]
    assert out["other"] == "rejected"
