"""The upload form in headless Chromium: several files, a progress bar and a report per file."""

from __future__ import annotations

import pytest

from tests.browser import chromium_page, log_in
from tests.documents import files
from tests.documents.files import KO, KO2
from workbench.documents.models import SourceDocument


@pytest.mark.django_db(transaction=True)
def test_upload_several_files_with_progress(live_server, owner, project, tmp_path):
    good = tmp_path / "헌법.txt"
    good.write_bytes(KO.encode("cp949"))
    second = tmp_path / "records.jsonl"
    second.write_bytes(files.jsonl({"text": KO2}, {"text": "<script>alert(1)</script> 세 번째"}))
    bad = tmp_path / "broken.jsonl"
    bad.write_bytes(files.jsonl({"text": "좋은 기록"}, "{oops"))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with chromium_page() as page:
        log_in(page, live_server.url, owner.username)
        page.goto(f"{live_server.url}/p/{project.slug}/documents/")
        page.set_input_files("#id_files", [str(good), str(second), str(bad), str(empty)])
        page.click("#upload-form button[type=submit]")
        page.wait_for_selector("#upload-progress a")  # the "refresh" link comes after the last file
        items = page.locator("#upload-progress li").all_inner_texts()
        assert "1 new" in items[0] and "2 new" in items[1]
        assert "failed: line 2: invalid JSON" in items[2] and "nothing imported" in items[2]
        assert "failed: the file is empty" in items[3]  # the import report's words, not an HTTP status
        assert page.locator("#upload-progress progress").evaluate_all("els => els.map(e => e.value)") == [100] * 4
        # The document table follows by itself; the link reloads the whole page.
        page.wait_for_function("() => document.querySelectorAll('#document-list tbody tr:not(:has(td.empty))').length === 3")
        page.click("#upload-progress a")
        rows = page.locator("#document-list tbody tr").all_inner_texts()
        assert len(rows) == 3
        assert page.csp_violations == []
    assert SourceDocument.objects.filter(project=project).count() == 3
