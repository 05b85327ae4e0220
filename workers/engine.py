"""Batched generation: many chunks per forward pass, several samples per chunk, finished sequences stop costing time.

Three backends, chosen by measurement (`benchmarks/generation.py`; the figures, cards and versions are in
docs/PERFORMANCE.md, "Generation"):
- `slots` (the default for Llama-shaped models, `workers/decoder.py`, `workers/scheduler.py`, `workers/layers.py`): a
  preallocated KV cache of sequence slots, the decode step captured in a CUDA graph with FlexAttention reading only each
  slot's own cache blocks, finished slots refilled at once, one prefill shared by the samples of a chunk, the template's
  shared prefix prefilled once, the layers compiled with Q, K, V and gate, up fused into one matmul each, and a job's
  tail run on fewer slots; FP8 prefill matmuls (`fp8="prefill"`) are an option. The fastest of the three by far.
- `batched`: plain `generate` on length-sorted, left-padded batches sized from a token budget and the free GPU memory;
  used for architectures the `slots` path does not know.
- `continuous`: transformers' continuous batching (`generate_batch`, paged KV cache); much slower than the others on
  the same GPU and version, so it is opt-in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

log = logging.getLogger(__name__)

BACKENDS = ("auto", "slots", "batched", "continuous")


# What `generate` applies when neither the call nor the checkpoint's generation config sets a value: the model card's
# call (`do_sample=True, temperature=1.0`) samples from the 50 likeliest tokens unless the base checkpoint says otherwise.
GENERATE_DEFAULTS = {"top_k": 50, "top_p": 1.0}


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float | None = None  # None: as the card's `generate` call gets it (the checkpoint's generation config, else 1.0)
    top_k: int | None = None  # None: likewise (else 50); 0: no top-k
    max_new_tokens: int = 256
    seed: int = 0


@dataclass(frozen=True)
class SampleRequest:
    key: Any
    prompt_ids: Sequence[int]
    max_new_tokens: int | None = None  # a budget of its own, below the sampling parameters' limit


def request_budget(request: SampleRequest, params: SamplingParams) -> int:
    """The tokens a request may generate: its own budget where it has one, never more than the parameters' limit."""
    return min(request.max_new_tokens or params.max_new_tokens, params.max_new_tokens)


@dataclass
class SampleResult:
    key: Any
    token_ids: list[int]
    text: str
    finish_reason: str  # "stop" (end of turn) or "length" (token limit)
    prompt_tokens: int
    completion_tokens: int
    duration_ms: int


class Engine:
    def __init__(
        self,
        loaded,
        *,
        backend: str = "auto",
        max_batch: int = 512,
        token_budget: int | None = None,
        compile: bool | None = None,
        fp8: str = "off",
        fuse: bool = True,
        refill_at: int | None = None,
        kv_block: int = 32,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"unknown generation backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.eos = loaded.eos_token_id
        self.pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos
        if backend == "auto":
            from workers.layers import supports

            backend = "slots" if supports(self.model) else "batched"
        from workers.layers import fp8_mode

        self.backend = backend
        self.compile, self.fp8 = compile, fp8_mode(fp8)  # for `slots`: torch.compile (None: on a GPU) and FP8 matmuls
        self.fuse = fuse  # for `slots`: Q, K, V and gate, up as one matmul each (no extra memory)
        self.refill_at = refill_at  # for `slots`: free slots that trigger a refill (None: 1/16 of the slots)
        self.kv_block = kv_block  # for `slots` on a GPU: cache positions FlexAttention reads per block
        self.max_batch = max_batch
        self.token_budget = token_budget or self._default_budget()
        self._decoder = None

    @property
    def precision(self) -> str:
        """The matmuls' arithmetic, recorded with every sample: the weights' dtype, and FP8 where `slots` uses it."""
        if self.backend == "slots" and self.fp8 != "off":
            return f"{self.loaded.dtype}, fp8 {'prefill' if self.fp8 == 'prefill' else 'matmuls'}"
        return self.loaded.dtype

    # -- sizing ---------------------------------------------------------------------------------------------------------
    def _kv_bytes_per_token(self) -> int:
        config = self.model.config
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        element = 2 if self.loaded.dtype in {"bfloat16", "float16"} else 4
        return 2 * config.num_hidden_layers * kv_heads * head_dim * element

    def _default_budget(self) -> int:
        """Tokens of KV cache that fit: 80% of free GPU memory, or a fixed budget on CPU."""
        import torch

        if self.loaded.device.startswith("cuda"):
            free, _total = torch.cuda.mem_get_info()
            return max(4096, int(free * 0.8) // self._kv_bytes_per_token())
        return 32_768

    def resolve(self, params: SamplingParams) -> SamplingParams:
        """Top-k and top-p as the model card's `generate` call gets them: the value asked for, else the loaded
        checkpoint's generation config (`generation_config.json` of the pinned revision), else transformers' default.
        Every backend samples with the resolved values, and every sample records them."""
        config = getattr(self.model, "generation_config", None)

        def pick(name):
            value = getattr(params, name)
            if value is None and config is not None:
                value = getattr(config, name, None)
            return GENERATE_DEFAULTS[name] if value is None else value

        top_k, top_p = int(pick("top_k")), float(pick("top_p"))
        if top_k < 0 or not 0.0 < top_p <= 1.0:
            raise ValueError(f"top-k must be 0 (off) or more and top-p in (0, 1]; got top_k={top_k}, top_p={top_p}")
        return replace(params, top_k=top_k, top_p=top_p)

    # -- generation -----------------------------------------------------------------------------------------------------
    def generate(self, requests: Sequence[SampleRequest], params: SamplingParams) -> list[SampleResult]:
        """One result per request, in the requests' order."""
        results: list[SampleResult | None] = [None] * len(requests)
        for index, result in self.generate_stream(requests, params):
            results[index] = result
        return results  # type: ignore[return-value]

    def generate_stream(
        self,
        requests: Sequence[SampleRequest],
        params: SamplingParams,
        more: Callable[[bool], Sequence[SampleRequest] | None] | None = None,
    ) -> Iterator[tuple[int, SampleResult]]:
        """(request index, result) as results are ready: with `slots`, each as its sequence finishes, so a caller can
        store them while the rest is still generating; with the other backends, a batch at a time.

        `more(wait)`, when given, hands over further requests (same parameters) while these run; their indices follow
        the earlier ones'. It is asked whenever no request waits for a slot, `wait` false while sequences still decode
        (answer at once, [] for nothing yet) and true once none does; None means nothing more. With `slots` the new
        requests fill the slots that the last sequences leave free, so there is no tail between jobs; the other
        backends run them after the earlier ones."""
        params = self.resolve(params)
        if self.backend == "slots":
            yield from self._generate_slots(list(requests), params, more)
            return
        offset, ready = 0, list(requests)
        while True:
            if ready:
                run = self._generate_continuous if self.backend == "continuous" else self._generate_batched
                yield from ((offset + i, r) for i, r in enumerate(run(ready, params)))
                offset += len(ready)
            ready = list(more(True) or []) if more is not None else []
            if not ready:
                return

    def _result(self, request: SampleRequest, generated: list[int], max_new_tokens: int, duration_ms: int) -> SampleResult:
        if self.eos in generated:
            generated = generated[: generated.index(self.eos) + 1]
            finish = "stop"
        else:
            finish = "length" if len(generated) >= max_new_tokens else "stop"
        content = generated[:-1] if finish == "stop" and generated and generated[-1] == self.eos else generated
        return SampleResult(
            key=request.key,
            token_ids=list(generated),
            text=self.tokenizer.decode(content, skip_special_tokens=True),
            finish_reason=finish,
            prompt_tokens=len(request.prompt_ids),
            completion_tokens=len(generated),
            duration_ms=duration_ms,
        )

    def _slot_decoder(self, slots: int, max_len: int, params: SamplingParams):
        """The decoder of the last call when it fits (its cache and CUDA graph are kept), else a new one."""
        from workers.decoder import SlotDecoder

        d = self._decoder
        if (
            d is not None
            and d.slots == slots
            and d.max_new == params.max_new_tokens
            and d.temperature == params.temperature
            and d.top_p == params.top_p
            and d.top_k == params.top_k
            and max_len <= d.max_len <= max_len + 256
        ):
            return d
        self._decoder = None
        self._free_gpu_memory()
        self._decoder = SlotDecoder(
            self.model,
            slots=slots,
            max_len=max_len,
            max_new_tokens=params.max_new_tokens,
            eos=self.eos,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            use_graph=self.loaded.device.startswith("cuda"),
            compile=self.compile,
            fp8=self.fp8,
            fuse=self.fuse,
            kv_block=self.kv_block,
        )
        return self._decoder

    def _free_gpu_memory(self):
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _generate_slots(
        self, requests: list[SampleRequest], params: SamplingParams, more=None
    ) -> Iterator[tuple[int, SampleResult]]:
        import torch

        from workers.scheduler import SlotScheduler

        budgets = [request_budget(r, params) for r in requests]
        finished = [False] * len(requests)
        exhausted = more is None
        slots = None
        torch.manual_seed(params.seed)

        def take(new) -> list[int]:
            for request in new:
                requests.append(request)
                budgets.append(request_budget(request, params))
                finished.append(False)
            return list(range(len(requests) - len(new), len(requests)))

        while True:
            todo = [i for i, f in enumerate(finished) if not f]
            if not todo:
                new = None if exhausted else more(True)
                if not new:
                    return
                take(new)
                continue
            max_len = max(len(requests[i].prompt_ids) for i in todo) + params.max_new_tokens
            if not exhausted:  # room for handed-over prompts, which may be a little longer
                max_len = -(-max_len // 256) * 256
            if slots is None:
                # As many slots as the KV budget holds, at most max_batch, and (for one job) no more than a power of two
                # above its work.
                slots = min(
                    self.max_batch,
                    max(1, self.token_budget // max_len),
                    self.max_batch if not exhausted else 1 << (len(todo) - 1).bit_length(),
                )
            decoder = self._slot_decoder(slots, max_len, params)

            def feed(wait: bool, decoder=decoder, todo=todo):
                nonlocal exhausted
                new = more(wait)
                if new is None:
                    exhausted = True
                    return None
                # One that does not fit this decoder's cache stays unfinished and runs in the next round.
                fits = [i for i in take(new) if len(requests[i].prompt_ids) + params.max_new_tokens <= decoder.max_len]
                todo.extend(fits)
                return [list(requests[i].prompt_ids) for i in fits], [budgets[i] for i in fits]

            try:
                scheduler = SlotScheduler(decoder, refill_at=self.refill_at)
                for done in scheduler.run(
                    [list(requests[i].prompt_ids) for i in todo], [budgets[i] for i in todo], more=None if exhausted else feed
                ):
                    index = todo[done.index]
                    finished[index] = True
                    yield index, self._result(requests[index], done.tokens, budgets[index], done.duration_ms)
            except torch.cuda.OutOfMemoryError:
                if slots == 1:
                    raise
                slots //= 2  # finished results are kept; the rest runs again with half the slots
                log.warning("CUDA out of memory with %d slots; retrying the unfinished requests with %d", slots * 2, slots)
                self._decoder = None
                self._free_gpu_memory()

    def _generate_continuous(self, requests: Sequence[SampleRequest], params: SamplingParams) -> list[SampleResult]:
        import torch
        from transformers import GenerationConfig

        config = GenerationConfig(
            do_sample=params.temperature > 0,
            temperature=params.temperature if params.temperature > 0 else None,
            top_p=params.top_p,
            top_k=params.top_k,
            max_new_tokens=params.max_new_tokens,
            eos_token_id=self.eos,
            pad_token_id=self.pad,
        )
        torch.manual_seed(params.seed)
        started = time.perf_counter()
        with torch.no_grad():
            if any(r.max_new_tokens for r in requests):
                ordered = self._continuous_with_budgets(requests, config, params)
            else:
                outputs = self.model.generate_batch(
                    inputs=[list(r.prompt_ids) for r in requests], generation_config=config, progress_bar=False
                )
                ordered = sorted(outputs.values(), key=lambda o: int(str(o.request_id).rsplit("_", 1)[-1]))
        duration_ms = int((time.perf_counter() - started) * 1000)
        if len(ordered) != len(requests):
            raise RuntimeError(f"continuous batching returned {len(ordered)} outputs for {len(requests)} requests")
        results = []
        for request, output in zip(requests, ordered):
            if getattr(output, "error", None):
                raise RuntimeError(f"generation failed for a request: {output.error}")
            budget = request_budget(request, params)
            results.append(self._result(request, list(output.generated_tokens), budget, duration_ms))
        return results

    def _continuous_with_budgets(self, requests, config, params):
        manager = self.model.init_continuous_batching(generation_config=config)
        manager.start()
        try:
            ids = [
                manager.add_request(
                    list(r.prompt_ids),
                    request_id=f"req_{i}",
                    max_new_tokens=request_budget(r, params),
                )
                for i, r in enumerate(requests)
            ]
            done = {}
            while len(done) < len(ids):
                output = manager.get_result(timeout=600)
                if output is None:
                    raise RuntimeError("continuous batching stopped returning results")
                finished = getattr(output, "is_finished", True)
                if callable(finished):
                    finished = finished()
                if finished:
                    done[output.request_id] = output
        finally:
            manager.stop(block=True)
        return [done[i] for i in ids]

    def _groups(self, order: list[int], requests: Sequence[SampleRequest], params: SamplingParams, max_rows: int):
        """Length-sorted groups whose padded size (rows x (longest prompt + new tokens)) fits the token budget."""
        group: list[int] = []
        longest = 0
        for index in order:
            length = len(requests[index].prompt_ids)
            new_longest = max(longest, length)
            if group and (
                len(group) + 1 > max_rows or (len(group) + 1) * (new_longest + params.max_new_tokens) > self.token_budget
            ):
                yield group
                group, new_longest = [], length
            group.append(index)
            longest = new_longest
        if group:
            yield group

    def _generate_batched(self, requests: Sequence[SampleRequest], params: SamplingParams) -> list[SampleResult]:
        import torch

        order = sorted(range(len(requests)), key=lambda i: -len(requests[i].prompt_ids))
        results: list[SampleResult | None] = [None] * len(requests)
        max_rows = self.max_batch
        pending = list(self._groups(order, requests, params, max_rows))
        torch.manual_seed(params.seed)
        while pending:
            group = pending.pop(0)
            try:
                for index, result in zip(group, self._run_group([requests[i] for i in group], params)):
                    results[index] = result
            except torch.cuda.OutOfMemoryError:
                if len(group) == 1:
                    raise
                # Halve the batch and try again; later groups use the smaller size too.
                torch.cuda.empty_cache()
                max_rows = max(1, len(group) // 2)
                log.warning("CUDA out of memory at batch %d; retrying at %d", len(group), max_rows)
                pending[:0] = [group[i : i + max_rows] for i in range(0, len(group), max_rows)]
        return results  # type: ignore[return-value]

    def _run_group(self, group: list[SampleRequest], params: SamplingParams) -> list[SampleResult]:
        import torch

        width = max(len(r.prompt_ids) for r in group)
        input_ids = torch.full((len(group), width), self.pad, dtype=torch.long)
        attention = torch.zeros((len(group), width), dtype=torch.long)
        for row, request in enumerate(group):
            ids = torch.tensor(list(request.prompt_ids), dtype=torch.long)
            input_ids[row, width - len(ids) :] = ids  # left padding: every prompt ends where generation starts
            attention[row, width - len(ids) :] = 1
        device = self.loaded.device
        budgets = [request_budget(r, params) for r in group]
        extra = {}
        if any(b < params.max_new_tokens for b in budgets):
            from transformers import LogitsProcessorList

            extra["logits_processor"] = LogitsProcessorList([_StopAtBudget(budgets, width, self.eos)])
        started = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                do_sample=params.temperature > 0,
                temperature=params.temperature if params.temperature > 0 else None,
                top_p=params.top_p,
                top_k=params.top_k,  # explicit, so `generate` samples exactly as the `slots` backend does
                max_new_tokens=max(budgets),
                eos_token_id=self.eos,
                pad_token_id=self.pad,
                **extra,
            )
        duration_ms = int((time.perf_counter() - started) * 1000)
        generated = output[:, width:].tolist()
        results = []
        for request, tokens, budget in zip(group, generated, budgets):
            # Rows that finished early are padded after their eos; _result cuts at the first eos.
            if budget < params.max_new_tokens and len(tokens) > budget and tokens[budget] == self.eos:
                tokens = tokens[:budget]  # the eos forced at the row's own budget is a length stop
            results.append(self._result(request, tokens[:budget], budget, duration_ms))
        return results


class _StopAtBudget:
    """Ends each row at its own token budget by forcing end-of-turn there (plain `generate` has one limit per batch)."""

    def __init__(self, budgets: list[int], prompt_width: int, eos: int):
        self.budgets, self.prompt_width, self.eos = budgets, prompt_width, eos

    def __call__(self, input_ids, scores):
        import torch

        step = input_ids.shape[1] - self.prompt_width
        for row, budget in enumerate(self.budgets):
            if step >= budget:
                scores[row, :] = -torch.inf
                scores[row, self.eos] = 0.0
        return scores
