"""The `slots` backend: a fixed set of sequence slots over one preallocated KV cache, refilled as sequences finish.

Plain `generate` keeps a finished row in the batch until the longest row ends, grows its cache by concatenation at
every step, and pays Python and kernel-launch overhead per layer per step. Here:
- the KV cache is allocated once, `[layers, slots, kv_heads, max_len, head_dim]`; a slot holds one sequence from
  position 0, so prompts need no padding in the cache and every slot has its own position;
- one decode step (embedding, every layer, the head, sampling and the bookkeeping of positions, budgets and eos) runs
  on fixed buffers, so on a GPU it is captured once in a CUDA graph and replayed;
- every few steps the host looks at which slots finished, collects their tokens and refills those slots with the next
  prompts (length-sorted prefills of several prompts at once), so a short answer frees its slot for new work; once no
  prompt waits, the running sequences move into the lower half of the slots whenever they fit there and the step runs
  on that half (one graph per size), so a job's tail stops paying for empty slots;
- each layer's arithmetic is written out below on the model's own weights (the same operations as transformers' Llama
  modules), so `torch.compile` can fuse the elementwise work around the matmuls, and the matmuls can optionally run in
  FP8 (`fp8="prefill"` or `"all"`).

The model's embedding, rotary embedding, final norm and head modules are called as they are. It applies to Llama-shaped
models (the ko-genstruct base is Llama-3); other architectures use the `batched` backend.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

FP8_MODES = ("off", "prefill", "all")
FP8_MAX = 448.0  # largest finite float8_e4m3fn


# -- one transformer layer, on flat [tokens, hidden] activations ---------------------------------------------------------
# Written out (the same arithmetic as transformers' Llama modules) so that the elementwise work around the matmuls (norms,
# rotary embedding, activation, residual adds, FP8 scaling) can be fused by `torch.compile`; the cache writes and the
# attention kernel stay outside, between the two halves.

@dataclass(frozen=True)
class Linear:
    """A projection: bf16/fp32 weight `[out, in]`, or an FP8 weight `[in, out]` (column-major) with per-output scales."""
    weight: object
    bias: object = None
    scale: object = None


def rms_norm(x, weight, eps: float):
    import torch

    dtype = x.dtype
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(dtype)


def linear(x, w: Linear):
    import torch

    if w.scale is None:
        return torch.nn.functional.linear(x, w.weight, w.bias)
    # FP8 with a scale per token (row of x) and per output channel, as in vLLM's and torchao's dynamic FP8.
    xs = x.abs().amax(-1, keepdim=True).float().clamp(min=1e-12) / FP8_MAX
    out = torch._scaled_mm((x.float() / xs).to(torch.float8_e4m3fn), w.weight, scale_a=xs, scale_b=w.scale, out_dtype=x.dtype)
    return out if w.bias is None else out + w.bias


def project(x, parts: tuple, sizes: tuple):
    """Several projections of one input: one fused matmul split apart, or one matmul each."""
    if len(parts) == 1:
        return linear(x, parts[0]).split(sizes, dim=-1)
    return tuple(linear(x, w) for w in parts)


def attention_inputs(x, norm, eps: float, qkv: tuple, cos, sin, heads: int, kv_heads: int, head_dim: int):
    """x [tokens, hidden] -> q [tokens, heads, head_dim], k and v [tokens, kv_heads, head_dim], rotary applied."""
    from transformers.models.llama.modeling_llama import rotate_half

    h = rms_norm(x, norm, eps)
    q, k, v = project(h, qkv, (heads * head_dim, kv_heads * head_dim, kv_heads * head_dim))
    q = q.reshape(-1, heads, head_dim)
    k = k.reshape(-1, kv_heads, head_dim)
    v = v.reshape(-1, kv_heads, head_dim)
    cos, sin = cos[:, None, :], sin[:, None, :]
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin, v


def attention_inputs_into_cache(x, norm, eps: float, qkv: tuple, cos, sin, heads: int, kv_heads: int, head_dim: int,
                                k_cache, v_cache, rows, pos):
    """`attention_inputs` for one token per slot that also writes each slot's K and V into its cache row at its position
    (`k_cache`, `v_cache`: [slots, kv_heads, max_len, head_dim]) and returns the queries. Compiled, the writes are stored
    by the kernel that applies the rotary embedding instead of two more kernels per layer."""
    q, k, v = attention_inputs(x, norm, eps, qkv, cos, sin, heads, kv_heads, head_dim)
    k_cache[rows, :, pos] = k
    v_cache[rows, :, pos] = v
    return q


def attention_output_and_mlp(x, o, o_proj: Linear, norm, eps: float, gate_up: tuple, down: Linear, act, intermediate: int):
    """The rest of the layer: output projection and residual, then the gated MLP and residual."""
    x = x + linear(o, o_proj)
    gate, up = project(rms_norm(x, norm, eps), gate_up, (intermediate, intermediate))
    return x + linear(act(gate) * up, down)


def _prefill_attention_inputs(*args):  # separate code objects: the prefill's shapes vary, the decode step's do not
    return attention_inputs(*args)


def _prefill_attention_inputs_after_prefix(x, norm, eps: float, qkv: tuple, cos, sin, heads: int, kv_heads: int, head_dim: int,
                                           prefix_k, prefix_v, n: int):
    """`attention_inputs` for n prompts that follow a shared prefix, as [prompt, prefix + token, head, head_dim]: the
    queries padded in front with zeros to the prefix's length, the keys and values with the prefix's own (`prefix_k`,
    `prefix_v`: [prefix, kv_heads, head_dim]) in front. Compiled, the rotary embedding writes straight into them."""
    import torch

    q, k, v = attention_inputs(x, norm, eps, qkv, cos, sin, heads, kv_heads, head_dim)
    shared = prefix_k.shape[0]
    q = torch.cat([q.new_zeros((n, shared, heads, head_dim)), q.view(n, -1, heads, head_dim)], dim=1)
    k = torch.cat([prefix_k.expand(n, -1, -1, -1), k.view(n, -1, kv_heads, head_dim)], dim=1)
    v = torch.cat([prefix_v.expand(n, -1, -1, -1), v.view(n, -1, kv_heads, head_dim)], dim=1)
    return q, k, v


def _prefill_attention_output_and_mlp(*args):
    return attention_output_and_mlp(*args)


@dataclass(frozen=True)
class LayerWeights:
    input_norm: object
    post_norm: object
    eps: float
    qkv: tuple
    o: Linear
    gate_up: tuple
    down: Linear
    act: object
    intermediate: int


def fp8_mode(value: str) -> str:
    if value not in FP8_MODES:
        raise ValueError(f"unknown fp8 mode {value!r}; choose one of {', '.join(FP8_MODES)}")
    return value


def check_fp8_device(device) -> None:
    """FP8 matmuls need a GPU of compute capability 8.9 or more (Ada, Hopper: the H100 and H200); CPUs run them too."""
    import torch

    if device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        if capability < (8, 9):
            raise ValueError(f"GENERATION_FP8 needs a GPU with FP8 matmuls (compute capability 8.9 or more, such as the "
                             f"H100); {torch.cuda.get_device_name(device)} has {capability[0]}.{capability[1]}. "
                             f"Set GENERATION_FP8=off.")


def _allow_recompiles():
    """One compiled kernel per shape (slots, cache length, prefill group); a worker sees more than the default 8."""
    import torch._dynamo

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(64, getattr(torch._dynamo.config, name)))


class Compiled:
    """`torch.compile(fn)`, falling back to `fn` itself (with a warning, for good) when compiling fails, e.g. on a GPU
    host without the C compiler Triton needs: generation goes on, slower, instead of failing every batch."""

    def __init__(self, fn, **options):
        import torch
        import torch._dynamo.exc
        import torch._inductor.exc

        self.fn, self.compiled, self.failed = fn, torch.compile(fn, **options), False
        self.errors = (torch._dynamo.exc.TorchDynamoException,
                       getattr(torch._inductor.exc, "InductorError", torch._dynamo.exc.TorchDynamoException))

    def __call__(self, *args, **kwargs):
        if not self.failed:
            try:
                return self.compiled(*args, **kwargs)
            except self.errors as exc:
                self.failed = True
                log.warning("torch.compile of %s failed; running it uncompiled: %s", getattr(self.fn, "__name__", self.fn), str(exc)[:500])
        return self.fn(*args, **kwargs)


def _module_linear(module) -> Linear:
    return Linear(module.weight, module.bias)


def _fp8_linear(*modules) -> Linear:
    """Quantize one or more projections of the same input (concatenated along the output) to FP8, a scale per output."""
    import torch

    with torch.no_grad():  # no autograd graph keeping float copies of every weight alive
        weight = torch.cat([m.weight for m in modules], dim=0) if len(modules) > 1 else modules[0].weight
        biases = [m.bias for m in modules]
        bias = torch.cat(biases) if all(b is not None for b in biases) else None
        scale = weight.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12) / FP8_MAX
        quantized = (weight.float() / scale).to(torch.float8_e4m3fn)
    return Linear(quantized.t(), bias, scale.t().contiguous())


def _fused_linear(*modules) -> Linear | None:
    """Projections of one input as one matmul: their weights concatenated into one tensor, and each module's weight made
    a view of its rows there (the separate tensors are freed), so the model is unchanged and the fused copy costs no
    memory. A decode step's K and V projections alone (1,024 outputs at 256 rows) would leave most of a GPU idle."""
    import torch

    weights = [m.weight for m in modules]
    if len({(w.dtype, w.device, w.shape[1:]) for w in weights}) > 1:
        return None
    biases = [m.bias for m in modules]
    if any(b is not None for b in biases) and not all(b is not None for b in biases):
        return None
    with torch.no_grad():
        weight = torch.cat(weights, dim=0)
        bias = torch.cat(biases) if biases[0] is not None else None
        start = 0
        for m, w in zip(modules, weights):
            rows = slice(start, start + w.shape[0])
            m.weight = torch.nn.Parameter(weight[rows], requires_grad=False)
            if bias is not None:
                m.bias = torch.nn.Parameter(bias[rows], requires_grad=False)
            start += w.shape[0]
    return Linear(weight, bias)


def _fused_or_apart(owner, name: str, *modules) -> tuple:
    """One fused projection of `modules` (kept on `owner` as `name`, reused by later decoders while the modules' weights
    are still its views), else one projection each (weights of different dtypes, devices or input sizes, or biases on
    some only)."""
    fused = getattr(owner, name, None)
    if fused is not None and all(m.weight.untyped_storage().data_ptr() == fused.weight.untyped_storage().data_ptr() for m in modules):
        return (fused,)
    fused = _fused_linear(*modules)
    if fused is None:
        return tuple(_module_linear(m) for m in modules)
    setattr(owner, name, fused)
    return (fused,)


def layer_weights(layer, fp8: bool, fuse: bool = True) -> LayerWeights:
    attn, mlp = layer.self_attn, layer.mlp
    if fp8:
        qkv = (_fp8_linear(attn.q_proj, attn.k_proj, attn.v_proj),)
        o, gate_up, down = _fp8_linear(attn.o_proj), (_fp8_linear(mlp.gate_proj, mlp.up_proj),), _fp8_linear(mlp.down_proj)
    elif fuse:
        qkv = _fused_or_apart(attn, "_slots_qkv", attn.q_proj, attn.k_proj, attn.v_proj)
        o, gate_up, down = _module_linear(attn.o_proj), _fused_or_apart(mlp, "_slots_gate_up", mlp.gate_proj, mlp.up_proj), _module_linear(mlp.down_proj)
    else:
        qkv = tuple(_module_linear(m) for m in (attn.q_proj, attn.k_proj, attn.v_proj))
        o, gate_up, down = _module_linear(attn.o_proj), (_module_linear(mlp.gate_proj), _module_linear(mlp.up_proj)), _module_linear(mlp.down_proj)
    return LayerWeights(layer.input_layernorm.weight, layer.post_attention_layernorm.weight, layer.input_layernorm.variance_epsilon,
                        qkv, o, gate_up, down, mlp.act_fn, mlp.gate_proj.out_features)


def supports(model) -> bool:
    """Llama-shaped: `model.model.layers[i].self_attn.{q,k,v,o}_proj`, norms, MLP, a rotary embedding and a head."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if inner is None or not layers or not hasattr(model, "lm_head") or not hasattr(inner, "rotary_emb"):
        return False
    attn = getattr(layers[0], "self_attn", None)
    return all(hasattr(attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")) and hasattr(layers[0], "mlp")


@dataclass
class Finished:
    index: int
    tokens: list[int]
    duration_ms: int


class SlotDecoder:
    """Generates for a list of prompts with per-prompt budgets; `run` yields each prompt's tokens as it finishes."""

    def __init__(self, model, *, slots: int, max_len: int, max_new_tokens: int, eos: int, temperature: float,
                 top_p: float, use_graph: bool, top_k: int = 0, attention: str = "auto", prefill_tokens: int = 16_384,
                 check_every: int = 4, compile: bool | None = None, fp8: str = "off", min_slots: int = 16,
                 min_prefix: int = 16, fuse: bool = True, refill_at: int | None = None, fuse_writes: bool = True,
                 kv_block: int = 32):
        import torch

        self.torch = torch
        self.model = model
        self.inner = model.model
        self.layers = list(self.inner.layers)
        config = model.config
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.group = self.heads // self.kv_heads
        self.scale = self.head_dim ** -0.5
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
        self.prefill_tokens, self.check_every = prefill_tokens, check_every
        self.refill_at = refill_at or max(1, slots // 16)  # free slots that trigger a refill (prefill) while others run
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
        torch = self.torch
        from torch.nn.attention.flex_attention import BlockMask, flex_attention

        _allow_recompiles()
        self.flex = Compiled(flex_attention, dynamic=False, fullgraph=True)
        blocks = self.max_len // self.kv_block
        self.kv_blocks = torch.ones((self.slots, 1, 1), dtype=torch.int32, device=self.device)
        self.kv_indices = torch.arange(blocks, dtype=torch.int32, device=self.device).expand(self.slots, 1, 1, blocks).contiguous()
        pos = self.pos

        def visible(b, h, q_idx, kv_idx):
            return kv_idx <= pos[b]

        # One block mask per decode size, over the first n slots' rows of the same tensors.
        self.block_masks = {
            n: BlockMask.from_kv_blocks(self.kv_blocks[:n], self.kv_indices[:n], BLOCK_SIZE=self.kv_block, mask_mod=visible,
                                        seq_lengths=(1, self.max_len), compute_q_blocks=False)
            for n in self.sizes
        }

    # -- the model, on the slot cache -----------------------------------------------------------------------------------
    def _sample(self, logits):
        """Temperature, then top-k, then top-p, as transformers' `generate` applies them, then one draw per row."""
        torch = self.torch
        if self.temperature <= 0:
            return logits.argmax(-1)
        indices = None
        if 0 < self.top_k < logits.shape[-1]:
            # The k likeliest, sorted: softmax over k, not the vocabulary. Taken on the logits as they come (bf16 on a
            # GPU): widening to fp32 is exact and dividing by the temperature keeps the order, so the k are the same, and
            # only k values per row are widened instead of the whole vocabulary.
            logits, indices = logits.topk(self.top_k, dim=-1)
        scores = logits.float() / self.temperature
        probs = torch.softmax(scores, dim=-1)
        if self.top_p < 1.0:
            if indices is None:
                probs, indices = probs.sort(dim=-1, descending=True)
            # Keep the likeliest tokens until their mass reaches top_p (the first always), as TopPLogitsWarper does.
            probs = probs.masked_fill(probs.cumsum(-1) - probs >= self.top_p, 0.0)
        # Sampling as a race of exponential clocks: argmax(p / E), E ~ Exp(1), draws index i with probability p_i;
        # unlike torch.multinomial it needs no host synchronisation, so it can live inside the CUDA graph.
        choice = (probs / torch.empty_like(probs).exponential_().clamp_(min=1e-20)).argmax(-1)
        return choice if indices is None else indices.gather(-1, choice[:, None])[:, 0]

    def _decode_step(self, n: int):
        """One token for each of the first n slots. Reads and writes only the fixed buffers (graph-capturable)."""
        torch = self.torch
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
                q = self.decode_in(x, w.input_norm, w.eps, w.qkv, cos, sin, self.heads, self.kv_heads, self.head_dim,
                                   k_cache, v_cache, rows, pos)
            else:
                q, k, v = self.decode_in(x, w.input_norm, w.eps, w.qkv, cos, sin, self.heads, self.kv_heads, self.head_dim)
                k_cache[rows, :, pos] = k
                v_cache[rows, :, pos] = v
            if self.attention == "flex":
                o = self.flex(q[:, :, None, :], k_cache, v_cache, block_mask=self.block_masks[n], scale=self.scale,
                              enable_gqa=self.group > 1)
            else:
                # Grouped-query attention without copying the cache: the query heads that share a KV head become that
                # head's queries ([slots, kv_heads, group, head_dim] against [slots, kv_heads, max_len, head_dim]).
                q = q.reshape(n, self.kv_heads, self.group, self.head_dim)
                o = torch.nn.functional.scaled_dot_product_attention(q, k_cache, v_cache, attn_mask=mask, scale=self.scale)
            x = self.decode_out(x, o.reshape(n, self.heads * self.head_dim), w.o, w.post_norm, w.eps, w.gate_up, w.down, w.act,
                                self.intermediate)
        logits = self.model.lm_head(self.inner.norm(x))
        sampled = self._sample(logits)
        active = ~finished
        at = count.clamp(max=self.max_new - 1)
        self.out[rows, at] = torch.where(active, sampled, self.out[rows, at])
        count.add_(active.long())
        pos.add_(active.long())
        tokens.copy_(torch.where(active, sampled, tokens))
        finished.logical_or_(active & ((sampled == self.eos) | (count >= budget)))

    def _shared_prefix(self, prompts: list[list[int]]) -> tuple:
        """The longest prefix all prompts share, leaving each at least one token of its own; () when it is shorter than
        `min_prefix` or the prompts are all the same (their samples share one prefill anyway)."""
        import os.path

        distinct = {tuple(p) for p in prompts}
        if len(distinct) < 2:
            return ()
        common = os.path.commonprefix(list(distinct))[: min(map(len, distinct)) - 1]
        return tuple(common) if len(common) >= self.min_prefix else ()

    def _set_prefix(self, prefix: tuple):
        """Compute the K and V of the shared prefix once (kept while later calls share the same prefix): prefilled as a
        prompt of its own into slot 0, empty when a call starts (a budget of one token leaves it finished), whose cache
        rows are kept."""
        if prefix == self.prefix:
            return
        self.prefix, self.prefix_kv = (), None
        if prefix:
            self._prefill([0], [list(prefix)], [1])
            self.prefix = prefix
            self.prefix_kv = (self.k_cache[:, 0, :, : len(prefix)].clone(), self.v_cache[:, 0, :, : len(prefix)].clone())

    def _prefill(self, slot_ids: list[int], prompts: list[list[int]], budgets: list[int]):
        """Run the prompts (right-padded, causal) into their slots' cache and sample each one's first token. Identical
        prompts (several samples of one chunk) run once; their cache rows are copied to every slot that asked. With a
        shared prefix set, only what follows it runs: its cached K and V are copied into the slots and attended to."""
        torch = self.torch
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
                q, k, v = self.prefill_in_after_prefix(x, w.input_norm, w.eps, w.qkv, cos, sin, self.heads, self.kv_heads,
                                                       self.head_dim, prefix_k[i], prefix_v[i], n)
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
            o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale, enable_gqa=self.group > 1)
            if shared:
                o = o[:, :, shared:]
            x = self.prefill_out(x, o.transpose(1, 2).reshape(n * width, self.heads * self.head_dim), w.o, w.post_norm, w.eps,
                                 w.gate_up, w.down, w.act, self.intermediate)
        x = x.view(n, width, -1)
        last = x[torch.arange(n, device=self.device), lengths - 1]
        first = self._sample(self.model.lm_head(self.inner.norm(last))[rows])  # each sample draws its own first token
        budget = torch.tensor(budgets, dtype=torch.long, device=self.device)
        self.tokens[slots] = first
        self.pos[slots] = shared + lengths[rows]
        self.count[slots] = 1
        self.budget[slots] = budget
        self.out[slots, 0] = first
        self.finished[slots] = (first == self.eos) | (budget <= 1)

    def _capture(self, n: int):
        torch = self.torch
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

    def _step(self, n: int):
        if self.use_graph:
            if n not in self.graphs:
                self._capture(n)
            self.graphs[n].replay()
        else:
            self._decode_step(n)

    def _move(self, source: int, target: int):
        """Move a running sequence to another slot: its cache rows and its state."""
        self.k_cache[:, target].copy_(self.k_cache[:, source])
        self.v_cache[:, target].copy_(self.v_cache[:, source])
        for t in (self.tokens, self.pos, self.count, self.budget, self.finished, self.out):
            t[target] = t[source]
        self.finished[source] = True

    def _compact(self, n: int, occupant: list, started: list) -> int:
        """With no prompt waiting: while the running sequences fit in the lower half of the first n slots, move them
        there and halve n. Returns the new n."""
        while n > self.sizes[-1]:
            half = n // 2
            running = [s for s in range(n) if occupant[s] is not None]
            if len(running) > half:
                break
            holes = iter(s for s in range(half) if occupant[s] is None)
            for source in (s for s in running if s >= half):
                target = next(holes)
                self._move(source, target)
                occupant[target], started[target], occupant[source] = occupant[source], started[source], None
            n = half
        return n

    # -- scheduling -----------------------------------------------------------------------------------------------------
    def run(self, prompts: list[list[int]], budgets: list[int]):
        """Yield a `Finished` for every prompt, in the order they finish."""
        torch = self.torch
        # Longest first, so similar lengths prefill together; samples of one prompt stay adjacent (one prefill).
        first_seen: dict[tuple, int] = {}
        group_of = [first_seen.setdefault(tuple(p), i) for i, p in enumerate(prompts)]
        queue = sorted(range(len(prompts)), key=lambda i: (-len(prompts[i]), group_of[i]))
        occupant: list[int | None] = [None] * self.slots
        started: list[float] = [0.0] * self.slots
        free = list(range(self.slots))
        n = self.slots
        self.finished.fill_(True)  # every slot empty (a decoder is reused between calls)
        with torch.inference_mode():
            self._set_prefix(self._shared_prefix(prompts))
            while queue or len(free) < self.slots:
                # Refill free slots once enough are free to make a prefill worth it (or nothing else is running).
                if queue and free and (len(free) >= self.refill_at or len(free) == self.slots or len(queue) <= len(free)):
                    while queue and free:
                        group_slots, group = [], []
                        width = len(prompts[queue[0]]) - len(self.prefix)  # the tokens a prefill runs per prompt
                        distinct: set[int] = set()
                        while queue and free and (len(distinct | {group_of[queue[0]]})) * width <= max(self.prefill_tokens, width):
                            index = queue.pop(0)
                            slot = free.pop(0)
                            group.append(index)
                            distinct.add(group_of[index])
                            group_slots.append(slot)
                            occupant[slot] = index
                            started[slot] = time.perf_counter()
                        self._prefill(group_slots, [list(prompts[i]) for i in group], [budgets[i] for i in group])
                for _ in range(self.check_every):
                    self._step(n)
                done = self.finished.tolist()
                newly = [s for s in range(self.slots) if occupant[s] is not None and done[s]]
                if not newly:
                    continue
                counts = self.count.tolist()
                out = self.out[newly].tolist()
                now = time.perf_counter()
                for row, slot in zip(out, newly):
                    yield Finished(occupant[slot], row[: counts[slot]], int((now - started[slot]) * 1000))
                    occupant[slot] = None
                    free.append(slot)
                if not queue:
                    n = self._compact(n, occupant, started)
                    free = [s for s in range(self.slots) if occupant[s] is None]
                free.sort()
