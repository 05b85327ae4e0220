"""Uploads over DOCUMENTS_INLINE_MAX_BYTES: stored, imported by a real Celery worker, followed on the Documents page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.browser import chromium_page, log_in
from tests.conftest import PASSWORD
from tests.documents import files
from tests.documents.files import KO, KO2
from workbench.documents.models import Chunk, ImportJob, SourceDocument
from workbench.jobs import JobStatus

UNSPACED = "가" * 2_000_000  # 6 MB of UTF-8 without a single space


def upload(client, project, *named, **extra):
    return client.post(
        reverse("documents:upload", args=[project.slug]),
        {
            "files": [SimpleUploadedFile(n, raw) for n, raw in named],
            "text_field": "text",
            "title_field": "title",
            "id_field": "id",
        },
        **extra,
    )


def wait_for(client, url, seconds=180):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(url).json()
        if job["status"] not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return job
        time.sleep(0.5)
    pytest.fail(f"the import did not finish within {seconds} s: {job}")


@pytest.mark.worker
def test_large_upload_is_imported_by_a_worker_with_a_report_per_file(client, celery_worker, owner, project):
    client.login(username=owner.username, password=PASSWORD)
    response = upload(
        client,
        project,
        ("unspaced.txt", UNSPACED.encode()),
        ("broken.jsonl", files.jsonl({"text": KO}, "{oops")),
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] == "queued" and accepted["files_total"] == 2
    job = ImportJob.objects.get(pk=accepted["job"])
    stored = [Path(django_settings.MEDIA_ROOT) / u["path"] for u in job.uploads]
    assert [u["name"] for u in job.uploads] == ["unspaced.txt", "broken.jsonl"] and all(p.is_file() for p in stored)

    done = wait_for(client, accepted["status_url"])
    assert done["status"] == "done" and done["files_done"] == 2
    first, second = done["report"]["files"]
    assert (first["name"], first["status"], first["documents_created"], first["chunks_created"]) == (
        "unspaced.txt",
        "imported",
        1,
        1429,
    )
    assert (second["status"], second["locator"]) == ("failed", "line 2") and "invalid JSON" in second["error"]
    document = SourceDocument.objects.get(project=project)
    assert len(document.text) == 2_000_000 and document.origin_filename == "unspaced.txt"
    sizes = list(Chunk.objects.filter(document=document).values_list("size", flat=True))
    assert len(sizes) == 1429 and max(sizes) <= project.chunk_max_size
    assert not any(p.exists() for p in stored)  # the stored upload is removed once imported

    page = client.get(reverse("documents:list", args=[project.slug])).content.decode()
    assert "unspaced.txt: 1 new, 0 already present, 1429 chunks" in page
    assert "broken.jsonl: failed: line 2: invalid JSON" in page

    # The API takes the same path: 202, then the job at its own URL (token or session).
    response = client.post(
        reverse("api-documents-import", args=[project.slug]),
        {"files": [SimpleUploadedFile("again.txt", UNSPACED.encode() + b"\n" + KO.encode())]},
    )
    assert response.status_code == 202 and response.json()["status_url"].startswith("/api/")
    done = wait_for(client, response.json()["status_url"])
    assert done["report"]["files"][0]["documents_created"] == 1 and done["report"]["ok"] is True


def test_small_upload_is_imported_in_the_request(client, owner, project):
    client.login(username=owner.username, password=PASSWORD)
    response = upload(client, project, ("a.txt", KO.encode()), HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and response.json()["files"][0]["status"] == "imported"
    assert not ImportJob.objects.exists()


def test_queued_import_shows_a_progress_bar_and_only_admins_follow_it(
    client, owner, reviewer, outsider, project, settings, tmp_path
):
    settings.DOCUMENTS_INLINE_MAX_BYTES = 100
    settings.MEDIA_ROOT = tmp_path  # no worker runs this job: its stored upload stays with the test
    client.login(username=owner.username, password=PASSWORD)
    response = upload(client, project, ("a.txt", (KO * 5).encode()), follow=True)  # the form without JavaScript
    page = response.content.decode()
    job = ImportJob.objects.get()
    assert f"Import {job.pk} of 1 file(s) started" in page
    assert f'id="import-{job.pk}" class="import-active"' in page and "<progress" in page
    assert not SourceDocument.objects.exists()
    status_url = reverse("documents:import_status", args=[project.slug, job.pk])
    assert client.get(status_url).json()["status"] == "queued"
    for user, code in ((reviewer, 403), (outsider, 404)):
        client.login(username=user.username, password=PASSWORD)
        assert client.get(status_url).status_code == code
        assert client.get(reverse("api-import", args=[project.slug, job.pk])).status_code == code
        assert f"import-{job.pk}" not in client.get(reverse("documents:list", args=[project.slug])).content.decode()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_browser_follows_a_background_import(live_server, celery_worker, owner, project, tmp_path, settings):
    settings.DOCUMENTS_INLINE_MAX_BYTES = 1000
    big = tmp_path / "unspaced.txt"
    big.write_text(UNSPACED[:300_000] + "\n\n<script>alert(1)</script> " + KO2, encoding="utf-8")
    with chromium_page() as page:
        log_in(page, live_server.url, owner.username)
        page.goto(f"{live_server.url}/p/{project.slug}/documents/")
        page.set_input_files("#id_files", [str(big)])
        page.click("#upload-form button[type=submit]")
        page.wait_for_selector("#upload-progress li.ok", timeout=180_000)
        (item,) = page.locator("#upload-progress li.ok").all_inner_texts()
        page.click("#upload-progress a")
        listed = page.locator("#import-jobs").inner_text()
        assert page.csp_violations == []
    document = SourceDocument.objects.get(project=project)
    chunks = document.chunks.count()
    assert "<script>alert(1)</script>" in document.text and chunks > 200
    assert "unspaced.txt" in item and f"1 new, 0 already present, {chunks} chunks" in item
    assert f"unspaced.txt: 1 new, 0 already present, {chunks} chunks" in listed


def test_django_admin_import_of_a_large_upload_runs_in_the_background(client, owner, project, settings, tmp_path):
    settings.DOCUMENTS_INLINE_MAX_BYTES = 100
    settings.MEDIA_ROOT = tmp_path
    client.login(username=owner.username, password=PASSWORD)
    response = client.post(
        reverse("admin:documents_import"),
        {
            "project": project.pk,
            "files": [SimpleUploadedFile("a.txt", (KO * 5).encode())],
            "text_field": "text",
            "title_field": "title",
            "id_field": "id",
        },
        follow=True,
    )
    job = ImportJob.objects.get(project=project)
    assert f"Import {job.pk} of 1 file(s) started in the background" in response.content.decode()
    assert job.status == "queued" and job.uploads[0]["name"] == "a.txt" and job.created_by == owner
    assert (tmp_path / job.uploads[0]["path"]).read_bytes() == (KO * 5).encode()
    assert not SourceDocument.objects.exists()
