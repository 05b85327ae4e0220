"""Generation throughput on one GPU: the model card's loop vs our engine, side by side in one run.

A random-weight model of Llama-3-8B's shape (bf16) with a rank-16 LoRA on all linear layers, ~600-token prompts,
temperature 1.0, up to 256 new tokens:
  (a) the card's loop: one prompt at a time, the adapter unmerged (as `model.load_adapter` leaves it);
  (b) our engine (`workers.engine.Engine`, adapter merged) with each backend: `batched` (length-sorted plain `generate`)
      and `continuous` (transformers' continuous batching);
on a fixed-length workload (every output runs to 256 tokens) and a variable one (each output stops at its own length,
drawn uniformly from 60-256 tokens). Prints output tokens/s, pairs/hour, peak GPU memory and the fraction of the
memory-bandwidth roofline (measured copy bandwidth; every decode step must read the weights once plus the KV cache of
the sequences in flight, at the engine's batch size) and of a roofline that adds the prefill: the prompts' matmul FLOPs
at the measured rate of a large bf16 matmul, plus the decode's memory floor. `--fp8` and `--compile` pick the `slots`
backend's variants (workers/layers.py, workers/decoder.py).

    python benchmarks/generation.py                # on the GPU machine
    python benchmarks/generation.py --small        # a smoke test of the script on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class _Tokenizer:
    """The benchmark measures generation, not detokenisation: decoding returns nothing."""

    pad_token_id = 128001

    def decode(self, ids, skip_special_tokens=True):
        return ""


def llama3_config(*, small: bool):
    """Llama-3-8B's shape and special-token ids (vocabulary 128,256); `small`: two thin layers for a CPU smoke test."""
    from transformers import LlamaConfig

    if small:
        shape = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2)
    else:  # Llama-3-8B
        shape = dict(
            hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8
        )
    return LlamaConfig(
        vocab_size=128256,
        max_position_embeddings=8192,
        rope_theta=500000.0,
        bos_token_id=128000,
        eos_token_id=128009,
        pad_token_id=128001,
        tie_word_embeddings=False,
        **shape,
    )


def build(args, device, dtype):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    config = llama3_config(small=args.small)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(previous)
    model.eval()
    lora = LoraConfig(
        r=16,
        lora_alpha=16,
        lora_dropout=0.0,
        init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    return get_peft_model(model, lora), config


def copy_bandwidth(device):
    import torch

    if not device.startswith("cuda"):
        return None
    x = torch.empty(2 * 1024**3, dtype=torch.uint8, device=device)
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        y.copy_(x)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / 10
    del x, y
    return 2 * 2 * 1024**3 / seconds  # bytes read + written per second


def matmul_rate(device):
    """FLOP/s of a large bf16 matmul on this GPU: the compute ceiling the prefill is measured against."""
    import torch

    if not device.startswith("cuda"):
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(20):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192**3 * 20 / (time.perf_counter() - start)


def roofline_seconds(lengths, prompt_tokens, batch, weight_bytes, kv_per_token, bandwidth):
    """Lower bound on decode time: per step, the weights once plus the KV cache of the sequences in flight."""
    if not bandwidth:
        return None
    steps = sum(lengths) / batch
    kv = sum(prompt_tokens * n + n * (n + 1) / 2 for n in lengths) * kv_per_token
    return (steps * weight_bytes + kv) / bandwidth


def breakdown(device):
    """Wrap the slots decoder's prefill (timed between two synchronisations, with its group's prompts and width) and
    decode step (counted, and timed on the GPU by CUDA events, with its slot count); `summary` condenses them."""
    import torch

    from workers.decoder import SlotDecoder

    class Tally(dict):
        def clear(self):
            self.update(prefill_s=0.0, prefills=0, steps=0, groups=[], events=[])

        def summary(self) -> dict:
            """Prefill tokens/s of full groups and of the rest; GPU ms per decode step by slot count; the GPU's idle
            time between consecutive steps (host work, refills excluded: a prefill between two steps is not a gap)."""
            out = {}
            for label, keep in (("full", lambda n, w: n * w >= 12_000), ("small", lambda n, w: n * w < 12_000)):
                chosen = [(n, w, t) for n, w, t in self["groups"] if keep(n, w)]
                if chosen:
                    out[f"prefill_{label}_groups"] = len(chosen)
                    out[f"prefill_{label}_tokens_per_s"] = sum(n * w for n, w, _ in chosen) / sum(t for *_, t in chosen)
            if self["events"]:
                torch.cuda.synchronize()
                by_size: dict[int, list[float]] = {}
                gaps, previous = [], None
                for n, begin, end, after_prefill in self["events"]:
                    by_size.setdefault(n, []).append(begin.elapsed_time(end))
                    if previous is not None and not after_prefill:
                        gaps.append(previous.elapsed_time(begin))
                    previous = end
                out["step_ms"] = {n: round(sum(v) / len(v), 3) for n, v in sorted(by_size.items(), reverse=True)}
                out["steps_by_size"] = {n: len(v) for n, v in sorted(by_size.items(), reverse=True)}
                out["step_gap_ms_mean"] = round(sum(gaps) / max(1, len(gaps)), 4)
                out["step_gaps_s"] = round(sum(gaps) / 1000, 3)
            return out

    tally = Tally()
    tally.clear()
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    prefill, step = SlotDecoder.prefill, SlotDecoder.step
    state = {"after_prefill": True}

    def timed_prefill(self, slot_ids, prompts, budgets):
        sync()
        started = time.perf_counter()
        prefill(self, slot_ids, prompts, budgets)
        sync()
        seconds = time.perf_counter() - started
        tally["prefill_s"] += seconds
        tally["prefills"] += 1
        distinct = {tuple(p) for p in prompts}
        tally["groups"].append((len(distinct), max(len(p) for p in distinct) - len(self.prefix), seconds))
        state["after_prefill"] = True

    def counted_step(self, n):
        tally["steps"] += 1
        if not cuda:
            return step(self, n)
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        step(self, n)
        end.record()
        tally["events"].append((n, begin, end, state["after_prefill"]))
        state["after_prefill"] = False

    SlotDecoder.prefill, SlotDecoder.step = timed_prefill, counted_step
    return tally


class Clocks:
    """SM clock and power draw, sampled by nvidia-smi every half second while a run goes on (a power-limited card
    lowers its clock under the prefill's matmuls)."""

    def __init__(self):
        import threading

        self.samples, self.stop = [], threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        import subprocess

        while not self.stop.is_set():
            try:
                line = (
                    subprocess.run(
                        ["nvidia-smi", "--query-gpu=clocks.sm,power.draw", "--format=csv,noheader,nounits"],
                        capture_output=True,
                        text=True,
                        timeout=5,
                    )
                    .stdout.strip()
                    .splitlines()[0]
                )
                clock, power = (float(v) for v in line.split(","))
                self.samples.append((clock, power))
            except Exception:  # no nvidia-smi, or output it cannot read: no figures
                return
            self.stop.wait(0.5)

    def start(self):
        self.thread.start()
        return self

    def finish(self):
        self.stop.set()
        self.thread.join()

    def summary(self) -> dict:
        import statistics

        if not self.samples:
            return {}
        clocks, powers = [c for c, _ in self.samples], [p for _, p in self.samples]
        return {
            "sm_mhz_median": statistics.median(clocks),
            "sm_mhz_min": min(clocks),
            "power_w_median": statistics.median(powers),
            "power_w_max": max(powers),
        }


def check_slots(device):
    """The slots path (CUDA graph on a GPU) must give the same greedy tokens as `generate`, on a small fp32 model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from workers.decoder import SlotDecoder
    from workers.scheduler import SlotScheduler

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=2000,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        eos_token_id=7,
        pad_token_id=0,
    )
    model = LlamaForCausalLM(config).to(device).eval()
    rng = random.Random(0)
    header = [rng.randrange(10, 2000) for _ in range(40)]
    decoder = SlotDecoder(
        model,
        slots=8,
        max_len=240,
        max_new_tokens=40,
        eos=7,
        temperature=0,
        top_p=1.0,
        use_graph=device.startswith("cuda"),
        min_slots=2,
    )  # the tail runs on 4, then 2 slots
    scheduler = SlotScheduler(decoder, check_every=4)
    results = []
    # Distinct prompts, then prompts of one template (a 40-token prefix prefilled once), then the same with the second half
    # handed over while the first half decodes (the hand-over between a worker's batches).
    for shared, handover in ((0, False), (40, False), (40, True)):
        prompts = [header[:shared] + [rng.randrange(10, 2000) for _ in range(rng.randint(3, 160))] for _ in range(24)]
        budgets = [rng.randint(1, 40) for _ in prompts]
        expected = []
        with torch.inference_mode():
            for p, b in zip(prompts, budgets):
                out = model.generate(
                    torch.tensor([p], device=device), max_new_tokens=b, do_sample=False, eos_token_id=7, pad_token_id=0
                )
                tokens = out[0, len(p) :].tolist()
                expected.append(tokens[: tokens.index(7) + 1] if 7 in tokens else tokens)
        if handover:
            later = [(prompts[12:], budgets[12:])]
            got = {
                f.index: f.tokens
                for f in scheduler.run(prompts[:12], budgets[:12], more=lambda wait, later=later: later.pop() if later else None)
            }
        else:
            got = {f.index: f.tokens for f in scheduler.run(prompts, budgets)}
        same = sum(got.get(i) == expected[i] for i in range(len(prompts)))
        print(
            f"slots backend (CUDA graph: {device.startswith('cuda')}) vs generate, greedy, 24 prompts through 8 slots, "
            f"shared prefix {len(decoder.prefix)} tokens{', the second 12 handed over' if handover else ''}: {same}/24 identical",
            flush=True,
        )
        results.append(same)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--prompt-tokens", type=int, default=600)
    parser.add_argument("--max-new", type=int, default=256)
    parser.add_argument("--card-prompts", type=int, default=3)
    parser.add_argument("--backends", default="slots,batched,continuous")
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--workloads", default="fixed,variable")
    parser.add_argument("--fp8", default="off", help="FP8 modes of the slots backend to run, a comma list of off, prefill, all")
    parser.add_argument(
        "--fuse", default="on", help="slots backend: Q, K, V and gate, up as one matmul each; a comma list of on, off"
    )
    parser.add_argument(
        "--refill", default="0", help="slots backend: free slots that trigger a refill, a comma list (0: 1/16 of the slots)"
    )
    parser.add_argument("--kv-block", default="32", help="slots backend: cache positions per FlexAttention block, a comma list")
    parser.add_argument("--compile", default="auto", choices=["auto", "on", "off"], help="torch.compile in the slots backend")
    parser.add_argument(
        "--shared-prefix",
        default="0",
        help="tokens every prompt shares at its start (the chat header and the template's text before the "
        "chunk; about 60 for the simple-qa template), a comma list",
    )
    parser.add_argument("--samples", default="1", help="samples per distinct prompt, a comma list (the product's default is 3)")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="time the slots backend's prefills apart (a synchronisation around each) and count decode steps",
    )
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    args = parser.parse_args()
    if args.card_prompts < 1:
        parser.error("--card-prompts must be at least 1: the engine's figures are compared with the card's loop")
    if args.small:
        args.prompts, args.prompt_tokens, args.max_new, args.card_prompts, args.max_batch = 16, 60, 24, 1, 8

    import peft
    import torch
    import transformers

    from workers.engine import Engine, SampleRequest, SamplingParams
    from workers.loading import LoadedModel

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"
    print(
        f"device: {name}; torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}", flush=True
    )
    bandwidth = copy_bandwidth(device)
    flops = matmul_rate(device)
    if bandwidth:
        print(f"measured copy bandwidth: {bandwidth / 1e12:.2f} TB/s; bf16 matmul 8192^3: {flops / 1e12:.0f} TFLOP/s", flush=True)

    check = check_slots(device)
    t0 = time.perf_counter()
    model, config = build(args, device, dtype)
    print(f"built model in {time.perf_counter() - t0:.0f} s", flush=True)
    rng = random.Random(1)
    distinct = [[128000] + [rng.randrange(1000, 120000) for _ in range(args.prompt_tokens - 1)] for _ in range(args.prompts)]
    prompts = distinct
    header = distinct[0]  # a template's shared start, when --shared-prefix asks for one
    variable = [rng.randint(60, args.max_new) if not args.small else rng.randint(4, args.max_new) for _ in prompts]
    rows = []

    # (a) the card's loop: unmerged adapter, one prompt at a time.
    ids = torch.tensor([prompts[0]], device=device)
    with torch.inference_mode():
        model.generate(input_ids=ids, max_new_tokens=4, do_sample=True, temperature=1.0, eos_token_id=128009, pad_token_id=128001)
        if device == "cuda":
            torch.cuda.synchronize()
        start, produced = time.perf_counter(), 0
        for p in prompts[: args.card_prompts]:
            out = model.generate(
                input_ids=torch.tensor([p], device=device),
                max_new_tokens=args.max_new,
                do_sample=True,
                temperature=1.0,
                eos_token_id=128009,
                pad_token_id=128001,
            )
            produced += out.shape[1] - len(p)
        if device == "cuda":
            torch.cuda.synchronize()
    card_tps = produced / (time.perf_counter() - start)
    rows.append(
        {
            "path": "card loop (batch 1, adapter unmerged)",
            "workload": "fixed",
            "tokens_per_s": card_tps,
            "pairs_per_hour": card_tps / (produced / args.card_prompts) * 3600,
            "peak_gb": None,
            "roofline": None,
        }
    )
    print(f"card loop: {card_tps:.1f} tokens/s over {args.card_prompts} prompts", flush=True)

    merged = model.merge_and_unload()
    del model
    weight_bytes = sum(p.numel() * p.element_size() for p in merged.parameters())
    head_dim = config.hidden_size // config.num_attention_heads
    layer_params = sum(p.numel() for p in merged.model.layers.parameters())
    kv_per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * (2 if dtype == torch.bfloat16 else 4)
    loaded = LoadedModel(
        spec=None,
        model=merged,
        tokenizer=_Tokenizer(),
        device=device,
        dtype=str(dtype).replace("torch.", ""),
        eos_token_id=128009,
    )

    compile_ = {"auto": None, "on": True, "off": False}[args.compile]
    tally = breakdown(device) if args.breakdown else None
    variants = [
        (b, f, u, int(r), int(k))
        for b in args.backends.split(",")
        for f in (args.fp8.split(",") if b == "slots" else ["off"])
        for u in (args.fuse.split(",") if b == "slots" else ["on"])
        for r in (args.refill.split(",") if b == "slots" else ["0"])
        for k in (args.kv_block.split(",") if b == "slots" else ["32"])
    ]
    for backend, fp8, fuse, refill, kv_block in variants:
        label = (
            f"engine {backend}"
            + (f" fp8 {fp8}" if fp8 != "off" else "")
            + (" unfused" if fuse == "off" else "")
            + (f" refill at {refill}" if refill else "")
            + (f" blocks of {kv_block}" if kv_block != 32 else "")
        )
        for shared, samples, workload in [
            (int(p), int(k), w)
            for p in args.shared_prefix.split(",")
            for k in args.samples.split(",")
            for w in args.workloads.split(",")
        ]:
            # `samples` requests per distinct prompt (several samples of one chunk), same number of requests in all;
            # the first `shared` tokens of every prompt the same (one template).
            prompts = [header[:shared] + distinct[i // samples][shared:] for i in range(len(distinct))]
            budgets = [None] * len(prompts) if workload == "fixed" else variable
            requests = [SampleRequest(i, p, max_new_tokens=b) for i, (p, b) in enumerate(zip(prompts, budgets))]
            try:
                engine = Engine(
                    loaded,
                    backend=backend,
                    max_batch=args.max_batch,
                    compile=compile_,
                    fp8=fp8,
                    fuse=fuse == "on",
                    refill_at=refill or None,
                    kv_block=kv_block,
                )
                # Warm-up at the measured shapes (kernels compiled and CUDA graph captured, as a worker's first batch does).
                warm = min(len(requests), args.max_batch)
                # Budgets of 2-65 tokens, so the tail's smaller decode sizes are compiled and captured too.
                engine.generate(
                    [SampleRequest(i, r.prompt_ids, max_new_tokens=2 + i % 64) for i, r in enumerate(requests[:warm])],
                    SamplingParams(max_new_tokens=args.max_new, seed=0),
                )
                if device == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                if tally:
                    tally.clear()
                clocks = Clocks().start() if tally and device == "cuda" else None
                start = time.perf_counter()
                results = engine.generate(requests, SamplingParams(temperature=1.0, max_new_tokens=args.max_new, seed=1))
                if device == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
                if clocks:
                    clocks.finish()
            except Exception as exc:  # report and go on: one backend failing must not hide the others
                traceback.print_exc()
                rows.append({"path": label, "workload": workload, "error": f"{type(exc).__name__}: {exc}"[:300]})
                continue
            lengths = [r.completion_tokens for r in results]
            tps = sum(lengths) / seconds
            floor = roofline_seconds(
                lengths, args.prompt_tokens, min(args.max_batch, len(prompts)), weight_bytes, kv_per_token, bandwidth
            )
            # Prefill floor: each distinct prompt's tokens through every layer's matmuls (2 FLOPs per weight), at the
            # measured bf16 matmul rate (the samples of one prompt share its prefill).
            # A shared prefix counts once.
            prefill_floor = (
                (len(set(map(tuple, prompts))) * (args.prompt_tokens - shared) + shared) * 2 * layer_params / flops
                if flops
                else None
            )
            rows.append(
                {
                    "path": f"{label} (merged)",
                    "tokens_per_s": tps,
                    "workload": workload
                    + (f", {samples} samples/prompt" if samples > 1 else "")
                    + (f", {shared}-token shared prefix" if shared else ""),
                    "pairs_per_hour": len(results) / seconds * 3600,
                    "mean_tokens": sum(lengths) / len(lengths),
                    "stops": sum(r.finish_reason == "stop" for r in results),
                    "peak_gb": torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None,
                    "roofline": floor / seconds if floor else None,
                    "roofline_with_prefill": (floor + prefill_floor) / seconds if floor and prefill_floor else None,
                    "x_card": tps / card_tps,
                    "seconds": seconds,
                }
                | (
                    {
                        "prefill_s": tally["prefill_s"],
                        "prefills": tally["prefills"],
                        "steps": tally["steps"],
                        "rest_s": seconds - tally["prefill_s"],
                    }
                    | tally.summary()
                    | (clocks.summary() if clocks else {})
                    if tally
                    else {}
                )
            )
            print(json.dumps(rows[-1]), flush=True)
            # The next engine sizes its slots from the free GPU memory: this one's cache must be gone first (its
            # compiled functions and CUDA graph hold references in cycles).
            del engine
            import gc

            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()

    print()
    print(
        f"{'path':42} {'workload':28} {'tok/s':>9} {'pairs/h':>10} {'peak GB':>8} {'roofline':>8} {'+prefill':>8} {'x card':>7}"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['path']:42} {r['workload']:28} ERROR {r['error']}")
            continue
        print(
            f"{r['path']:42} {r['workload']:28} {r['tokens_per_s']:9.0f} {r['pairs_per_hour']:10.0f} "
            f"{(r['peak_gb'] or 0):8.1f} {(r['roofline'] or 0) * 100:7.0f}% {(r.get('roofline_with_prefill') or 0) * 100:7.0f}% "
            f"{r.get('x_card', 1):7.0f}"
        )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "generation.json").write_text(
        json.dumps(
            {
                "device": name,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "peft": peft.__version__,
                "bandwidth": bandwidth,
                "matmul_flops": flops,
                "slots_check": check,
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
