"""Background jobs (an import past the inline size, a large export, re-scoring) when the broker does not take their
message: the request answers with what happened instead of a 500, the job stays queued with the reason, nothing is
lost, and the dispatch sweep sends it once the broker answers; then it runs."""

from __future__ import annotations

import base64
import json

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import make_pairs
from tests.generation.test_dispatch import _broker_pools_dropped, broker_down, broker_up, redis  # noqa: F401
from workbench.documents.models import ImportJob, SourceDocument
from workbench.documents.services import import_job_run
from workbench.exports.models import Export
from workbench.exports.services import export_run
from workbench.generation.models import PairStatus, QAPair
from workbench.generation.tasks import dispatch_sweep
from workbench.jobs import NOT_SENT, JobStatus
from workbench.quality.models import ScoringJob
from workbench.quality.services import scoring_job_run

KO = "국회는 국민의 보통·평등·직접·비밀선거에 의하여 선출된 국회의원으로 구성한다. 국회의원의 수는 법률로 정한다."


def default_queue_jobs() -> list[tuple[str, int]]:
    """(task name, job id) of the messages on the default queue."""
    out = []
    for raw in redis().lrange("default", 0, -1):
        message = json.loads(raw)
        out.append((message["headers"]["task"], json.loads(base64.b64decode(message["body"]))[0][0]))
    return out


@pytest.fixture
def clean_default_queue():
    live = redis()  # the live broker's client, also while a test points the app at a dead one
    live.delete("default")
    yield
    live.delete("default")


def test_jobs_the_broker_did_not_take_are_kept_and_sent_by_the_sweep(
    transactional_db, owner, project, client, settings, monkeypatch, clean_default_queue
):
    settings.DOCUMENTS_INLINE_MAX_BYTES = 10  # every upload is a background import
    settings.EXPORT_INLINE_MAX_ROWS = 0  # every export is a background export
    QAPair.objects.filter(pk__in=[p.pk for p in make_pairs(project, 3)]).update(status=PairStatus.APPROVED)
    client.login(username=owner.username, password=PASSWORD)
    broker_down(monkeypatch)

    upload = client.post(
        reverse("documents:upload", args=[project.slug]),
        {"files": [_file("큰문서.txt", KO)], "text_field": "text", "title_field": "title", "id_field": "id"},
        follow=True,
    )
    export = client.post(
        reverse("exports:start", args=[project.slug]), {"format": "messages", "validation_percent": 0}, follow=True
    )
    rescore = client.post(reverse("quality:rescore", args=[project.slug]), follow=True)
    for response in (upload, export, rescore):
        assert response.status_code == 200
        assert NOT_SENT in response.content.decode() and "Nothing was lost" in response.content.decode()
    jobs = [ImportJob.objects.get(), Export.objects.get(), ScoringJob.objects.get()]
    for job in jobs:
        assert job.status == JobStatus.QUEUED and job.error.startswith(NOT_SENT)
    imported = SourceDocument.objects.filter(origin_filename="큰문서.txt")
    assert jobs[0].uploads and not imported.exists()  # the file is kept for the import

    assert dispatch_sweep()["jobs"] == 0  # still down: nothing sent, nothing lost
    broker_up(monkeypatch)
    assert dispatch_sweep()["jobs"] == 3
    assert sorted(default_queue_jobs()) == sorted(
        [
            ("workbench.documents.tasks.run_import", jobs[0].pk),
            ("workbench.exports.tasks.run_export", jobs[1].pk),
            ("workbench.quality.tasks.rescore_project", jobs[2].pk),
        ]
    )
    assert dispatch_sweep()["jobs"] == 0  # sent once
    for job in jobs:
        job.refresh_from_db()
        assert job.status == JobStatus.QUEUED and job.error == ""
    # What the worker does with those messages:
    assert import_job_run(job_id=jobs[0].pk).status == JobStatus.DONE
    assert imported.get().text.startswith("국회는")
    assert export_run(export_id=jobs[1].pk).status == JobStatus.DONE
    assert scoring_job_run(job_id=jobs[2].pk).status == JobStatus.DONE


def test_the_api_import_with_the_broker_down_answers_with_the_queued_job(
    transactional_db, owner, project, settings, monkeypatch, clean_default_queue
):
    from tests.review.test_api import token_client

    settings.DOCUMENTS_INLINE_MAX_BYTES = 10
    broker_down(monkeypatch)
    response = token_client(owner).post(
        f"/api/projects/{project.slug}/documents", {"files": [_file("큰문서.txt", KO)]}, format="multipart"
    )
    assert response.status_code == 202
    assert response.json()["status"] == "queued" and response.json()["error"].startswith(NOT_SENT)
    broker_up(monkeypatch)
    assert dispatch_sweep()["jobs"] == 1
    assert default_queue_jobs() == [("workbench.documents.tasks.run_import", response.json()["job"])]


def _file(name: str, text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, text.encode())
