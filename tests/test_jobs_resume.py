"""A background import or export whose worker died (SIGKILL, out of memory, a lost host) is left running; its message
comes back once the broker's visibility timeout lapses (which outlasts any live task), and that delivery finishes the
job: an import after the files its report holds, each committed whole, an export from the start. Nothing is imported
twice and the job does not stay running for good."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import make_pairs
from workbench.documents import services as documents
from workbench.documents.importers import FieldMap
from workbench.documents.models import ImportJob, SourceDocument
from workbench.exports import services as exports
from workbench.exports.models import Export
from workbench.generation.models import PairStatus, QAPair
from workbench.jobs import JOB_MAX_ATTEMPTS, JOB_STALE_MARGIN, JobBusy, JobStatus

TEXTS = {
    "첫째.txt": "국회는 국민의 보통·평등·직접·비밀선거에 의하여 선출된 국회의원으로 구성한다.",
    "둘째.txt": "대통령의 임기는 5년으로 하며, 중임할 수 없다.",
    "셋째.txt": "법원은 최고법원인 대법원과 각급법원으로 조직된다.",
}


def _claim_goes_stale(model, pk):
    """As if the task time limit had passed since the claim: a live task would have been stopped by then."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    model.objects.filter(pk=pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + JOB_STALE_MARGIN + 1)
    )


class WorkerKilled(BaseException):
    """What a SIGKILL looks like from inside: the task ends without recording anything (not an Exception)."""


@pytest.mark.django_db(transaction=True)
def test_an_import_left_running_resumes_after_the_files_it_committed(project, owner, monkeypatch, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    monkeypatch.setattr(documents, "job_send_on_commit", lambda job: None)
    uploads = [SimpleUploadedFile(name, text.encode()) for name, text in TEXTS.items()]
    job = documents.import_job_create(project=project, uploads=uploads, fields=FieldMap(), created_by=owner)
    parse = documents._parse
    parsed = []

    def killed_on_the_second_file(name, raw, **kwargs):
        parsed.append(name)
        if name == "둘째.txt" and len(parsed) == 2:
            raise WorkerKilled
        return parse(name, raw, **kwargs)

    monkeypatch.setattr(documents, "_parse", killed_on_the_second_file)
    with pytest.raises(WorkerKilled):
        documents.import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.files_done == 1
    assert list(SourceDocument.objects.values_list("origin_filename", flat=True)) == ["첫째.txt"]

    with pytest.raises(JobBusy):  # delivered again at once (the worker process was killed): too early to tell
        documents.import_job_run(job_id=job.pk)
    _claim_goes_stale(ImportJob, job.pk)
    done = documents.import_job_run(job_id=job.pk)  # delivered again once the claim is stale
    assert done.status == JobStatus.DONE and done.files_done == 3
    assert parsed == ["첫째.txt", "둘째.txt", "둘째.txt", "셋째.txt"]  # the first file was not read again
    assert [(f["name"], f["status"], f["documents_created"]) for f in done.report["files"]] == [
        ("첫째.txt", "imported", 1),
        ("둘째.txt", "imported", 1),
        ("셋째.txt", "imported", 1),
    ]
    assert sorted(SourceDocument.objects.values_list("origin_filename", flat=True)) == sorted(TEXTS)
    assert not (tmp_path / "imports" / str(job.pk)).exists()  # its stored files removed once it ended
    assert documents.import_job_run(job_id=job.pk).report == done.report  # a late third delivery changes nothing
    assert SourceDocument.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_an_export_left_running_is_written_when_its_message_comes_back(project, owner, monkeypatch, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    monkeypatch.setattr(exports, "job_send_on_commit", lambda job: None)
    QAPair.objects.filter(pk__in=[p.pk for p in make_pairs(project, 4)]).update(status=PairStatus.APPROVED)
    export = exports.export_create(project=project, fmt="messages", options=exports.ExportOptions(), created_by=owner)
    write = exports.export_write

    def killed_while_writing(**kwargs):
        (kwargs["out_dir"]).mkdir(parents=True, exist_ok=True)
        (kwargs["out_dir"] / "train.jsonl").write_text('{"half": ')  # a file cut off by the kill
        raise WorkerKilled

    monkeypatch.setattr(exports, "export_write", killed_while_writing)
    with pytest.raises(WorkerKilled):
        exports.export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == JobStatus.RUNNING
    monkeypatch.setattr(exports, "export_write", write)
    _claim_goes_stale(Export, export.pk)
    done = exports.export_run(export_id=export.pk)
    assert done.status == JobStatus.DONE and done.rows_done == 4
    lines = (tmp_path / "exports" / str(export.pk) / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and all(line.startswith('{"messages"') for line in lines)


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_keeps_dying_fails_after_its_attempts(project, owner, monkeypatch, settings, tmp_path):
    """A file that kills the worker every time (out of memory, a crashing reader) is not run for ever."""
    settings.MEDIA_ROOT = str(tmp_path)
    monkeypatch.setattr(documents, "job_send_on_commit", lambda job: None)
    job = documents.import_job_create(
        project=project, uploads=[SimpleUploadedFile("첫째.txt", TEXTS["첫째.txt"].encode())], fields=FieldMap(), created_by=owner
    )

    def killed(name, raw, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(documents, "_parse", killed)
    for _ in range(JOB_MAX_ATTEMPTS):
        with pytest.raises(WorkerKilled):
            documents.import_job_run(job_id=job.pk)
        _claim_goes_stale(ImportJob, job.pk)
    ended = documents.import_job_run(job_id=job.pk)
    assert ended.status == JobStatus.FAILED and f"stopped while running this job {JOB_MAX_ATTEMPTS} times" in ended.error
    assert not (tmp_path / "imports" / str(job.pk)).exists() and not SourceDocument.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_second_copy_of_the_message_waits_and_then_finds_the_job_done(project, owner, monkeypatch, settings, tmp_path):
    """A duplicate delivery while the job runs elsewhere does not run it beside the first: the task looks again later."""
    from workbench.documents.tasks import run_import

    settings.MEDIA_ROOT = str(tmp_path)
    monkeypatch.setattr(documents, "job_send_on_commit", lambda job: None)
    job = documents.import_job_create(
        project=project, uploads=[SimpleUploadedFile("첫째.txt", TEXTS["첫째.txt"].encode())], fields=FieldMap(), created_by=owner
    )
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, claimed_at=timezone_now(), attempts=1)
    retried = []
    monkeypatch.setattr(run_import, "retry", lambda countdown, **kw: retried.append(countdown) or RuntimeError("retry"))
    with pytest.raises(RuntimeError, match="retry"):
        run_import.run(job.pk)
    assert retried and retried[0] > settings.CELERY_TASK_TIME_LIMIT  # looks again once the claim would be stale
    assert not SourceDocument.objects.exists() and ImportJob.objects.get(pk=job.pk).attempts == 1
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE)
    assert run_import.run(job.pk) is None  # the later look finds it done and leaves it


def timezone_now():
    from django.utils import timezone

    return timezone.now()


@pytest.mark.django_db(transaction=True)
def test_the_sweep_sends_again_a_job_whose_worker_stopped_and_whose_message_is_gone(
    project, owner, monkeypatch, settings, tmp_path
):
    """The single-machine start's filesystem broker does not give back a message taken by a worker that stopped (Redis
    does, after its visibility timeout): the dispatch sweep queues such a job again once its claim is stale, and the
    next claim finishes it after the files it committed."""
    from workbench.celery import app
    from workbench.jobs import WORKER_STOPPED, jobs_dispatch_sweep

    settings.MEDIA_ROOT = str(tmp_path)
    monkeypatch.setattr(documents, "job_send_on_commit", lambda job: None)
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args, **kwargs: sent.append((name, args)))
    uploads = [SimpleUploadedFile(name, text.encode()) for name, text in TEXTS.items()]
    job = documents.import_job_create(project=project, uploads=uploads, fields=FieldMap(), created_by=owner)
    parse = documents._parse

    def killed_on_the_second_file(name, raw, **kwargs):
        if name == "둘째.txt":
            monkeypatch.setattr(documents, "_parse", parse)
            raise WorkerKilled
        return parse(name, raw, **kwargs)

    monkeypatch.setattr(documents, "_parse", killed_on_the_second_file)
    with pytest.raises(WorkerKilled):
        documents.import_job_run(job_id=job.pk)
    assert jobs_dispatch_sweep() == 0 and sent == []  # its claim is recent: the worker may be alive
    _claim_goes_stale(ImportJob, job.pk)
    assert jobs_dispatch_sweep() == 1 and sent == [("workbench.documents.tasks.run_import", [job.pk])]
    queued = ImportJob.objects.get(pk=job.pk)
    assert queued.status == JobStatus.QUEUED and queued.error == WORKER_STOPPED and queued.files_done == 1
    assert jobs_dispatch_sweep() == 0 and len(sent) == 1  # sent once
    done = documents.import_job_run(job_id=job.pk)
    assert done.status == JobStatus.DONE and done.files_done == 3 and done.error == "" and done.attempts == 2
    assert sorted(SourceDocument.objects.values_list("origin_filename", flat=True)) == sorted(TEXTS)
