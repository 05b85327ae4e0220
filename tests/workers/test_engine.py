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


@pytest.mark.parametrize("backend", ["slots", "batched", "continuous"])
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


def test_auto_picks_slots_for_llama(loaded):
    assert Engine(loaded).backend == "slots"


def greedy_decoder(loaded, reqs, *, slots: int, max_new: int, **options):
    """A slot decoder on the tiny model that decodes greedily, its cache long enough for `reqs`, no CUDA graph."""
    from workers.decoder import SlotDecoder

    max_len = max(len(r.prompt_ids) for r in reqs) + max_new
    return SlotDecoder(loaded.model, slots=slots, max_len=max_len, max_new_tokens=max_new, eos=loaded.eos_token_id,
                       temperature=0, top_p=1.0, use_graph=False, **options)  # fmt: skip


def _greedy_reference(loaded, reqs, budgets):
    import torch

    expected = []
    with torch.inference_mode():
        for req, budget in zip(reqs, budgets):
            out = loaded.model.generate(
                input_ids=torch.tensor([list(req.prompt_ids)]),
                max_new_tokens=budget,
                do_sample=False,
                eos_token_id=loaded.eos_token_id,
                pad_token_id=loaded.tokenizer.pad_token_id,
            )
            tokens = out[0, len(req.prompt_ids) :].tolist()
            expected.append(tokens[: tokens.index(loaded.eos_token_id) + 1] if loaded.eos_token_id in tokens else tokens)
    return expected


@pytest.mark.parametrize(
    "attention, kv_block, fuse_writes", [("sdpa", 32, True), ("sdpa", 32, False), ("flex", 32, True), ("flex", 128, True)]
)
def test_slots_match_generate_token_for_token(loaded, attention, kv_block, fuse_writes):
    """Greedy decoding through 3 slots (so slots are refilled many times, prompts of different lengths and budgets)
    gives exactly the tokens `generate` gives one prompt at a time: the slot cache, positions, masks and refills are
    right. `flex` is the attention kernel used on GPUs (compiled here for the CPU); on a GPU it reads each slot's cache
    up to the block of `kv_block` positions that holds the slot's position (on the CPU it applies the mask everywhere,
    so the block counts are checked apart). The decode step's cache writes happen inside the layer function or apart."""
    from workers.decoder import SlotDecoder
    from workers.scheduler import SlotScheduler

    repeats = [1, 13, 20, 30, 61, 5, 40, 2, 45]  # prompts of 4 to 124 tokens
    reqs = [
        SampleRequest(i, loaded.tokenizer.encode("대한민국 헌법 " * r, add_special_tokens=False)) for i, r in enumerate(repeats)
    ]
    budgets = [3, 12, 1, 7, 12, 5, 9, 2, 12]
    lengths = [len(r.prompt_ids) for r in reqs]
    for block in (32, 128):  # some answers run across the end of a cache block
        assert any(n // block != (n + b - 1) // block for n, b in zip(lengths, budgets)), lengths
    expected = _greedy_reference(loaded, reqs, budgets)
    decoder = SlotDecoder(
        loaded.model,
        slots=3,
        max_len=max(lengths) + 12,
        max_new_tokens=12,
        eos=loaded.eos_token_id,
        temperature=0,
        top_p=1.0,
        use_graph=False,
        attention=attention,
        kv_block=kv_block,
        fuse_writes=fuse_writes,
    )
    checked = []
    if attention == "flex":
        real_step = decoder._decode_step

        def step_and_check_blocks(n):
            pos, running = decoder.pos[:n].clone(), ~decoder.finished[:n]
            real_step(n)
            blocks = decoder.kv_blocks[:n, 0, 0].long()
            # Each running slot reads the block holding the position its new key went to, and none wholly past it.
            assert bool(((blocks * kv_block > pos) & ((blocks - 1) * kv_block <= pos))[running].all())
            checked.append(int(running.sum()))

        decoder._decode_step = step_and_check_blocks
    scheduler = SlotScheduler(decoder, check_every=2)
    got = {done.index: done.tokens for done in scheduler.run([list(r.prompt_ids) for r in reqs], budgets)}
    assert sorted(got) == list(range(9))
    assert [got[i] for i in range(9)] == expected
    assert (sum(checked) > 0) == (attention == "flex")


def test_slots_share_one_prefill_between_samples_of_a_prompt(loaded, monkeypatch):
    from workers.decoder import SlotDecoder
    from workers.scheduler import SlotScheduler

    reqs = requests(loaded, 2)
    prompts = [list(reqs[0].prompt_ids)] * 3 + [list(reqs[1].prompt_ids)] * 3
    decoder = SlotDecoder(
        loaded.model, slots=6, max_len=64, max_new_tokens=8, eos=loaded.eos_token_id, temperature=1.0, top_p=1.0, use_graph=False
    )
    widths = []
    original = decoder.inner.embed_tokens.forward
    monkeypatch.setattr(decoder.inner.embed_tokens, "forward", lambda ids: widths.append(tuple(ids.shape)) or original(ids))
    import torch

    torch.manual_seed(3)
    done = {d.index: d.tokens for d in SlotScheduler(decoder).run(prompts, [8] * 6)}
    assert sorted(done) == list(range(6))
    assert widths[0] == (2, len(reqs[1].prompt_ids))  # one prefill: two distinct prompts for six slots
    greedy = SlotDecoder(
        loaded.model, slots=6, max_len=64, max_new_tokens=8, eos=loaded.eos_token_id, temperature=0, top_p=1.0, use_graph=False
    )
    got = {d.index: d.tokens for d in SlotScheduler(greedy).run(prompts, [8] * 6)}
    assert [got[i] for i in range(6)] == _greedy_reference(loaded, [SampleRequest(i, p) for i, p in enumerate(prompts)], [8] * 6)


def test_unknown_backend(loaded):
    with pytest.raises(ValueError, match="unknown generation backend"):
        Engine(loaded, backend="vllm")


@pytest.mark.parametrize("backend", ["slots", "batched", "continuous"])
def test_per_request_budgets(loaded, backend):
    reqs = [SampleRequest(i, r.prompt_ids, max_new_tokens=n) for i, (r, n) in enumerate(zip(requests(loaded, 3), [2, 5, 9]))]
    results = Engine(loaded, backend=backend).generate(reqs, SamplingParams(max_new_tokens=9, seed=5))
    for res, n in zip(results, [2, 5, 9]):
        assert res.completion_tokens <= n
        assert res.finish_reason == "stop" or res.completion_tokens == n


def test_slots_out_of_memory_halves_the_slots_and_keeps_finished_results(loaded, monkeypatch):
    """A CUDA out-of-memory error in the middle of a run: the results already yielded are kept, the decoder is rebuilt
    with half the slots, and only the unfinished requests run again."""
    import torch

    from workers.scheduler import SlotScheduler

    reqs = requests(loaded, 6)
    engine = Engine(loaded, backend="slots", max_batch=4)
    real_run = SlotScheduler.run
    calls = []

    def flaky_run(self, prompts, budgets, more=None):
        calls.append((self.decoder.slots, len(prompts)))
        for n, done in enumerate(real_run(self, prompts, budgets, more)):
            yield done
            if len(calls) == 1 and n == 1:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(SlotScheduler, "run", flaky_run)
    results = engine.generate(reqs, SamplingParams(max_new_tokens=4, seed=2))
    assert [r.key for r in results] == [r.key for r in reqs]
    assert all(1 <= r.completion_tokens <= 4 for r in results)
    assert calls == [(4, 6), (2, 4)]  # the second run: half the slots, only the four requests not finished


def test_slots_decoder_is_kept_between_calls_of_the_same_shape(loaded):
    engine = Engine(loaded, backend="slots", max_batch=4)
    reqs = requests(loaded, 4)
    first = engine.generate(reqs, SamplingParams(max_new_tokens=5, temperature=0))
    decoder = engine._decoder
    second = engine.generate(reqs, SamplingParams(max_new_tokens=5, temperature=0))
    assert engine._decoder is decoder  # cache (and on a GPU, its CUDA graph) reused
    assert [r.token_ids for r in first] == [r.token_ids for r in second]
    engine.generate(reqs, SamplingParams(max_new_tokens=7, temperature=0))
    assert engine._decoder is not decoder  # another output limit: another decoder


def test_fp8_projection_is_close_to_the_full_precision_one(loaded):
    """FP8 weights (a scale per output channel) and activations (a scale per token): the error is that of 3 mantissa
    bits, a few percent, not a wrong layout or scale."""
    import torch

    from workers.layers import _fp8_linear, linear

    layer = loaded.model.model.layers[0]
    torch.manual_seed(0)
    x = torch.randn(5, layer.self_attn.q_proj.in_features)
    with torch.inference_mode():
        for modules in [(layer.self_attn.o_proj,), (layer.mlp.gate_proj, layer.mlp.up_proj)]:
            expected = torch.cat([m(x) for m in modules], dim=-1)
            got = linear(x, _fp8_linear(*modules))
            assert got.shape == expected.shape
            assert ((got - expected).norm() / expected.norm()).item() < 0.08


@pytest.mark.parametrize("fp8", ["prefill", "all"])
def test_slots_with_fp8_matmuls_answer_every_request(loaded, fp8):
    reqs = requests(loaded, 5)
    results = Engine(loaded, backend="slots", max_batch=2, fp8=fp8).generate(reqs, SamplingParams(max_new_tokens=6, seed=1))
    assert [r.key for r in results] == [r.key for r in reqs]
    assert all(1 <= r.completion_tokens <= 6 and (r.finish_reason == "stop" or r.completion_tokens == 6) for r in results)
    with pytest.raises(ValueError, match="unknown fp8 mode"):
        Engine(loaded, backend="slots", fp8="int4")
    assert (
        Engine(loaded, backend="slots", fp8=fp8).precision
        == {"prefill": "float32, fp8 prefill", "all": "float32, fp8 matmuls"}[fp8]
    )
    assert Engine(loaded, backend="slots").precision == "float32"


def test_slots_compiled_match_generate_token_for_token(loaded):
    """The torch.compile path (the default on GPUs) computes the same layer: greedy tokens equal `generate`'s."""
    from workers.scheduler import SlotScheduler

    reqs = requests(loaded, 5)
    budgets = [4, 9, 2, 9, 6]
    decoder = greedy_decoder(loaded, reqs, slots=2, max_new=9, compile=True)
    scheduler = SlotScheduler(decoder, check_every=2)
    got = {done.index: done.tokens for done in scheduler.run([list(r.prompt_ids) for r in reqs], budgets)}
    assert [got[i] for i in range(5)] == _greedy_reference(loaded, reqs, budgets)
    assert not any(f.failed for f in (decoder.decode_in, decoder.decode_out, decoder.prefill_in, decoder.prefill_out))


def test_slots_tail_moves_running_sequences_to_fewer_slots(loaded, monkeypatch):
    """Once no prompt waits, running sequences are moved into the lower half of the slots and the step runs on fewer
    slots; the tokens are still exactly `generate`'s."""
    from workers.scheduler import SlotScheduler

    reqs = requests(loaded, 10)
    budgets = [2, 12, 3, 1, 12, 4, 2, 11, 3, 2]
    decoder = greedy_decoder(loaded, reqs, slots=8, max_new=12, min_slots=2)
    assert decoder.sizes == [8, 4, 2]
    steps, moves = [], []
    real_step, real_move = decoder._decode_step, decoder.move
    monkeypatch.setattr(decoder, "_decode_step", lambda n: steps.append(n) or real_step(n))
    monkeypatch.setattr(decoder, "move", lambda s, t: moves.append((s, t)) or real_move(s, t))
    scheduler = SlotScheduler(decoder, check_every=1)
    got = {done.index: done.tokens for done in scheduler.run([list(r.prompt_ids) for r in reqs], budgets)}
    assert [got[i] for i in range(10)] == _greedy_reference(loaded, reqs, budgets)
    assert steps[0] == 8 and steps[-1] == 2 and sorted(steps, reverse=True) == steps
    assert moves and all(target < source for source, target in moves)


def test_slots_fall_back_to_uncompiled_layers_when_compiling_fails(loaded, monkeypatch, caplog):
    """A GPU host whose torch.compile cannot build kernels (no C compiler for Triton, say) still generates, with the
    same tokens, and says why in the log."""
    import torch
    import torch._dynamo.exc

    from workers.scheduler import SlotScheduler

    real_compile = torch.compile

    def broken_compile(fn, **options):
        if fn.__name__ not in {
            "attention_inputs",
            "attention_inputs_into_cache",
            "attention_output_and_mlp",
            "_prefill_attention_inputs",
            "_prefill_attention_output_and_mlp",
            "flex_attention",
        }:
            return real_compile(fn, **options)  # FlexAttention's uncompiled path traces with dynamo but builds no kernels

        def compiled(*args, **kwargs):
            raise torch._dynamo.exc.BackendCompilerFailed(fn, RuntimeError("Failed to find C compiler"), None)

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    reqs = requests(loaded, 4)
    budgets = [3, 6, 2, 6]
    decoder = greedy_decoder(loaded, reqs, slots=2, max_new=6, compile=True, attention="flex")
    with caplog.at_level("WARNING", logger="workers.layers"):
        got = {done.index: done.tokens for done in SlotScheduler(decoder).run([list(r.prompt_ids) for r in reqs], budgets)}
    assert [got[i] for i in range(4)] == _greedy_reference(loaded, reqs, budgets)
    assert "torch.compile of attention_inputs_into_cache failed" in caplog.text and "Failed to find C compiler" in caplog.text
    assert decoder.decode_in.failed and decoder.prefill_out.failed and decoder.flex.failed


def test_fp8_on_a_gpu_without_fp8_matmuls_is_refused_by_name(monkeypatch):
    import torch

    from workers.layers import check_fp8_device

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A100-SXM4-80GB")
    with pytest.raises(ValueError, match=r"GENERATION_FP8 needs a GPU with FP8 matmuls .* A100-SXM4-80GB has 8.0"):
        check_fp8_device(torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    check_fp8_device(torch.device("cuda"))  # an H100
    check_fp8_device(torch.device("cpu"))


@pytest.mark.parametrize("attention, compile", [("sdpa", False), ("flex", False), ("sdpa", True)])
def test_a_shared_prefix_is_prefilled_once_and_decoding_is_unchanged(loaded, attention, compile, monkeypatch):
    """Prompts made from one template share the chat header and the instruction before the chunk: that prefix runs
    once, every later prefill runs only the rest, and greedy decoding still gives `generate`'s tokens one for one."""
    from workers.prompts import encode_chat_prompt
    from workers.scheduler import SlotScheduler

    tok = loaded.tokenizer
    texts = [
        "대한민국은 민주공화국이다.",
        "모든 국민은 법 앞에 평등하다.",
        "국회는 법률을 제정한다. " * 3,
        "헌법재판소",
        "대통령은 국가의 원수이다.",
    ]
    template = "주어진 텍스트 컨텐츠를 참고하여 질문과 정확하고 상세한 답변을 만드세요\n---\n{text}"
    reqs = [SampleRequest(i, encode_chat_prompt(tok, template, text=t)) for i, t in enumerate(texts)]
    budgets = [6, 12, 3, 12, 8]
    expected = _greedy_reference(loaded, reqs, budgets)
    decoder = greedy_decoder(loaded, reqs, slots=2, max_new=12, attention=attention, compile=compile)
    widths = []
    original = decoder.inner.embed_tokens.forward
    monkeypatch.setattr(decoder.inner.embed_tokens, "forward", lambda ids: widths.append(tuple(ids.shape)) or original(ids))
    scheduler = SlotScheduler(decoder, check_every=2)
    got = {d.index: d.tokens for d in scheduler.run([list(r.prompt_ids) for r in reqs], budgets)}
    assert [got[i] for i in range(len(reqs))] == expected

    shared = len(decoder.prefix)
    assert shared >= 16 and all(list(r.prompt_ids[:shared]) == list(decoder.prefix) for r in reqs)
    assert widths[0] == (1, shared)  # the prefix, once
    prefills = [w for w in widths[1:] if len(w) == 2]  # (a decode step embeds one token per slot: [slots])
    assert sum(w[0] for w in prefills) == len(reqs)
    assert max(w[1] for w in prefills) == max(len(r.prompt_ids) for r in reqs) - shared

    widths.clear()  # a second call with the same template reuses the prefix's cache
    again = {d.index: d.tokens for d in scheduler.run([list(r.prompt_ids) for r in reqs], budgets)}
    assert [again[i] for i in range(len(reqs))] == expected and (1, shared) not in widths
    assert not getattr(decoder.prefill_in_after_prefix, "failed", False)  # compiled, it did not fall back to eager


def test_slots_fuse_projections_into_one_matmul_without_copying_the_weights(tiny_model):
    """Q, K and V (and gate and up) run as one matmul each: their weights become views of one tensor, so the model's
    own forward is unchanged and no memory is added; an unfused decoder gives the same greedy tokens."""
    import torch

    from workers.decoder import SlotDecoder
    from workers.scheduler import SlotScheduler

    loaded = load_model(ModelSpec(base_model=tiny_model["base"], adapter=tiny_model["adapter"]), device="cpu")
    model = loaded.model

    def storage_bytes():
        return sum({p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for p in model.parameters()}.values())

    reqs = requests(loaded, 5)
    ids = torch.tensor([list(reqs[4].prompt_ids)])
    with torch.inference_mode():
        before_logits = model(input_ids=ids).logits
    before_bytes = storage_bytes()
    unfused = SlotDecoder(
        model,
        slots=2,
        max_len=64,
        max_new_tokens=6,
        eos=loaded.eos_token_id,
        temperature=0,
        top_p=1.0,
        use_graph=False,
        fuse=False,
    )
    prompts, budgets = [list(r.prompt_ids) for r in reqs], [6] * len(reqs)
    apart = {d.index: d.tokens for d in SlotScheduler(unfused).run(prompts, budgets)}
    assert len(unfused.decode_weights[0].qkv) == 3

    fused = SlotDecoder(
        model, slots=2, max_len=64, max_new_tokens=6, eos=loaded.eos_token_id, temperature=0, top_p=1.0, use_graph=False
    )
    layer, weights = model.model.layers[0], fused.decode_weights[0]
    assert len(weights.qkv) == 1 and len(weights.gate_up) == 1
    hidden = model.config.hidden_size
    assert weights.qkv[0].weight.shape == (layer.self_attn.q_proj.out_features + 2 * layer.self_attn.k_proj.out_features, hidden)
    for module in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
        assert module.weight.untyped_storage().data_ptr() == weights.qkv[0].weight.untyped_storage().data_ptr()
    for module in (layer.mlp.gate_proj, layer.mlp.up_proj):
        assert module.weight.untyped_storage().data_ptr() == weights.gate_up[0].weight.untyped_storage().data_ptr()
    assert storage_bytes() == before_bytes
    with torch.inference_mode():
        assert torch.equal(model(input_ids=ids).logits, before_logits)
    together = {d.index: d.tokens for d in SlotScheduler(fused).run(prompts, budgets)}
    assert together == apart
    # A later decoder on the same model reuses the fused tensors instead of fusing again.
    again = SlotDecoder(
        model, slots=2, max_len=64, max_new_tokens=6, eos=loaded.eos_token_id, temperature=0, top_p=1.0, use_graph=False
    )
    assert again.decode_weights[0].qkv[0].weight is weights.qkv[0].weight


def test_handed_over_prompts_fill_the_slots_a_tail_leaves_free(loaded):
    """The next job's prompts, handed over while the last sequences of this one still decode, go into the slots those
    leave free; prompts made from another template shrink the shared prefix, and greedy decoding still gives
    `generate`'s tokens one for one for every prompt."""
    from workers.prompts import encode_chat_prompt
    from workers.scheduler import SlotScheduler

    tok = loaded.tokenizer
    template = "주어진 텍스트 컨텐츠를 참고하여 질문과 정확하고 상세한 답변을 만드세요\n---\n{text}"
    texts = [
        "대한민국은 민주공화국이다.",
        "모든 국민은 법 앞에 평등하다.",
        "국회는 법률을 제정한다. " * 3,
        "헌법재판소",
        "대통령은 국가의 원수이다.",
        "국무총리는 국회의 동의를 얻어 대통령이 임명한다.",
    ]
    first = [encode_chat_prompt(tok, template, text=t) for t in texts[:3]]
    later = [encode_chat_prompt(tok, template, text=t) for t in texts[3:5]]
    later.append(encode_chat_prompt(tok, "다음 글을 읽고 질문을 하나 만드세요\n{text}", text=texts[5]))
    first_budgets, later_budgets = [12, 12, 12], [6, 12, 4]
    reqs = [SampleRequest(i, p) for i, p in enumerate(first + later)]
    expected = _greedy_reference(loaded, reqs, first_budgets + later_budgets)
    decoder = greedy_decoder(loaded, reqs, slots=2, max_new=12, attention="sdpa")
    asked = []

    def more(wait):
        asked.append((wait, int((~decoder.finished).sum()), len(decoder.prefix)))
        if len(asked) == 1:
            return [], []  # nothing ready yet: decoding goes on
        return (later, later_budgets) if len(asked) == 2 else None

    got = {d.index: d.tokens for d in SlotScheduler(decoder, check_every=2).run(first, first_budgets, more=more)}
    assert [got[i] for i in range(len(reqs))] == expected
    assert asked[1][0] is False and asked[1][1] > 0  # handed over while a sequence of the first prompts still ran
    # The template's prefix was shared until the other template's prompt came; then it shrank to what all share.
    assert asked[1][2] >= 16 and len(decoder.prefix) < asked[1][2]
    assert all(list(p[: len(decoder.prefix)]) == list(decoder.prefix) for p in first + later)


@pytest.mark.parametrize("backend", ["slots", "batched"])
def test_requests_handed_over_during_generation_are_each_answered_once(loaded, backend):
    """`generate_stream(..., more=)` answers the handed-over requests too, their indices following the earlier ones';
    one too long for the cache the slots were sized with runs after the others."""
    reqs = requests(loaded, n=9)
    longer = SampleRequest(("long", 0), loaded.tokenizer.encode("대한민국 헌법 " * 160, add_special_tokens=False))
    handed = [reqs[4:7], [], reqs[7:] + [longer]]

    def more(wait):
        while handed:
            batch = handed.pop(0)
            if batch or not wait:
                return batch
        return None

    results = dict(
        Engine(loaded, backend=backend, token_budget=4000, max_batch=4).generate_stream(
            reqs[:4], SamplingParams(max_new_tokens=6, seed=1), more=more
        )
    )
    keys = [r.key for r in reqs + [longer]]
    assert sorted(results) == list(range(len(keys)))
    assert [results[i].key for i in range(len(keys))] == keys
    assert results[len(keys) - 1].prompt_tokens == len(longer.prompt_ids) > 256
