"""Batched generation on the tiny model: every request answered once, with finish reasons and token counts."""
from __future__ import annotations

import pytest

from workers.engine import Engine, SampleRequest, SamplingParams
from workers.loading import ModelSpec, load_model


@pytest.fixture(scope="module")
def loaded(tiny_model):
    return load_model(ModelSpec(base_model=tiny_model["base"], adapter=tiny_model["adapter"]), device="cpu")


def requests(loaded, n=7):
    tok = loaded.tokenizer
    return [SampleRequest(("chunk", i), tok.encode("대한민국 헌법 " * (i + 1), add_special_tokens=False)) for i in range(n)]


@pytest.mark.parametrize("backend", ["batched", "continuous"])
def test_every_request_gets_one_result_in_order(loaded, backend):
    reqs = requests(loaded)
    results = Engine(loaded, backend=backend, token_budget=200).generate(reqs, SamplingParams(max_new_tokens=6, seed=1))
    assert [r.key for r in results] == [r.key for r in reqs]
    for req, res in zip(reqs, results):
        assert res.prompt_tokens == len(req.prompt_ids)
        assert 1 <= res.completion_tokens <= 6
        assert res.finish_reason in {"stop", "length"}
        assert res.finish_reason == "stop" or res.completion_tokens == 6


def test_token_budget_splits_batches_by_length(loaded):
    engine = Engine(loaded, backend="batched", token_budget=60, max_batch=4)
    reqs = requests(loaded, 7)
    order = sorted(range(len(reqs)), key=lambda i: -len(reqs[i].prompt_ids))
    groups = list(engine._groups(order, reqs, SamplingParams(max_new_tokens=6), engine.max_batch))
    assert sorted(i for g in groups for i in g) == list(range(7))
    for g in groups:
        longest = max(len(reqs[i].prompt_ids) for i in g)
        assert len(g) <= 4 and (len(g) == 1 or len(g) * (longest + 6) <= 60)


def test_finish_reason_from_eos(loaded):
    engine = Engine(loaded, backend="batched")
    req = SampleRequest("k", [1, 2, 3])
    stopped = engine._result(req, [500, 501, 128009, 128001, 128001], 256, 10)
    assert (stopped.finish_reason, stopped.completion_tokens, stopped.token_ids[-1]) == ("stop", 3, 128009)
    cut = engine._result(req, [500] * 8, 8, 10)
    assert (cut.finish_reason, cut.completion_tokens) == ("length", 8)


def test_sampling_is_reproducible_with_a_seed(loaded):
    engine = Engine(loaded, backend="batched")
    reqs = requests(loaded, 3)
    a = engine.generate(reqs, SamplingParams(max_new_tokens=5, seed=42))
    b = engine.generate(reqs, SamplingParams(max_new_tokens=5, seed=42))
    assert [r.token_ids for r in a] == [r.token_ids for r in b]


def test_unknown_backend(loaded):
    with pytest.raises(ValueError, match="unknown generation backend"):
        Engine(loaded, backend="vllm")


@pytest.mark.parametrize("backend", ["batched", "continuous"])
def test_per_request_budgets(loaded, backend):
    reqs = [SampleRequest(i, r.prompt_ids, max_new_tokens=n) for i, (r, n) in enumerate(zip(requests(loaded, 3), [2, 5, 9]))]
    results = Engine(loaded, backend=backend).generate(reqs, SamplingParams(max_new_tokens=9, seed=5))
    for res, n in zip(results, [2, 5, 9]):
        assert res.completion_tokens <= n
        assert res.finish_reason == "stop" or res.completion_tokens == n
