"""The "demo model" adapter preset: one step points a project at the model the single-machine start trains, and a real
worker generates with it."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.conftest import PASSWORD
from tests.generation.test_worker_runs import SENTENCES, WORKER_ENV, run_state, wait_for
from workbench.demo.services import demo_model_dir
from workbench.documents.models import Chunk, SourceDocument
from workbench.generation.models import Generation, RunStatus
from workbench.generation.services import generation_run_create
from workbench.projects.models import Project
from workers.demo_model import build

pytestmark = pytest.mark.worker


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "var"
    return settings.DATA_DIR


def test_demo_preset_project_generates_with_the_worker(start_worker, owner, data_dir, capsys):
    build(demo_model_dir(), steps=30)  # where `manage.py serve` trains it; few steps: the workflow, not the quality
    call_command("create_project", "mine", "--name", "My documents", "--adapter", "demo", "--admin", owner.username)
    assert "(Demo model" in capsys.readouterr().out
    project = Project.objects.get(slug="mine")
    assert project.base_model == str(data_dir / "workbench-demo-model" / "base")
    assert project.adapter == str(data_dir / "workbench-demo-model" / "adapter")
    assert project.uses_demo_model  # labelled as the demo model on its pages
    Project.objects.filter(pk=project.pk).update(max_new_tokens=24)  # short outputs keep the test quick on a CPU
    project.refresh_from_db()
    doc = SourceDocument.objects.create(project=project, content_hash="d", text="\n".join(SENTENCES), title="헌법")
    chunks = [
        Chunk.objects.create(document=doc, chunking_key="k", index=i, text=t, start=0, end=len(t), size=len(t))
        for i, t in enumerate(SENTENCES[:2])
    ]

    start_worker(**WORKER_ENV)
    run = generation_run_create(project=project, created_by=owner)
    run = wait_for(lambda: (r := run_state(run.pk)).status in {"succeeded", "failed"} and r, what="run to finish")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.preflight_status == "passed" and "workbench-demo-model" in run.preflight_report
    assert Generation.objects.filter(run=run).count() == len(chunks) * project.samples_per_chunk
    assert run.parameters["prompt_template"] == project.prompt_template


def test_admin_form_offers_the_demo_model_and_applies_it(client, owner, data_dir):
    client.login(username=owner.username, password=PASSWORD)
    form = client.get("/admin/projects/project/add/").content.decode()
    assert '<option value="demo">Demo model (tiny, trained by bin/start; not ko-genstruct)</option>' in form
    response = client.post(
        "/admin/projects/project/add/",
        {
            "name": "Demo here",
            "slug": "demo-here",
            "adapter_preset": "demo",
            "apply_preset": "on",
            "base_model": "x",
            "adapter": "x",
            "prompt_template": "{text}",
            "temperature": "1.0",
            "max_new_tokens": "256",
            "samples_per_chunk": "3",
            "chunk_unit": "chars",
            "chunk_target_size": "900",
            "chunk_max_size": "1400",
            "chunk_overlap": "0",
            "filter_thresholds": "{}",
            "queue_order": "flagged_first",
            "lease_seconds": "900",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    project = Project.objects.get(slug="demo-here")
    assert project.base_model == str(data_dir / "workbench-demo-model" / "base") and project.uses_demo_model


def test_the_demo_project_is_labelled_as_running_the_demo_model(owner, data_dir):
    """`bin/start`'s demo project names the demo preset wherever the preset is shown (it showed "Simple QA")."""
    from workbench.demo.services import demo_generation_ensure, demo_project_ensure

    project = demo_project_ensure(admin_username=owner.username)
    demo_generation_ensure(project=project, model_dir=demo_model_dir())
    project.refresh_from_db()
    assert project.adapter_preset == "demo" and project.uses_demo_model
    assert project.get_adapter_preset_display().startswith("Demo model")
