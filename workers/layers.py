"""One Llama layer's arithmetic on the model's own weights: fused projections, FP8 matmuls (`fp8="prefill"` or `"all"`)
and `torch.compile` with an uncompiled fallback. `workers/decoder.py` runs these functions on its slot cache."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from transformers.models.llama.modeling_llama import rotate_half

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
    dtype = x.dtype
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(dtype)


def linear(x, w: Linear):
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
    h = rms_norm(x, norm, eps)
    q, k, v = project(h, qkv, (heads * head_dim, kv_heads * head_dim, kv_heads * head_dim))
    q = q.reshape(-1, heads, head_dim)
    k = k.reshape(-1, kv_heads, head_dim)
    v = v.reshape(-1, kv_heads, head_dim)
    cos, sin = cos[:, None, :], sin[:, None, :]
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin, v


def attention_inputs_into_cache(
    x, norm, eps: float, qkv: tuple, cos, sin, heads: int, kv_heads: int, head_dim: int, k_cache, v_cache, rows, pos
):
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


def _prefill_attention_inputs_after_prefix(
    x, norm, eps: float, qkv: tuple, cos, sin, heads: int, kv_heads: int, head_dim: int, prefix_k, prefix_v, n: int
):
    """`attention_inputs` for n prompts that follow a shared prefix, as [prompt, prefix + token, head, head_dim]: the
    queries padded in front with zeros to the prefix's length, the keys and values with the prefix's own (`prefix_k`,
    `prefix_v`: [prefix, kv_heads, head_dim]) in front. Compiled, the rotary embedding writes straight into them."""
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
    if device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        if capability < (8, 9):
            raise ValueError(
                f"GENERATION_FP8 needs a GPU with FP8 matmuls (compute capability 8.9 or more, such as the "
                f"H100); {torch.cuda.get_device_name(device)} has {capability[0]}.{capability[1]}. "
                f"Set GENERATION_FP8=off."
            )


def _allow_recompiles():
    """One compiled kernel per shape (slots, cache length, prefill group); a worker sees more than the default 8."""
    import torch._dynamo  # seconds to import; only a compiling decoder needs it

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(64, getattr(torch._dynamo.config, name)))


class Compiled:
    """`torch.compile(fn)`, falling back to `fn` itself (with a warning, for good) when compiling fails, e.g. on a GPU
    host without the C compiler Triton needs: generation goes on, slower, instead of failing every batch."""

    def __init__(self, fn, **options):
        import torch._dynamo.exc  # seconds to import; only a compiling decoder needs it
        import torch._inductor.exc

        self.fn, self.compiled, self.failed = fn, torch.compile(fn, **options), False
        self.errors = (
            torch._dynamo.exc.TorchDynamoException,
            getattr(torch._inductor.exc, "InductorError", torch._dynamo.exc.TorchDynamoException),
        )

    def __call__(self, *args, **kwargs):
        if not self.failed:
            try:
                return self.compiled(*args, **kwargs)
            except self.errors as exc:
                self.failed = True
                log.warning(
                    "torch.compile of %s failed; running it uncompiled: %s", getattr(self.fn, "__name__", self.fn), str(exc)[:500]
                )
        return self.fn(*args, **kwargs)


def _module_linear(module) -> Linear:
    return Linear(module.weight, module.bias)


def _fp8_linear(*modules) -> Linear:
    """Quantize one or more projections of the same input (concatenated along the output) to FP8, a scale per output."""
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
    if fused is not None and all(
        m.weight.untyped_storage().data_ptr() == fused.weight.untyped_storage().data_ptr() for m in modules
    ):
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
        o, gate_up, down = (
            _module_linear(attn.o_proj),
            _fused_or_apart(mlp, "_slots_gate_up", mlp.gate_proj, mlp.up_proj),
            _module_linear(mlp.down_proj),
        )
    else:
        qkv = tuple(_module_linear(m) for m in (attn.q_proj, attn.k_proj, attn.v_proj))
        o, gate_up, down = (
            _module_linear(attn.o_proj),
            (_module_linear(mlp.gate_proj), _module_linear(mlp.up_proj)),
            _module_linear(mlp.down_proj),
        )
    return LayerWeights(
        layer.input_layernorm.weight,
        layer.post_attention_layernorm.weight,
        layer.input_layernorm.variance_epsilon,
        qkv,
        o,
        gate_up,
        down,
        mlp.act_fn,
        mlp.gate_proj.out_features,
    )


def supports(model) -> bool:
    """Llama-shaped: `model.model.layers[i].self_attn.{q,k,v,o}_proj`, norms, MLP, a rotary embedding and a head."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if inner is None or not layers or not hasattr(model, "lm_head") or not hasattr(inner, "rotary_emb"):
        return False
    attn = getattr(layers[0], "self_attn", None)
    return all(hasattr(attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")) and hasattr(layers[0], "mlp")
