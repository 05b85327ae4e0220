"""The run page follows a running run without a reload: counters, and also the parts rendered from more than them
(throughput per worker and GPU, the sampling the workers used, the model check's answer)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.browser import chromium_page, log_in
from workbench.documents.models import Chunk, SourceDocument
from workbench.generation.models import Generation, GenerationRun, PreflightStatus, RunStatus

PARAMETERS = {
    "base_model": "base",
    "adapter": "adapter",
    "temperature": 1.0,
    "top_k": None,
    "top_p": None,
    "max_new_tokens": 256,
    "samples_per_chunk": 2,
    "seed": 0,
    "prompt_template_hash": "t",
}


@pytest.mark.django_db(transaction=True)
def test_the_run_page_follows_throughput_sampling_and_the_model_check(live_server, owner, project):
    doc = SourceDocument.objects.create(project=project, content_hash="live", text="대한민국은 민주공화국이다.")
    chunk = Chunk.objects.create(document=doc, chunking_key="k", index=0, text="대한민국", start=0, end=4, size=4)
    run = GenerationRun.objects.create(
        project=project,
        status=RunStatus.RUNNING,
        parameters=PARAMETERS,
        samples_expected=2,
        started_at=timezone.now(),
        preflight_status=PreflightStatus.PENDING,
    )
    with chromium_page() as page:
        log_in(page, live_server.url, owner)
        page.goto(live_server.url + reverse("generation:detail", args=[project.slug, run.pk]))
        assert page.query_selector("#run-workers") is None
        assert "no samples yet" in page.inner_text("#run-sampling-used")
        page.wait_for_function("() => performance.getEntriesByType('resource').some(e => e.name.includes('/progress'))")
        # A worker answers the model check and stores a sample, as a GPU worker does.
        GenerationRun.objects.filter(pk=run.pk).update(
            preflight_status=PreflightStatus.PASSED,
            preflight_worker="gpu0@host",
            preflight_report="resolved here",
            samples_done=1,
        )
        Generation.objects.create(
            run=run,
            chunk=chunk,
            sample_index=0,
            raw_text="[[Q]] 질문?\n[[A]] 답.",
            worker="gpu0@host",
            gpu_name="NVIDIA H200",
            duration_ms=2000,
            completion_tokens=120,
            sampling={"temperature": 1.0, "top_k": 50, "top_p": 0.9},
        )
        page.wait_for_selector("#run-workers", timeout=30_000)
        assert "gpu0@host" in page.inner_text("#run-workers") and "NVIDIA H200" in page.inner_text("#run-workers")
        assert "top-k 50" in page.inner_text("#run-sampling-used")
        assert "gpu0@host" in page.inner_text("#run-preflight")
        assert page.inner_text("#run-done") == "1"
        assert page.csp_violations == []
