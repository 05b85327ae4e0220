"""Sampling as the model card's `generate` call samples: temperature, then top-k, then top-p, with top-k and top-p taken
from the checkpoint's generation config (else transformers' defaults) unless the project sets them."""

from __future__ import annotations

import copy

import pytest

from workers.engine import Engine, SampleRequest, SamplingParams
from workers.loading import ModelSpec, load_model
from workers.sampling import sample


@pytest.fixture(scope="module")
def loaded(tiny_model):
    return load_model(ModelSpec(base_model=tiny_model["base"], adapter=tiny_model["adapter"]), device="cpu")


@pytest.fixture
def checkpoint_config(loaded):
    """The loaded model's generation config, restored after the test."""
    saved = copy.deepcopy(loaded.model.generation_config)
    yield loaded.model.generation_config
    loaded.model.generation_config = saved


def test_unset_values_come_from_the_checkpoint_then_transformers_defaults(loaded, checkpoint_config):
    engine = Engine(loaded, backend="slots")
    checkpoint_config.top_k, checkpoint_config.top_p = None, None
    assert engine.resolve(SamplingParams()) == SamplingParams(top_k=50, top_p=1.0)
    checkpoint_config.top_p = 0.9  # e.g. a base checkpoint whose generation_config.json says top_p 0.9
    assert engine.resolve(SamplingParams(temperature=1.0)) == SamplingParams(temperature=1.0, top_k=50, top_p=0.9)
    assert engine.resolve(SamplingParams(top_k=0, top_p=0.5)) == SamplingParams(top_k=0, top_p=0.5)  # the project's own
    with pytest.raises(ValueError, match="top-p"):
        engine.resolve(SamplingParams(top_p=1.5))


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 50, 1.0), (0.7, 20, 0.9), (1.0, 0, 0.8), (1.3, 5, 1.0)])
def test_sampler_draws_from_the_distribution_transformers_warpers_leave(temperature, top_k, top_p):
    """Every draw lies among the tokens transformers' warpers keep, at their probabilities (within 6 standard errors)."""
    import torch
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    torch.manual_seed(0)
    rows, vocab, draws = 3, 300, 20_000
    logits = torch.randn(rows, vocab) * 3
    scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
    if top_k:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(None, scores)
    expected = torch.softmax(scores, dim=-1)

    drawn = sample(logits.repeat(draws, 1), temperature=temperature, top_k=top_k, top_p=top_p).view(draws, rows)
    for row in range(rows):
        counts = torch.bincount(drawn[:, row], minlength=vocab).double() / draws
        assert set(counts.nonzero().flatten().tolist()) <= set(expected[row].nonzero().flatten().tolist())
        tolerance = 6 * (expected[row].double() * (1 - expected[row].double()) / draws).sqrt() + 1e-3
        assert ((counts - expected[row].double()).abs() <= tolerance).all()


@pytest.mark.parametrize("backend", ["slots", "batched"])
def test_a_checkpoint_that_says_top_k_1_samples_greedily_in_every_backend(loaded, checkpoint_config, backend):
    """`generate` takes top_k from the checkpoint's generation config; so does the engine, whichever backend runs."""
    import torch

    checkpoint_config.top_k, checkpoint_config.top_p = 1, None
    tok = loaded.tokenizer
    reqs = [SampleRequest(i, tok.encode("대한민국 헌법 " * (i + 2), add_special_tokens=False)) for i in range(3)]
    with torch.inference_mode():
        expected = []
        for r in reqs:
            out = loaded.model.generate(
                input_ids=torch.tensor([list(r.prompt_ids)]),
                max_new_tokens=6,
                do_sample=False,
                eos_token_id=loaded.eos_token_id,
                pad_token_id=tok.pad_token_id,
            )
            tokens = out[0, len(r.prompt_ids) :].tolist()
            expected.append(tokens[: tokens.index(loaded.eos_token_id) + 1] if loaded.eos_token_id in tokens else tokens)
    results = Engine(loaded, backend=backend).generate(reqs, SamplingParams(temperature=1.0, max_new_tokens=6, seed=3))
    assert [r.token_ids for r in results] == expected
