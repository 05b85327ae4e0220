"""Generation end to end on one GPU: a real run as a user starts it, beside the engine alone on the same chunks.

The headline workload: a random-weight model of Llama-3-8B's shape (bf16) with a rank-16 LoRA on all linear layers
(merged on load, as the worker does), ~600-token prompts rendered from the simple-qa template, 3 samples per chunk,
answers of 60-256 new tokens (uniform; `pipeline_standin.py` says how the random model is made to stop there), and
  (a) the engine alone: `workers.engine.Engine` in this process on every sample of the run in one call;
  (b) the product: `manage.py generate` on a project of `--chunks` chunks, served by a real Celery worker on the `gpu`
      queue (`pipeline_worker.py`), pairs stored through the writer thread with the quality filters, progress rows
      updated, on the embedded defaults of `bin/start` (SQLite, the filesystem broker) unless DATABASE_URL and
      CELERY_BROKER_URL say otherwise.
Both are warmed up first on the same small project (model loaded, kernels compiled, CUDA graphs captured), so the
figures compare a serving worker with the engine, not a model load; the worker's cold start is printed apart.

    python benchmarks/pipeline.py build --model-dir /tmp/pipeline-model     # once: tokenizer, random 8B, LoRA
    python benchmarks/pipeline.py run --model-dir /tmp/pipeline-model --chunks 3000
    python benchmarks/pipeline.py build --small ... && python benchmarks/pipeline.py run --small ...   # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
CORPUS = ROOT / "tests" / "fixtures" / "korean"


def corpus_sentences() -> list[str]:
    texts = [(CORPUS / "constitution.txt").read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in sorted((CORPUS / "kobill").glob("*.txt"))]
    texts += sorted({r["premise"] for r in json.loads((CORPUS / "klue-nli-v1.1_dev.json").read_text(encoding="utf-8"))})
    out = []
    for text in texts:
        out += [s.strip() for s in re.split(r"(?<=[.다])\s+|\n+", text) if len(s.strip()) >= 15]
    return out


# -- build: tokenizer, base model, adapter -------------------------------------------------------------------------------
def build(args) -> None:
    import torch
    from generation import llama3_config
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    from workers.tiny import LORA_TARGETS, build_tokenizer

    out = Path(args.model_dir)
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    build_tokenizer(corpus_sentences(), out / "base", vocab_size=8000)
    config = llama3_config(small=args.small)  # the shape benchmarks/generation.py measures
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(previous)
    model.save_pretrained(out / "base")
    lora = LoraConfig(
        r=16, lora_alpha=16, lora_dropout=0.0, target_modules=LORA_TARGETS, init_lora_weights=False, task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(model, lora)
    peft_model.peft_config["default"].base_model_name_or_path = str(out / "base")
    peft_model.save_pretrained(out / "adapter")
    print(
        f"built {out} ({sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters) in {time.perf_counter() - started:.0f} s"
    )


# -- run: project, chunks, engine alone, worker ------------------------------------------------------------------------
def django_setup(args) -> None:
    data = Path(args.data_dir)
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    os.environ["WORKBENCH_DATA_DIR"] = str(data)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
    os.environ["DEBUG"] = "0"  # with DEBUG on, Django keeps every SQL statement in memory
    os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 50)
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ["HF_HUB_OFFLINE"] = "1"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_project(slug: str, model_dir: Path, chunks: int, rng: random.Random, sentences: list[str]):
    from workbench.documents.models import Chunk
    from workbench.documents.services import source_document_create
    from workbench.projects.services import project_create

    project = project_create(
        slug=slug,
        name=slug,
        base_model=str(model_dir / "base"),
        adapter=str(model_dir / "adapter"),
        chunk_unit="tokens",
        tokenizer=str(model_dir / "base"),
        chunk_target_size=520,
        chunk_max_size=560,
        samples_per_chunk=3,
        max_new_tokens=256,
    )
    made = 0
    while made < chunks:
        text = " ".join(rng.choice(sentences) for _ in range(160))
        source_document_create(project=project, text=text, title=f"문서 {made}")
        made = Chunk.objects.filter(document__project=project, is_current=True).count()
    extra = Chunk.objects.filter(document__project=project, is_current=True).order_by("-pk")[: made - chunks]
    Chunk.objects.filter(pk__in=[c.pk for c in extra]).delete()
    return project


def stand_in_outputs(project, rng: random.Random) -> dict[int, list]:
    """Three outputs per chunk in the model's format, mostly good, some of the card's failure cases."""
    from quality_eval import TEMPLATES, cut, polite, sentences, topic

    from workbench.documents.models import Chunk

    out = {}
    for chunk in Chunk.objects.filter(document__project=project, is_current=True).only("id", "text"):
        quotes = sentences(chunk.text) or [chunk.text[:120]]
        samples = []
        for _ in range(3):
            sentence = rng.choice(quotes)
            q, a = rng.choice(TEMPLATES).format(t=topic(sentence, rng)), polite(sentence)
            roll = rng.random()
            if roll < 0.8:
                samples.append([f"[[Q]] {q}\n[[A]] {a}", "stop"])
            elif roll < 0.9:
                samples.append([f"[[Q]] {chunk.text[: rng.randint(200, 420)]}", "length"])  # the card's failure case
            else:
                samples.append([cut(f"[[Q]] {q}\n[[A]] {a} {a}", rng), "length"])
        out[chunk.pk] = samples
    return out


def requests_for(project, engine):
    from workbench.documents.models import Chunk
    from workers.engine import SampleRequest
    from workers.prompts import encode_chat_prompt

    requests = []
    for chunk in Chunk.objects.filter(document__project=project, is_current=True).select_related("document").order_by("pk"):
        prompt = encode_chat_prompt(engine.tokenizer, project.prompt_template, text=chunk.text, title=chunk.document.title)
        requests += [SampleRequest((chunk.pk, s), prompt) for s in range(project.samples_per_chunk)]
    return requests


def engine_alone(args, warmup, project, max_batch: int) -> dict:
    import gc

    import pipeline_standin
    import torch
    from django.conf import settings

    from workbench.generation.services import run_parameters
    from workers.engine import Engine, SamplingParams
    from workers.loading import load_model
    from workers.tasks import model_spec

    pipeline_standin.install()
    loaded = load_model(model_spec(run_parameters(project)), device=settings.MODEL_DEVICE or None)
    engine = Engine(
        loaded,
        backend=settings.GENERATION_BACKEND,
        max_batch=max_batch,
        compile=settings.GENERATION_COMPILE,
        fp8=settings.GENERATION_FP8,
    )
    params = SamplingParams(temperature=1.0, max_new_tokens=256, seed=1)
    warm = requests_for(warmup, engine)
    # Enough to take every slot (the engine gives one call no more slots than a power of two above its work), so the
    # measured call finds its decoder built and its CUDA graphs captured.
    engine.generate((warm * (-(-max_batch // len(warm))))[: max(max_batch, len(warm))], params)
    requests = requests_for(project, engine)
    if loaded.device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    results = engine.generate(requests, params)
    seconds = time.perf_counter() - started
    tokens = sum(r.completion_tokens for r in results)
    figures = {
        "samples": len(results),
        "output_tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds),
        "pairs_per_hour": round(len(results) / seconds * 3600),
        "prompt_tokens_mean": round(sum(len(r.prompt_ids) for r in requests) / len(requests)),
        "backend": engine.backend,
        "max_batch": max_batch,
        "slots": getattr(engine._decoder, "slots", None),  # fewer than max_batch when the free GPU memory holds fewer
    }
    del engine, loaded, results
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return figures


def wait_for(run_id: int, timeout: float) -> None:
    from workbench.generation.models import GenerationRun, RunStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = GenerationRun.objects.get(pk=run_id)
        if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            if run.status != RunStatus.SUCCEEDED:
                raise SystemExit(f"run {run_id} {run.status}: {run.error}")
            return
        time.sleep(0.5)
    raise SystemExit(f"run {run_id} did not finish in {timeout:.0f} s")


def run_figures(run_id: int, seconds: float) -> dict:
    from django.db.models import Count, Sum

    from workbench.generation.models import Generation, GenerationBatch, QAPair

    generations = Generation.objects.filter(run_id=run_id)
    agg = generations.aggregate(n=Count("id"), tokens=Sum("completion_tokens"))
    unique = generations.values("chunk_id", "sample_index").distinct().count()
    pairs = QAPair.objects.filter(generation__run_id=run_id)
    flagged = pairs.filter(is_flagged=True).count()
    batches = GenerationBatch.objects.filter(run_id=run_id)
    return {
        "samples": agg["n"],
        "unique_samples": unique,
        "output_tokens": agg["tokens"],
        "seconds": round(seconds, 2),
        "tokens_per_s": round(agg["tokens"] / seconds),
        "pairs_per_hour": round(agg["n"] / seconds * 3600),
        "pairs": pairs.count(),
        "pairs_flagged": flagged,
        "batches": batches.count(),
        "batch_attempts": sum(batches.values_list("attempts", flat=True)),
    }


def worker_run(args, warmup, project, mode: str) -> dict:
    from workbench.generation.services import generation_run_create

    handover, _, switch_ms = mode.partition(":")  # "on:5": the hand-over on, the writer's GIL switch interval 5 ms
    env = dict(os.environ) | {"GENERATION_HANDOVER": "1" if handover == "on" else "0"}
    if switch_ms:
        env["GENERATION_SWITCH_INTERVAL_US"] = str(round(float(switch_ms) * 1000))
    label = mode.replace(":", "-")  # in the log files' names
    if args.kill_after:
        # A killed worker's batches come back through the dispatch sweep once their heartbeat is stale: short limits,
        # and a CPU worker with the beat (`-Q default -B`, as `manage.py serve` runs it) to send the sweep.
        env |= {"GENERATION_HEARTBEAT_SECONDS": "5", "GENERATION_STALE_SECONDS": "20", "GENERATION_SWEEP_SECONDS": "10"}
    logs, workers = [], []
    for gpu in range(args.workers):  # one worker process per GPU, each pinned to its own, as the README starts them
        logs.append(open(Path(args.data_dir) / f"worker-handover-{label}-gpu{gpu}.log", "w"))
        pinned = env | ({"CUDA_VISIBLE_DEVICES": str(gpu)} if args.workers > 1 else {})
        workers.append(
            subprocess.Popen(
                [sys.executable, str(HERE / "pipeline_worker.py"), f"gpu{gpu}"],
                env=pinned,
                stdout=logs[-1],
                stderr=subprocess.STDOUT,
            )
        )
    if args.kill_after:
        logs.append(open(Path(args.data_dir) / f"cpu-worker-handover-{label}.log", "w"))
        beat = "-m celery -A workbench worker -Q default --concurrency 1 --pool solo -B -n cpu@%h --schedule".split()
        cpu_worker = [sys.executable, *beat, str(Path(args.data_dir) / f"beat-{label}")]
        workers.append(subprocess.Popen(cpu_worker, env=env, cwd=ROOT, stdout=logs[-1], stderr=subprocess.STDOUT))
    try:
        started = time.perf_counter()
        # Small warm-up batches, so that every worker loads the model and compiles before the measured run.
        cold = generation_run_create(project=warmup, batch_chunks=max(1, args.warmup_chunks // (2 * args.workers)))
        wait_for(cold.pk, args.timeout)
        cold_seconds = time.perf_counter() - started
        # The measured run, as a user starts it.
        started = time.perf_counter()
        command = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "generate", "--project", project.slug, "--wait"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        killed = kill_one(args, workers[0], project) if args.kill_after else None
        output, _ = command.communicate(timeout=args.timeout)
        seconds = time.perf_counter() - started
        if command.returncode:
            raise SystemExit(f"manage.py generate failed:\n{output}")
        from workbench.generation.models import GenerationRun

        run = GenerationRun.objects.filter(project=project).latest("pk")
        figures = run_figures(run.pk, seconds)
        if killed:
            figures["killed"] = killed
        figures["cold_start_and_warmup_s"] = round(cold_seconds, 1)
        from workbench.generation.selectors import run_throughput

        figures["per_worker"] = run_throughput(run=run)  # what the run page shows
        return figures
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        for log in logs:
            log.close()


def kill_one(args, worker, project) -> dict:
    """SIGKILL the first GPU worker `--kill-after` seconds into the run; then time until each batch it held is claimed
    by another worker (the sweep queues it again once its heartbeat is stale, and a live worker takes it)."""
    from workbench.generation.models import BatchStatus, GenerationBatch

    time.sleep(args.kill_after)
    batches = GenerationBatch.objects.filter(run__project=project)
    held = {b.pk: b.attempts for b in batches.filter(status=BatchStatus.RUNNING, worker__startswith="gpu0@")}
    worker.kill()
    killed_at = time.perf_counter()
    waiting, taken_over = dict(held), {}
    while waiting and time.perf_counter() - killed_at < args.timeout:
        for pk, attempts in list(waiting.items()):
            b = batches.get(pk=pk)
            if b.attempts > attempts and not b.worker.startswith("gpu0@") or b.status == BatchStatus.DONE:
                taken_over[pk] = round(time.perf_counter() - killed_at, 1)
                del waiting[pk]
        time.sleep(0.5)
    return {"after_s": args.kill_after, "batches_held": len(held), "taken_over_after_s": sorted(taken_over.values()),
            "not_taken_over": len(waiting)}  # fmt: skip


def versions() -> dict:
    import torch
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        try:
            info["clocks"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=clocks.max.sm,clocks.max.mem,driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
            ).stdout.strip()
        except OSError:
            pass
    return info


def run(args) -> None:
    django_setup(args)
    from django.conf import settings

    model_dir = Path(args.model_dir)
    rng = random.Random(7)
    sentences = corpus_sentences()
    started = time.perf_counter()
    warmup = make_project("warmup", model_dir, args.warmup_chunks, rng, sentences)
    outputs = stand_in_outputs(warmup, rng)
    # One measured project per worker mode, each made of the same documents and given the same outputs: every run does
    # the same work, its duplicate search included (a second run in the same project would find every question a
    # duplicate of the first run's and flag all of them).
    modes = args.handover.split(",")
    projects = {}
    for mode in modes:
        projects[mode] = make_project(
            f"pipeline-{mode.replace(':', '-').replace('.', '')}", model_dir, args.chunks, random.Random(8), sentences
        )
        outputs |= stand_in_outputs(projects[mode], random.Random(9))
    project = projects[modes[0]]
    path = Path(args.data_dir) / "outputs.json"
    path.write_text(json.dumps(outputs, ensure_ascii=False), encoding="utf-8")
    os.environ["PIPELINE_OUTPUTS"] = str(path)
    print(f"projects made in {time.perf_counter() - started:.0f} s ({args.chunks} + {args.warmup_chunks} chunks)", flush=True)
    report = {
        "versions": versions(),
        "chunks": args.chunks,
        "samples_per_chunk": 3,
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "broker": settings.CELERY_BROKER_URL.split(":", 1)[0],
        "batch_chunks": settings.GENERATION_BATCH_CHUNKS,
    }
    if args.wait_for:  # a model still being built by `pipeline.py build` (its tokenizer is written first)
        while not Path(args.wait_for).exists():
            time.sleep(1)
        print(f"waited for {args.wait_for}: {Path(args.wait_for).read_text().strip()!r}", flush=True)
    if not args.skip_engine:
        # The engine with the worker's GENERATION_MAX_BATCH is the one the run is compared with; --engine-slots adds
        # others, measured in the same call.
        sizes = [settings.GENERATION_MAX_BATCH] + [n for n in args.engine_slots if n != settings.GENERATION_MAX_BATCH]
        for n in sizes:
            key = "engine" if n == settings.GENERATION_MAX_BATCH else f"engine, max_batch {n}"
            report[key] = engine_alone(args, warmup, project, n)
            print(f"{key} alone:", json.dumps(report[key]), flush=True)
    for handover in [] if args.skip_worker else modes:
        key = f"worker, handover {handover}"
        if ":" in handover:
            key += " ms switch interval"
        report[key] = worker_run(args, warmup, projects[handover], handover)
        print(f"{key}:", json.dumps(report[key]), flush=True)
        if "engine" in report:
            report[key]["kept"] = round(report[key]["tokens_per_s"] / report["engine"]["tokens_per_s"], 3)
            print(f"the run keeps {report[key]['kept']:.1%} of the engine's tokens/s", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["build", "run"])
    parser.add_argument("--model-dir", default="/tmp/pipeline-model")
    parser.add_argument("--data-dir", default="/tmp/pipeline-data")
    parser.add_argument("--small", action="store_true", help="a tiny model (CPU smoke test)")
    parser.add_argument("--chunks", type=int, default=3000)
    parser.add_argument("--warmup-chunks", type=int, default=64)
    parser.add_argument(
        "--handover",
        default="on",
        help="GENERATION_HANDOVER in the worker: on, off, or on,off for both; on:5 also sets the GIL switch interval (ms) while the writer runs (the default 0.5; Python's 5)",
    )
    parser.add_argument("--workers", type=int, default=1, help="GPU worker processes, one per GPU (CUDA_VISIBLE_DEVICES)")
    parser.add_argument("--kill-after", type=float, default=0, help="SIGKILL the first GPU worker this many s into the run")
    parser.add_argument("--skip-engine", action="store_true")
    parser.add_argument("--skip-worker", action="store_true", help="the engine alone only")
    parser.add_argument(
        "--engine-slots",
        type=lambda v: [int(n) for n in v.split(",") if n],
        default=[],
        help="also run the engine alone with these GENERATION_MAX_BATCH values (comma-separated), in the same call",
    )
    parser.add_argument("--wait-for", default="", help="make the projects, then wait for this file before loading the model")
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    build(args) if args.stage == "build" else run(args)


if __name__ == "__main__":
    main()
