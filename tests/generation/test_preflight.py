"""The model check a GPU worker makes when a run starts: a model the worker does not have fails the run at once, with
what is missing and how to fix it on the run page; no answer in time leaves the run queued and the page says so."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from tests.browser import chromium_page
from tests.conftest import PASSWORD
from tests.factories import make_project
from tests.generation.test_worker_runs import SENTENCES, WORKER_ENV, wait_for
from workbench.documents.models import Chunk, SourceDocument
from workbench.generation.models import BatchStatus, Generation, GenerationBatch, GenerationRun, RunStatus
from workbench.generation.services import generation_run_create
from workbench.projects.presets import BASE_MODEL_ID

pytestmark = pytest.mark.worker


def hub_project(owner, n_chunks=5):
    """A simple-qa project as the preset makes it: the base model and the adapter by their hub ids."""
    project = make_project(admins=[owner])
    assert project.base_model == BASE_MODEL_ID
    doc = SourceDocument.objects.create(project=project, content_hash=f"p{project.pk}", text="\n".join(SENTENCES), title="헌법")
    for i in range(n_chunks):
        text = SENTENCES[i]
        Chunk.objects.create(document=doc, chunking_key="k", index=i, text=text, start=0, end=len(text), size=len(text))
    return project


def log_in(page, live_server, user):
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


@pytest.mark.django_db(transaction=True)
def test_model_missing_on_the_worker_fails_the_run_at_once_with_the_fix(live_server, start_worker, owner, tmp_path):
    project = hub_project(owner)
    run = generation_run_create(project=project, created_by=owner, batch_chunks=1)  # five batches
    assert run.preflight_status == "pending"
    with chromium_page() as page:
        log_in(page, live_server, owner)
        page.goto(f"{live_server.url}{reverse('generation:detail', args=[project.slug, run.pk])}")
        assert page.inner_text("#run-status") == "Queued" and not page.is_visible("#run-error")
        assert page.is_visible("form.run-cancel")
        # A worker without the model: offline, with an empty cache.
        start_worker(
            **WORKER_ENV
            | {
                "HF_HUB_OFFLINE": "1",
                "HF_HOME": str(tmp_path / "hf"),
                "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
                "MODEL_CACHE_DIR": str(tmp_path / "models"),
            }
        )
        page.wait_for_selector("#run-error:not([hidden])", timeout=180_000)  # the page updates itself
        assert page.inner_text("#run-status") == "Failed"
        page.wait_for_selector("#run-progress[data-final]")
        assert not page.is_visible("form.run-cancel")  # a run that ended while the page was open is not cancellable
        shown = page.inner_text("#run-error")
        assert page.csp_violations == []

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.preflight_status == "failed" and run.preflight_worker.startswith("test-")
    # What is missing, where it was looked for, and how to fix it.
    assert f"{BASE_MODEL_ID}@main (offline mode" in run.error
    assert f"not in this worker's Hugging Face cache {tmp_path / 'hf' / 'hub'}" in run.error
    assert f"hf download {BASE_MODEL_ID} --cache-dir" in run.error
    for words in ("MODEL_CACHE_DIR", "HF_HUB_OFFLINE=1", "set the project's Base model", "local directory"):
        assert words in run.error
    assert "\nFix: " in run.error
    for line in run.error.splitlines():
        assert line in shown
    # Failed before any batch was tried: no model load, no retries.
    batches = GenerationBatch.objects.filter(run=run)
    assert set(batches.values_list("status", flat=True)) == {BatchStatus.CANCELLED}
    assert set(batches.values_list("attempts", flat=True)) == {0}
    assert not Generation.objects.filter(run=run).exists()


def test_mismatched_adapter_fails_the_run_at_once(start_worker, owner, tiny_model, tmp_path):
    import json
    import shutil

    adapter = tmp_path / "adapter"
    shutil.copytree(tiny_model["adapter"], adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps(config | {"target_modules": ["q_proj", "c_attn"]}))
    project = hub_project(owner, n_chunks=2)
    project.base_model, project.adapter = tiny_model["base"], str(adapter)
    project.save(update_fields=["base_model", "adapter"])
    start_worker(**WORKER_ENV)
    run = generation_run_create(project=project, created_by=owner, batch_chunks=1)
    run = wait_for(lambda: (r := GenerationRun.objects.get(pk=run.pk)).status == RunStatus.FAILED and r, what="the run to fail")
    assert "targets modules the base model does not have: c_attn" in run.error
    assert set(GenerationBatch.objects.filter(run=run).values_list("attempts", flat=True)) == {0}


def test_run_page_says_when_no_gpu_worker_answered(client, owner, settings):
    settings.GENERATION_PREFLIGHT_TIMEOUT = 20
    project = hub_project(owner, n_chunks=2)
    run = generation_run_create(project=project, created_by=owner)
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("generation:detail", args=[project.slug, run.pk])
    assert "No GPU worker has answered" not in client.get(url).content.decode()  # still within the timeout

    # No worker runs in this test: the check is still unanswered after the timeout.
    GenerationRun.objects.filter(pk=run.pk).update(preflight_requested_at=run.preflight_requested_at - timedelta(seconds=25))
    page = client.get(url).content.decode()
    waited = re.search(r"No GPU worker has answered the model check for (\d+) s", page)
    assert waited and 25 <= int(waited.group(1)) < 120  # seconds since the check was sent
    assert "celery -A workbench worker -Q gpu" in page
    progress = client.get(reverse("generation:progress", args=[project.slug, run.pk])).json()
    assert progress["status"] == "queued" and progress["notice"].startswith("No GPU worker has answered")
    assert GenerationRun.objects.get(pk=run.pk).status == RunStatus.QUEUED  # not failed: it starts when a worker comes
