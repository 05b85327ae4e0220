"""Where the `slots` backend spends its time on one GPU: one prefill group and one decode step, timed apart.

A random-weight model of Llama-3-8B's shape (bf16), ~600-token prompts. Prints the prefill rate (prompt tokens/s and
TFLOP/s), the decode step time at full slots (graph replay), its bandwidth share, and the attention kernel alone.

    python benchmarks/slots_profile.py [--slots 256] [--small]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(fn, repeat, sync):
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync()
    return (time.perf_counter() - start) / repeat


def overlap(decoder, steps: int, ids: list[int], prompts: list, max_new: int, n: int, sync, variant: str, rounds: int = 8):
    """Could the decode's memory-bound attention hide under a prefill's compute-bound matmuls? A prefill and `steps`
    decode steps: one after the other; on two streams at once (the steps launched first); and on two streams with the
    decode's stream at high priority. Timing only: the two share slot state, so the tokens are not meaningful."""
    import torch

    side, other, high = torch.cuda.Stream(), torch.cuda.Stream(), torch.cuda.Stream(priority=-1)
    budgets = [max_new] * len(ids)
    # Every round starts from the same state: all slots running from their prompts (none finishes within the round),
    # so each decode step reads the whole cache in flight, as in a run.
    state = (decoder.tokens, decoder.pos, decoder.count, decoder.budget, decoder.finished)
    decoder.count.fill_(1)
    decoder.finished.fill_(False)
    saved = [t.clone() for t in state]

    def restore():
        for t, s in zip(state, saved):
            t.copy_(s)

    def steps_alone():
        restore()
        for _ in range(steps):
            decoder.step(n)

    def sequential():
        steps_alone()
        decoder.prefill(ids, prompts, budgets)

    def together(decode_stream):
        def run():
            main = torch.cuda.current_stream()
            for s in (decode_stream, side):
                s.wait_stream(main)
            with torch.cuda.stream(decode_stream):
                steps_alone()
            with torch.cuda.stream(side):
                decoder.prefill(ids, prompts, budgets)
            for s in (decode_stream, side):
                main.wait_stream(s)

        return run

    prefill = timed(lambda: decoder.prefill(ids, prompts, budgets), rounds, sync)
    alone = timed(steps_alone, rounds, sync)
    figures = {
        name: timed(fn, rounds, sync)
        for name, fn in [
            ("one after the other", sequential),
            ("two streams", together(other)),
            ("two streams, decode at high priority", together(high)),
        ]
    }
    print(
        f"[{variant}] overlap, {rounds} rounds: prefill alone {prefill * 1000:.0f} ms, {steps} decode steps alone "
        f"{alone * 1000:.0f} ms; "
        + "; ".join(f"{k} {v * 1000:.0f} ms" for k, v in figures.items())
        + f"; saved by two streams: {(figures['one after the other'] - min(figures['two streams'], figures['two streams, decode at high priority'])) * 1000:.0f} ms",
        flush=True,
    )


def cache_writes(decoder, n: int, width: int, sync):
    """One prefill group's keys ([n, width, kv_heads, head_dim] from the projection) into one layer's cache
    ([slots, kv_heads, max_len, head_dim]) at scattered slots: as the prefill writes them, and other ways."""
    import torch

    cache = decoder.k_cache[0]
    k = torch.randn(n, width, decoder.kv_heads, decoder.head_dim, device=cache.device, dtype=cache.dtype)
    slots = torch.randperm(cache.shape[0], device=cache.device)[:n]
    rows = torch.arange(n, device=cache.device)
    kt = k.transpose(1, 2)

    def index_put():
        cache[slots, :, :width] = kt[rows]

    def index_put_no_gather():
        cache[slots, :, :width] = kt

    def index_copy():
        cache[:, :, :width].index_copy_(0, slots, kt)

    def per_slot():
        for i, s in enumerate(slots.tolist()):
            cache[s, :, :width].copy_(kt[i])

    written = k.numel() * k.element_size()
    for name, fn in [
        ("index_put with the rows gathered (as now)", index_put),
        ("index_put", index_put_no_gather),
        ("index_copy_", index_copy),
        ("a copy per slot", per_slot),
    ]:
        t = timed(fn, 20, sync)
        print(
            f"cache write, {n} prompts x {width} tokens, one layer's keys: {name}: {t * 1e6:.0f} us = "
            f"{2 * written / t / 1e9:.0f} GB/s read and written",
            flush=True,
        )
    expected = cache[slots, :, :width].clone()
    cache.zero_()
    index_copy()
    print(
        f"cache write: index_copy_ writes the same as index_put: {bool(torch.equal(cache[slots, :, :width], expected))}",
        flush=True,
    )


def matmuls(model, config, n: int, device, dtype, sync, autotune: bool):
    """A decode step's matmuls at n rows, each alone: as the step runs them (`F.linear`), as a split-K batched matmul
    (the input's columns in 2 or 4 parts, one launch, the parts summed), and, with `autotune`, as torch.compile's
    max-autotune picks. TFLOP/s of each against the 8192^3 rate."""
    import torch

    a = torch.randn(8192, 8192, device=device, dtype=dtype)
    peak = 2 * 8192**3 / timed(lambda a=a: a @ a, 20, sync)
    del a
    h, i, kv = (
        config.hidden_size,
        config.intermediate_size,
        config.num_key_value_heads * (config.hidden_size // config.num_attention_heads),
    )
    shapes = [("qkv", h, h + 2 * kv), ("o", h, h), ("gate_up", h, 2 * i), ("down", i, h), ("head", h, config.vocab_size)]
    print(f"matmuls at {n} rows; bf16 8192^3: {peak / 1e12:.0f} TFLOP/s", flush=True)
    total = {}
    for name, k, out in shapes:
        w = torch.randn(out, k, device=device, dtype=dtype) / k**0.5
        x = torch.randn(n, k, device=device, dtype=dtype)
        flop = 2 * n * k * out
        variants = [("F.linear", lambda x=x, w=w: torch.nn.functional.linear(x, w))]
        for parts in (2, 4):
            xs = x.view(n, parts, k // parts).transpose(0, 1)  # [parts, n, k/parts]
            ws = w.view(out, parts, k // parts).permute(1, 2, 0)  # [parts, k/parts, out]
            variants.append((f"split-K {parts}", lambda xs=xs, ws=ws: torch.bmm(xs, ws).sum(0)))
        if autotune:
            compiled = torch.compile(
                lambda x, w: torch.nn.functional.linear(x, w), mode="max-autotune-no-cudagraphs", dynamic=False
            )
            variants.append(("max-autotune", lambda c=compiled, x=x, w=w: c(x, w)))
        line = []
        for label, fn in variants:
            try:
                t = timed(fn, 50, sync)
            except Exception as exc:  # report and go on
                line.append(f"{label}: {type(exc).__name__}")
                continue
            total.setdefault(label, 0.0)
            total[label] += t * (1 if name == "head" else config.num_hidden_layers)
            line.append(f"{label} {t * 1e6:.0f} us ({flop / t / peak * 100:.0f}%)")
        print(f"  {name} [{n} x {k}] x [{k} x {out}]: " + "; ".join(line), flush=True)
        del w, x
    print(
        f"  per step ({config.num_hidden_layers} layers and the head): "
        + "; ".join(f"{k} {v * 1000:.2f} ms" for k, v in total.items()),
        flush=True,
    )


def sampling(decoder, logits, sync):
    """Sampling as the step does it, and with top-k taken on the logits as they come (bf16) before scaling."""
    import torch

    from workers.sampling import sample

    def float_first():  # the earlier order: every logit to fp32 and scaled, then top-k
        scores = logits.float() / decoder.temperature
        scores, indices = scores.topk(decoder.top_k, dim=-1)
        probs = torch.softmax(scores, dim=-1)
        choice = (probs / torch.empty_like(probs).exponential_().clamp_(min=1e-20)).argmax(-1)
        return indices.gather(-1, choice[:, None])[:, 0]

    def as_the_step_does():
        return sample(logits, temperature=decoder.temperature, top_k=50, top_p=1.0)

    decoder.top_k, decoder.top_p = 50, 1.0
    for name, fn in [("fp32 then top-k", float_first), ("as the step does", as_the_step_does)]:
        t = timed(fn, 50, sync)
        print(f"sampling {logits.shape[0]} rows ({logits.dtype}), top-k 50: {name}: {t * 1000:.3f} ms", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--slots", type=int, default=256)
    parser.add_argument("--prompt-tokens", type=int, default=600)
    parser.add_argument("--max-new", type=int, default=256)
    parser.add_argument("--prefill-tokens", type=int, default=16_384)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--attention", default="auto")
    parser.add_argument("--shared-prefix", type=int, default=0, help="tokens all prompts share at the start, prefilled once")
    parser.add_argument(
        "--sustained",
        type=int,
        default=0,
        help="then N rounds of one prefill and 64 decode steps, as a run alternates them: each prefill timed",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=0,
        help="then a prefill and N decode steps, one after the other and on two streams at once, in rounds",
    )
    parser.add_argument("--kernels", type=int, default=0, help="print the N kernels that take most of one prefill's GPU time")
    parser.add_argument(
        "--cache-writes", action="store_true", help="time ways of writing one prefill group's keys into one layer's slot cache"
    )
    parser.add_argument(
        "--decode-kernels",
        type=int,
        default=0,
        help="print the N kernels that take most of one decode step's GPU time (the step run outside its graph)",
    )
    parser.add_argument(
        "--matmuls",
        choices=["off", "on", "autotune"],
        default="off",
        help="time a decode step's matmuls alone at --slots rows (and split-K, and max-autotune), then stop",
    )
    parser.add_argument(
        "--variants",
        default="eager:off,compiled:off,compiled:prefill,compiled:all",
        help="comma list of eager|compiled:off|prefill|all[:unfused][:writes-apart][:block128] (torch.compile, FP8 "
        "mode; Q, K, V and gate, up as separate matmuls; the decode's cache writes outside the compiled "
        "function; FlexAttention blocks of 128 positions instead of 32)",
    )
    args = parser.parse_args()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from workers.decoder import SlotDecoder
    from workers.sampling import sample

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if args.small:
        shape = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2)
        args.slots, args.prompt_tokens, args.max_new = 8, 60, 24
    else:
        shape = dict(
            hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8
        )
    config = LlamaConfig(
        vocab_size=128256,
        max_position_embeddings=8192,
        rope_theta=500000.0,
        eos_token_id=128009,
        pad_token_id=128001,
        tie_word_embeddings=False,
        **shape,
    )
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = LlamaForCausalLM(config).eval()
    torch.set_default_dtype(torch.float32)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = params * (2 if dtype == torch.bfloat16 else 4)

    if args.matmuls != "off":
        matmuls(model, config, args.slots, device, dtype, sync, args.matmuls == "autotune")
        x = torch.randn(args.slots, config.hidden_size, device=device, dtype=dtype)
        decoder = SlotDecoder(
            model,
            slots=args.slots,
            max_len=args.prompt_tokens + args.max_new,
            max_new_tokens=args.max_new,
            eos=-1,
            temperature=1.0,
            top_p=1.0,
            use_graph=False,
            compile=False,
        )
        with torch.inference_mode():
            sampling(decoder, model.lm_head(x), sync)
        return

    rng = random.Random(0)
    prompts = [[rng.randrange(1000, 120000) for _ in range(args.prompt_tokens)] for _ in range(args.slots)]
    header = prompts[0][: args.shared_prefix]
    prompts = [header + p[args.shared_prefix :] for p in prompts]
    own = args.prompt_tokens - args.shared_prefix  # the tokens a prefill runs per prompt
    group = min(args.slots, max(1, args.prefill_tokens // own))
    tokens = group * own
    matmul_params = params - config.vocab_size * config.hidden_size  # the embedding is a lookup
    for variant in args.variants.split(","):
        mode, fp8, *options = variant.split(":")
        started = time.perf_counter()
        decoder = SlotDecoder(
            model,
            slots=args.slots,
            max_len=args.prompt_tokens + args.max_new,
            max_new_tokens=args.max_new,
            eos=-1,
            temperature=1.0,
            top_p=1.0,
            use_graph=device == "cuda",
            attention=args.attention,
            compile=mode == "compiled",
            fp8=fp8,
            fuse="unfused" not in options,
            fuse_writes="writes-apart" not in options,
            kv_block=128 if "block128" in options else 32,
        )
        with torch.inference_mode():
            decoder.set_prefix(tuple(header) if args.shared_prefix else ())
            decoder.prefill(list(range(group)), prompts[:group], [args.max_new] * group)
            sync()
            warm = time.perf_counter() - started
            seconds = timed(
                lambda decoder=decoder: decoder.prefill(list(range(group)), prompts[:group], [args.max_new] * group), 3, sync
            )
            print(
                f"[{variant}] prefill: {group} prompts x {own} tokens{f' after a {args.shared_prefix}-token shared prefix' if args.shared_prefix else ''} in {seconds * 1000:.1f} ms: "
                f"{tokens / seconds:,.0f} prompt tokens/s, {2 * matmul_params * tokens / seconds / 1e12:.0f} TFLOP/s "
                f"(bf16-equivalent, matmuls only); set-up and first prefill {warm:.1f} s",
                flush=True,
            )
            if args.kernels:
                from torch.profiler import ProfilerActivity, profile

                with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                    decoder.prefill(list(range(group)), prompts[:group], [args.max_new] * group)
                    sync()
                print(
                    prof.key_averages().table(
                        sort_by="cuda_time_total" if device == "cuda" else "cpu_time_total",
                        row_limit=args.kernels,
                        max_name_column_width=90,
                    ),
                    flush=True,
                )
            for start in range(0, args.slots, group):
                ids = list(range(start, min(args.slots, start + group)))
                decoder.prefill(ids, [prompts[i] for i in ids], [args.max_new] * len(ids))
            started = time.perf_counter()
            decoder.step(args.slots)
            sync()
            first = time.perf_counter() - started
            step = timed(lambda: decoder.step(args.slots), 20, sync)  # noqa: B023
            kv_len = decoder.max_len
            kv_bytes = (
                2
                * config.num_hidden_layers
                * args.slots
                * config.num_key_value_heads
                * kv_len
                * (config.hidden_size // config.num_attention_heads)
                * 2
            )
            print(
                f"[{variant}] decode step at {args.slots} slots (graph {decoder.use_graph}, attention {decoder.attention}): "
                f"{step * 1000:.2f} ms = {args.slots / step:,.0f} tokens/s; first step (compile, capture) {first:.1f} s; "
                f"bf16 weights {weight_bytes / 1e9:.1f} GB + {kv_bytes / 1e9:.1f} GB cache = {(weight_bytes + kv_bytes) / step / 1e12:.2f} TB/s",
                flush=True,
            )
            if args.decode_kernels:
                from torch.profiler import ProfilerActivity, profile

                decoder._decode_step(args.slots)  # the step's compiled parts, warm outside the graph
                sync()
                with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                    decoder._decode_step(args.slots)
                    sync()
                print(
                    prof.key_averages().table(
                        sort_by="cuda_time_total" if device == "cuda" else "cpu_time_total",
                        row_limit=args.decode_kernels,
                        max_name_column_width=90,
                    ),
                    flush=True,
                )
            if args.sustained:
                import statistics
                import subprocess

                def clocks():
                    try:
                        return subprocess.run(
                            ["nvidia-smi", "--query-gpu=clocks.sm,power.draw,temperature.gpu", "--format=csv,noheader"],
                            capture_output=True,
                            text=True,
                            timeout=10,
                        ).stdout.strip()
                    except (OSError, subprocess.SubprocessError):
                        return "n/a"

                before, times = clocks(), []
                for _ in range(args.sustained):
                    sync()
                    started = time.perf_counter()
                    decoder.prefill(list(range(group)), prompts[:group], [args.max_new] * group)
                    sync()
                    times.append(time.perf_counter() - started)
                    for _ in range(64):
                        decoder.step(args.slots)
                after = clocks()
                sync()
                print(
                    f"[{variant}] sustained: {args.sustained} prefills between decode steps: min {min(times) * 1000:.1f} / median "
                    f"{statistics.median(times) * 1000:.1f} / max {max(times) * 1000:.1f} ms; first five "
                    f"{', '.join(f'{t * 1000:.0f}' for t in times[:5])}, last five {', '.join(f'{t * 1000:.0f}' for t in times[-5:])}; "
                    f"SM clock, power, temperature before: {before}; after: {after}",
                    flush=True,
                )
            if args.overlap and device == "cuda":
                overlap(decoder, args.overlap, list(range(group)), prompts[:group], args.max_new, args.slots, sync, variant)
            if mode == "compiled" and decoder.use_graph:
                smaller = {n: timed(lambda: decoder.step(n), 10, sync) for n in decoder.sizes[1:]}  # noqa: B023
                print(
                    f"[{variant}] decode step on fewer slots (a job's tail): "
                    + ", ".join(f"{n}: {t * 1000:.2f} ms" for n, t in smaller.items()),
                    flush=True,
                )
        del decoder
        gc.collect()  # the decoder's compiled functions and graph hold references in cycles
        if device == "cuda":
            torch.cuda.empty_cache()

    decoder = SlotDecoder(
        model,
        slots=args.slots,
        max_len=args.prompt_tokens + args.max_new,
        max_new_tokens=args.max_new,
        eos=-1,
        temperature=1.0,
        top_p=1.0,
        use_graph=False,
        attention=args.attention,
        compile=False,
    )
    if args.cache_writes:
        cache_writes(decoder, group, own, sync)
    with torch.inference_mode():
        for start in range(0, args.slots, group):
            ids = list(range(start, min(args.slots, start + group)))
            decoder.prefill(ids, [prompts[i] for i in ids], [args.max_new] * len(ids))
        kv_bytes = (
            2
            * config.num_hidden_layers
            * args.slots
            * config.num_key_value_heads
            * decoder.max_len
            * (config.hidden_size // config.num_attention_heads)
            * 2
        )
        n, kvh, g, d = (
            args.slots,
            config.num_key_value_heads,
            config.num_attention_heads // config.num_key_value_heads,
            config.hidden_size // config.num_attention_heads,
        )
        q = torch.randn(n, kvh, g, d, device=device, dtype=dtype)
        k, v = decoder.k_cache[0], decoder.v_cache[0]
        mask = (decoder.columns[None, :] <= decoder.pos[:, None])[:, None, None, :]
        sdpa = torch.nn.functional.scaled_dot_product_attention
        layer_kv = kv_bytes / config.num_hidden_layers
        for name, fn in [
            ("sdpa, bool mask", lambda: sdpa(q, k, v, attn_mask=mask)),
            ("sdpa, no mask", lambda: sdpa(q, k, v)),
            (
                "matmul + softmax",
                lambda: torch.softmax((q @ k.transpose(-1, -2)).float().masked_fill(~mask, -float("inf")), -1).to(dtype) @ v,
            ),
        ]:
            try:
                t = timed(fn, 20, sync)
                print(
                    f"attention one layer, {name}: {t * 1e6:.0f} us = {layer_kv / t / 1e12:.2f} TB/s; x{config.num_hidden_layers} layers = {t * config.num_hidden_layers * 1000:.2f} ms",
                    flush=True,
                )
            except Exception as exc:
                print(f"attention {name}: {type(exc).__name__}: {exc}"[:200], flush=True)
        x = torch.randn(n, 1, config.hidden_size, device=device, dtype=dtype)
        layer = decoder.layers[0]
        t = timed(lambda: layer.mlp(x), 20, sync)  # noqa: B023
        print(
            f"MLP one layer: {t * 1e6:.0f} us x{config.num_hidden_layers} = {t * config.num_hidden_layers * 1000:.2f} ms",
            flush=True,
        )
        t = timed(lambda: model.lm_head(x[:, 0]), 20, sync)
        print(f"head: {t * 1000:.2f} ms", flush=True)
        logits = model.lm_head(x[:, 0])
        for top_k, top_p in [(0, 1.0), (50, 1.0), (50, 0.9), (0, 0.9)]:  # the card's call: top-k 50 (transformers' default)
            t = timed(lambda: sample(logits, temperature=1.0, top_k=top_k, top_p=top_p), 20, sync)  # noqa: B023
            print(
                f"sampling {args.slots} rows, temperature 1.0, top-k {top_k or 'off'}, top-p {top_p}: {t * 1000:.2f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
