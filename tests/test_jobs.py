"""One way to run a background job (workbench/jobs.py): claimed once, done with its fields, or failed with the error."""

from __future__ import annotations

import pytest

from workbench.exports.models import Export
from workbench.exports.services import ExportOptions, export_record, export_run
from workbench.jobs import JobStatus, job_run
from workbench.quality.models import ScoringJob


def test_a_failed_job_says_why_and_a_second_delivery_leaves_it(project):
    job = ScoringJob.objects.create(project=project)
    cleaned = []

    def work(job):
        raise OSError("disk full")

    with pytest.raises(OSError):
        job_run(model=ScoringJob, job_id=job.pk, work=work, cleanup=lambda: cleaned.append(1))
    job.refresh_from_db()
    assert (job.status, job.error, job.finished_at is not None, cleaned) == (JobStatus.FAILED, "OSError: disk full", True, [1])
    again = job_run(model=ScoringJob, job_id=job.pk, work=lambda job: {"done": 99}, resume=True)
    assert (again.status, again.done) == (JobStatus.FAILED, 0)


def test_a_running_job_is_resumed_only_when_asked(project):
    job = ScoringJob.objects.create(project=project, status=JobStatus.RUNNING)
    assert job_run(model=ScoringJob, job_id=job.pk, work=lambda job: {"done": 5}).status == JobStatus.RUNNING
    done = job_run(model=ScoringJob, job_id=job.pk, work=lambda job: {"done": 5}, resume=True)
    assert (done.status, done.done, done.finished_at is not None) == (JobStatus.DONE, 5, True)


def test_an_export_that_fails_in_the_page_is_marked_failed(project, owner, monkeypatch):
    """The page runs small exports in the request: a failure there is recorded as the task's would be."""
    monkeypatch.setattr("workbench.exports.services.export_write", lambda **kwargs: 1 / 0)
    export = export_record(project=project, fmt="messages", options=ExportOptions(), created_by=owner)
    with pytest.raises(ZeroDivisionError):
        export_run(export_id=export.pk)
    export = Export.objects.get(pk=export.pk)
    assert (export.status, export.error) == (JobStatus.FAILED, "ZeroDivisionError: division by zero")
