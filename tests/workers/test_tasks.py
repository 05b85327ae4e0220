"""A batch's requests: a chunk whose prompt and new tokens do not fit the model's context fails with the change that
fixes it."""

from __future__ import annotations

import pytest

from tests.generation.test_worker_runs import project_with_chunks
from workbench.generation import services as generation
from workbench.generation.services import generation_run_create
from workers.loading import ModelSpec, load_model
from workers.tasks import batch_requests

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def loaded(tiny_model):
    return load_model(ModelSpec(base_model=tiny_model["base"]), device="cpu")  # a context of 1,024 positions


def overflow(owner, tiny_model, loaded, *, max_new_tokens: int, chunk_index: int) -> str:
    project, _ = project_with_chunks(owner, tiny_model, 2, samples=1, max_new_tokens=max_new_tokens, long_chunk=True)
    run = generation_run_create(project=project, created_by=owner, batch_chunks=1)
    batch = run.batches.get(index=chunk_index)
    with pytest.raises(ValueError) as error:
        batch_requests(loaded, run.parameters, batch, generation.batch_missing_samples(batch=batch))
    return str(error.value)


def test_new_tokens_that_alone_fill_the_context_ask_for_fewer_new_tokens(owner, tiny_model, loaded):
    message = overflow(owner, tiny_model, loaded, max_new_tokens=1024, chunk_index=0)
    assert "plus 1024 new tokens exceeds the model's context of 1024; lower the project's max new tokens" in message
    assert "re-chunk" not in message  # smaller chunks cannot make room


def test_prompt_and_new_tokens_together_too_long_offer_both_fixes(owner, tiny_model, loaded):
    message = overflow(owner, tiny_model, loaded, max_new_tokens=1000, chunk_index=0)
    prompt_tokens = int(message.split("prompt of ")[1].split(" tokens")[0])
    assert prompt_tokens + 1000 > 1024
    assert message.endswith(
        f"lower the project's max new tokens to {1024 - prompt_tokens} or less, or re-chunk the project smaller"
    )


def test_prompt_that_alone_fills_the_context_asks_for_smaller_chunks(owner, tiny_model, loaded):
    message = overflow(owner, tiny_model, loaded, max_new_tokens=12, chunk_index=1)
    assert message.endswith("re-chunk the project smaller (the prompt alone fills the context)")
