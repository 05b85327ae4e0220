"""The model on a fixed set of sequence slots: one preallocated KV cache, the prefill, and the decode step (a CUDA graph).

Plain `generate` keeps a finished row in the batch until the longest row ends, grows its cache by concatenation at
every step, and pays Python and kernel-launch overhead per layer per step. Here:
- the KV cache is allocated once, `[layers, slots, kv_heads, max_len, head_dim]`; a slot holds one sequence from
  position 0, so prompts need no padding in the cache and every slot has its own position;
- one decode step (embedding, every layer, the head, sampling and the bookkeeping of positions, budgets and eos) runs
  on fixed buffers, so on a GPU it is captured once in a CUDA graph and replayed; it runs on the first n slots, n one
  of a few sizes (one graph per size), so a job's tail stops paying for empty slots;
- the layers are `workers/layers.py`'s functions, compiled on a GPU.

Which prompt goes into which slot when is `workers/scheduler.py`'s business. The model's embedding, rotary embedding,
final norm and head modules are called as they are. It applies to Llama-shaped models (the ko-genstruct base is
Llama-3); other architectures use the `batched` backend.
"""

from __future__ import annotations

import os

import torch
from torch.nn.attention.flex_attention import BlockMask, flex_attention

from workers.layers import (
    Compiled,
    _allow_recompiles,
    _prefill_attention_inputs,
    _prefill_attention_inputs_after_prefix,
    _prefill_attention_output_and_mlp,
    attention_inputs,
    attention_inputs_into_cache,
    attention_output_and_mlp,
    check_fp8_device,
    fp8_mode,
    layer_weights,
)
from workers.sampling import sample


class SlotDecoder:
    """The slots' cache and state: `prefill` puts prompts into slots, `step` decodes one token in each of the first n
    slots, `move` shifts a running sequence to another slot. `workers/scheduler.py` drives it."""

    def __init__(
        self,
        model,
        *,
        slots: int,
        max_len: int,
        max_new_tokens: int,
        eos: int,
        temperature: float,
        top_p: float,
        use_graph: bool,
        top_k: int = 0,
        attention: str = "auto",
        compile: bool | None = None,
        fp8: str = "off",
        min_slots: int = 16,
        min_prefix: int = 16,
        fuse: bool = True,
        fuse_writes: bool = True,
        kv_block: int = 32,
    ):
        self.model = model
        self.inner = model.model
        self.layers = list(self.inner.layers)
        config = model.config
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.group = self.heads // self.kv_heads
        self.scale = self.head_dim**-0.5
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.slots, self.max_new, self.eos = slots, max_new_tokens, eos
        if attention == "auto":
            attention = "flex" if self.device.type == "cuda" else "sdpa"
        self.attention = attention
        # FlexAttention reads the cache in blocks of `kv_block` positions (each slot up to the block that holds its
        # position); rows are aligned to whole blocks.
        self.kv_block = kv_block if attention == "flex" else 64
        self.max_len = -(-max_len // self.kv_block) * self.kv_block
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.use_graph = use_graph
        self.fp8 = fp8_mode(fp8)
        if fp8 != "off":
            check_fp8_device(self.device)
        self.intermediate = config.intermediate_size
        # bf16/fp32 projections of one input run as one matmul (Q, K and V; gate and up) unless `fuse` is off.
        plain = [layer_weights(layer, fp8=False, fuse=fuse) for layer in self.layers]
        quantized = [layer_weights(layer, fp8=True) for layer in self.layers] if fp8 != "off" else plain
        self.prefill_weights = quantized
        self.decode_weights = quantized if fp8 == "all" else plain
        # torch.compile fuses the elementwise work around the matmuls (on by default on a GPU, where the decode step is
        # otherwise ~1,100 small kernels); without it the same functions run eagerly.
        self.compiled = self.device.type == "cuda" if compile is None else compile
        if self.compiled:
            _allow_recompiles()
            self.decode_in = Compiled(attention_inputs_into_cache if fuse_writes else attention_inputs, dynamic=False)
            self.decode_out = Compiled(attention_output_and_mlp, dynamic=False)
            self.prefill_in = Compiled(_prefill_attention_inputs)
            self.prefill_in_after_prefix = Compiled(_prefill_attention_inputs_after_prefix)
            self.prefill_out = Compiled(_prefill_attention_output_and_mlp)
        else:
            self.decode_in = attention_inputs_into_cache if fuse_writes else attention_inputs
            self.prefill_in = attention_inputs
            self.prefill_in_after_prefix = _prefill_attention_inputs_after_prefix
            self.decode_out = self.prefill_out = attention_output_and_mlp

        shape = (len(self.layers), slots, self.kv_heads, self.max_len, self.head_dim)
        dev = self.device
        self.k_cache = torch.zeros(shape, dtype=self.dtype, device=dev)
        self.v_cache = torch.zeros(shape, dtype=self.dtype, device=dev)
        long = dict(dtype=torch.long, device=dev)
        self.tokens = torch.zeros(slots, **long)  # the last sampled token of each slot: the next step's input
        self.pos = torch.zeros(slots, **long)  # where that token goes in the cache
        self.count = torch.zeros(slots, **long)  # tokens generated so far
        self.budget = torch.ones(slots, **long)
        self.finished = torch.ones(slots, dtype=torch.bool, device=dev)  # an empty slot counts as finished
        self.out = torch.zeros((slots, max_new_tokens), **long)
        self.rows = torch.arange(slots, **long)
        self.columns = torch.arange(self.max_len, **long)
        # The decode step runs on the first `n` slots, n one of these sizes: once no prompt is waiting, the running
        # sequences are moved into the lower half whenever they fit there, so a job's tail stops paying for empty slots.
        self.sizes = [slots]
        while self.sizes[-1] // 2 >= max(1, min_slots):
            self.sizes.append(self.sizes[-1] // 2)
        # The prompts' shared prefix (the chat header and the template's text before the chunk): its K and V are computed
        # once and copied into each slot, and the prefills run only on what follows it.
        self.min_prefix = min_prefix
        self.prefix: tuple = ()
        self.prefix_kv = None  # ([layers, kv_heads, len, head_dim] keys, values) of self.prefix
        self.fuse_writes = fuse_writes  # the decode step's cache writes inside `decode_in` (else two index_puts a layer)
        self.graphs: dict[int, object] = {}
        self.graph_pool = None
        if attention == "flex":
            self._init_flex()

    def _init_flex(self):
        """Decode attention with FlexAttention's decoding kernel: each slot reads only the cache blocks up to its own
        position (the block count per slot is a tensor updated inside the step), never the empty rest of the cache."""
        _allow_recompiles()
        self.flex = Compiled(flex_attention, dynamic=False, fullgraph=True)
        blocks = self.max_len // self.kv_block
        self.kv_blocks = torch.ones((self.slots, 1, 1), dtype=torch.int32, device=self.device)
        self.kv_indices = (
            torch.arange(blocks, dtype=torch.int32, device=self.device).expand(self.slots, 1, 1, blocks).contiguous()
        )
        pos = self.pos

        def visible(b, h, q_idx, kv_idx):
            return kv_idx <= pos[b]

        # One block mask per decode size, over the first n slots' rows of the same tensors.
        self.block_masks = {
            n: BlockMask.from_kv_blocks(
                self.kv_blocks[:n],
                self.kv_indices[:n],
                BLOCK_SIZE=self.kv_block,
                mask_mod=visible,
                seq_lengths=(1, self.max_len),
                compute_q_blocks=False,
            )
            for n in self.sizes
        }

    # -- the model, on the slot cache -----------------------------------------------------------------------------------
    def _decode_step(self, n: int):
        """One token for each of the first n slots. Reads and writes only the fixed buffers (graph-capturable)."""
        tokens, pos, count, budget, finished = (t[:n] for t in (self.tokens, self.pos, self.count, self.budget, self.finished))
        rows = self.rows[:n]
        x = self.inner.embed_tokens(tokens)
        cos, sin = self.inner.rotary_emb(x[:, None, :], pos[:, None])
        cos, sin = cos[:, 0], sin[:, 0]
        if self.attention == "flex":
            # A finished or empty slot reads one block (its row is discarded), not the history it had.
            blocks = torch.where(finished, torch.ones_like(pos), pos // self.kv_block + 1)
            self.kv_blocks[:n].copy_(blocks.to(torch.int32).view(n, 1, 1))
        else:
            mask = (self.columns[None, :] <= pos[:, None])[:, None, None, :]
        for i, w in enumerate(self.decode_weights):
            k_cache, v_cache = self.k_cache[i][:n], self.v_cache[i][:n]
            if self.fuse_writes:
                q = self.decode_in(
                    x, w.input_norm, w.eps, w.qkv, cos, sin, self.heads, self.kv_heads, self.head_dim, k_cache, v_cache, rows, pos
                )
            else:
                q, k, v = self.decode_in(x, w.input_norm, w.eps, w.qkv, cos, sin, self.heads, self.kv_heads, self.head_dim)
                k_cache[rows, :, pos] = k
                v_cache[rows, :, pos] = v
            if self.attention == "flex":
                o = self.flex(
                    q[:, :, None, :],
                    k_cache,
                    v_cache,
                    block_mask=self.block_masks[n],
                    scale=self.scale,
                    enable_gqa=self.group > 1,
                )
            else:
                # Grouped-query attention without copying the cache: the query heads that share a KV head become that
                # head's queries ([slots, kv_heads, group, head_dim] against [slots, kv_heads, max_len, head_dim]).
                q = q.reshape(n, self.kv_heads, self.group, self.head_dim)
                o = torch.nn.functional.scaled_dot_product_attention(q, k_cache, v_cache, attn_mask=mask, scale=self.scale)
            x = self.decode_out(
                x, o.reshape(n, self.heads * self.head_dim), w.o, w.post_norm, w.eps, w.gate_up, w.down, w.act, self.intermediate
            )
        logits = self.model.lm_head(self.inner.norm(x))
        sampled = sample(logits, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)
        active = ~finished
        at = count.clamp(max=self.max_new - 1)
        self.out[rows, at] = torch.where(active, sampled, self.out[rows, at])
        count.add_(active.long())
        pos.add_(active.long())
        tokens.copy_(torch.where(active, sampled, tokens))
        finished.logical_or_(active & ((sampled == self.eos) | (count >= budget)))

    def shared_prefix(self, prompts: list[list[int]]) -> tuple:
        """The longest prefix all prompts share, leaving each at least one token of its own; () when it is shorter than
        `min_prefix` or the prompts are all the same (their samples share one prefill anyway)."""
        distinct = {tuple(p) for p in prompts}
        if len(distinct) < 2:
            return ()
        return self.common_prefix(list(distinct))

    def common_prefix(self, prompts: list[list[int]]) -> tuple:
        """The longest prefix of all `prompts` that leaves each at least one token of its own; () below `min_prefix`."""
        common = os.path.commonprefix([list(p) for p in prompts])[: min(map(len, prompts)) - 1]
        return tuple(common) if len(common) >= self.min_prefix else ()

    def set_prefix(self, prefix: tuple, slot: int = 0):
        """Compute the K and V of the shared prefix once (kept while later calls share the same prefix): prefilled as a
        prompt of its own into a free slot (slot 0 when a call starts), which a budget of one token leaves finished and
        free, and copied out of it."""
        if prefix == self.prefix:
            return
        self.prefix, self.prefix_kv = (), None
        if prefix:
            self.prefill([slot], [list(prefix)], [1])
            self.prefix = prefix
            self.prefix_kv = (self.k_cache[:, slot, :, : len(prefix)].clone(), self.v_cache[:, slot, :, : len(prefix)].clone())

    def prefill(self, slot_ids: list[int], prompts: list[list[int]], budgets: list[int]):
        """Run the prompts (right-padded, causal) into their slots' cache and sample each one's first token. Identical
        prompts (several samples of one chunk) run once; their cache rows are copied to every slot that asked. With a
        shared prefix set, only what follows it runs: its cached K and V are copied into the slots and attended to."""
        shared = len(self.prefix)
        unique: dict[tuple, int] = {}
        source = [unique.setdefault(tuple(p), len(unique)) for p in prompts]
        distinct = [p[shared:] for p in unique]
        n, width = len(distinct), max(len(p) for p in distinct)
        ids = torch.zeros((n, width), dtype=torch.long)
        for row, p in enumerate(distinct):
            ids[row, : len(p)] = torch.tensor(p, dtype=torch.long)
        ids = ids.to(self.device)
        lengths = torch.tensor([len(p) for p in distinct], dtype=torch.long, device=self.device)
        slots = torch.tensor(slot_ids, dtype=torch.long, device=self.device)
        rows = torch.tensor(source, dtype=torch.long, device=self.device)
        all_distinct = len(prompts) == n  # then the rows are the prompts, in order
        positions = shared + torch.arange(width, device=self.device)[None, :].expand(n, width)
        x = self.inner.embed_tokens(ids)
        cos, sin = self.inner.rotary_emb(x, positions)
        x, cos, sin = x.reshape(n * width, -1), cos.reshape(n * width, -1), sin.reshape(n * width, -1)
        if shared:
            prefix_k, prefix_v = self.prefix_kv
            self.k_cache[:, slots, :, :shared] = prefix_k[:, None]
            self.v_cache[:, slots, :, :shared] = prefix_v[:, None]
            # Each token sees the whole prefix and its own prompt up to itself: the queries are padded in front to the
            # prefix's length, so the attention stays plain causal (the fused kernels, grouped-query heads unexpanded),
            # and the padding rows' outputs are dropped.
            prefix_k, prefix_v = prefix_k.transpose(1, 2), prefix_v.transpose(1, 2)  # [layers, prefix, kv_heads, dim]
        for i, w in enumerate(self.prefill_weights):
            if shared:
                q, k, v = self.prefill_in_after_prefix(
                    x, w.input_norm, w.eps, w.qkv, cos, sin, self.heads, self.kv_heads, self.head_dim, prefix_k[i], prefix_v[i], n
                )
            else:
                q, k, v = self.prefill_in(x, w.input_norm, w.eps, w.qkv, cos, sin, self.heads, self.kv_heads, self.head_dim)
                q, k, v = (t.view(n, width, -1, self.head_dim) for t in (q, k, v))
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            # index_copy_ over the slots: 1.6x faster than an index_put at a prefill's shapes (slots_profile.py --cache-writes).
            own_k, own_v = (k[:, :, shared:], v[:, :, shared:]) if all_distinct else (k[rows, :, shared:], v[rows, :, shared:])
            self.k_cache[i][:, :, shared : shared + width].index_copy_(0, slots, own_k)
            self.v_cache[i][:, :, shared : shared + width].index_copy_(0, slots, own_v)
            # Padding sits after each prompt, so causal attention never lets a real token see it; the cache rows it
            # writes lie past the prompt and are overwritten by decoding before any step attends to them.
            o = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=True, scale=self.scale, enable_gqa=self.group > 1
            )
            if shared:
                o = o[:, :, shared:]
            x = self.prefill_out(
                x,
                o.transpose(1, 2).reshape(n * width, self.heads * self.head_dim),
                w.o,
                w.post_norm,
                w.eps,
                w.gate_up,
                w.down,
                w.act,
                self.intermediate,
            )
        x = x.view(n, width, -1)
        last = x[torch.arange(n, device=self.device), lengths - 1]
        # Each sample draws its own first token.
        first = sample(
            self.model.lm_head(self.inner.norm(last))[rows], temperature=self.temperature, top_k=self.top_k, top_p=self.top_p
        )
        budget = torch.tensor(budgets, dtype=torch.long, device=self.device)
        self.tokens[slots] = first
        self.pos[slots] = shared + lengths[rows]
        self.count[slots] = 1
        self.budget[slots] = budget
        self.out[slots, 0] = first
        self.finished[slots] = (first == self.eos) | (budget <= 1)

    def _capture(self, n: int):
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        state = (self.tokens, self.pos, self.count, self.finished, self.out)
        saved = [t.clone() for t in state]
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm-up outside the graph (compilation, allocator, kernel selection)
                self._decode_step(n)
        torch.cuda.current_stream().wait_stream(stream)
        if self.graph_pool is None:
            self.graph_pool = torch.cuda.graph_pool_handle()  # one memory pool: the graphs never run at once
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.graph_pool):
            self._decode_step(n)
        for t, s in zip(state, saved):
            t.copy_(s)
        self.graphs[n] = graph

    def step(self, n: int):
        """One token for each of the first n slots: on a GPU, the step's CUDA graph for n slots replayed."""
        if self.use_graph:
            if n not in self.graphs:
                self._capture(n)
            self.graphs[n].replay()
        else:
            self._decode_step(n)

    def clear(self):
        """Every slot empty (a decoder is reused between calls)."""
        self.finished.fill_(True)

    def move(self, source: int, target: int):
        """Move a running sequence to another slot: its cache rows and its state."""
        self.k_cache[:, target].copy_(self.k_cache[:, source])
        self.v_cache[:, target].copy_(self.v_cache[:, source])
        for t in (self.tokens, self.pos, self.count, self.budget, self.finished, self.out):
            t[target] = t[source]
        self.finished[source] = True
