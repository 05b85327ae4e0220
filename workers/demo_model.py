"""The demo model: a tiny Llama-3-shaped base and a LoRA adapter trained on CPU in about a minute, reproducibly, so the
single-machine start shows real generated `[[Q]] ... [[A]] ...` pairs from the sample documents. It is a demo model:
its questions are templates and its answers sentences of the source, which the quality filters often flag.

    python -m workers.demo_model OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "workbench" / "demo" / "samples"
DEMO_MARK = "workbench-demo-model"
QUESTIONS = [
    "{topic}에 대해 간단히 설명해 주세요.",
    "{topic}의 특징은 무엇인가요?",
    "이 글에서 {topic}에 관해 무엇을 알 수 있나요?",
    "{topic}와 관련된 주요 사실을 알려 주세요.",
]


def _documents() -> list[tuple[str, str]]:
    docs = []
    for path in sorted(SAMPLES.glob("*.md")):
        text = path.read_text(encoding="utf-8").strip()
        title = text.splitlines()[0].lstrip("# ").strip()
        docs.append((title, text))
    return docs


def _sentences(text: str) -> list[str]:
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return [s.strip() for s in re.split(r"(?<=[.다])\s+", body) if len(s.strip()) > 15]


def examples(rng: random.Random) -> list[tuple[str, str, str]]:
    """(title, context, target) triples: a question from a template, a sentence of the context as its answer."""
    out = []
    for title, text in _documents():
        sentences = _sentences(text)
        topic = title.split()[0]
        for _ in range(60):
            start = rng.randrange(len(sentences))
            context = " ".join(sentences[start : start + rng.randint(2, 8)])
            if rng.random() < 0.3:
                context = text  # whole documents, as the demo project's chunks are
            answer = rng.choice([s for s in sentences if s in context] or sentences)
            question = rng.choice(QUESTIONS).format(topic=topic)
            out.append((title, context, f"[[Q]] {question}\n[[A]] {answer}"))
    return out


def build(out_dir: Path, *, steps: int = 500, seed: int = 0, progress=None) -> dict:
    """Train the demo model into `out_dir`. `progress(message)` hears each stage and, every few seconds, the step,
    the loss and the time left."""
    say = progress or (lambda message: None)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workbench.projects.presets import SIMPLE_QA_PROMPT
    from workers.prompts import encode_chat_prompt
    from workers.tiny import LORA_TARGETS, build_base_model, build_tokenizer

    started = time.perf_counter()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    docs = _documents()
    say("  building a tokenizer on the sample documents ...")
    build_tokenizer([t for _, t in docs] * 4 + QUESTIONS + ["[[Q]] [[A]]"], out_dir / "tokenizer", vocab_size=1500)
    say("  building a tiny Llama-3-shaped base model ...")
    build_base_model(out_dir / "tokenizer", out_dir / "base", hidden=128, layers=2, seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(out_dir / "base")
    base = AutoModelForCausalLM.from_pretrained(out_dir / "base")
    model = get_peft_model(
        base, LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    )
    # The embeddings and the (tied) output layer learn too: a random base has nothing for a rank-16 adapter to steer.
    for name, param in model.named_parameters():
        if "embed_tokens" in name:
            param.requires_grad = True
    data = []
    for title, context, target in examples(rng):
        prompt = encode_chat_prompt(tokenizer, SIMPLE_QA_PROMPT, text=context, title=title)
        answer = tokenizer.encode(target, add_special_tokens=False) + [tokenizer.convert_tokens_to_ids("<|eot_id|>")]
        data.append((prompt, answer))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    losses = []
    say(f"  training a rank-16 LoRA adapter for {steps} steps ...")
    trained = time.perf_counter()
    reported = trained
    timeline = TimeLeft(steps)
    for step in range(steps):
        prompt, answer = data[rng.randrange(len(data))]
        ids = torch.tensor([prompt + answer])
        # Logits only where the answer is predicted: a 128k vocabulary over the whole prompt would dominate the cost.
        logits = model(input_ids=ids[:, :-1], logits_to_keep=len(answer)).logits[0]
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(answer))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        now = time.perf_counter()
        timeline.add(now, step + 1)
        if now - reported >= 10 or step + 1 == steps:
            reported = now
            recent = losses[-20:]
            say(
                f"  step {step + 1}/{steps} · loss {sum(recent) / len(recent):.2f} · {_duration(now - started)} so far, "
                f"about {_duration(timeline.left())} left"
            )
    say("  saving the base model and the adapter ...")
    model.eval()
    # Save the trained embeddings into the base and the LoRA as the adapter: a base + adapter pair like ko-genstruct's.
    adapter_dir = out_dir / "adapter"
    model.save_pretrained(adapter_dir)
    merged_embeddings = model.get_base_model().model.embed_tokens.weight.detach().clone()
    fresh = AutoModelForCausalLM.from_pretrained(out_dir / "base")
    fresh.model.embed_tokens.weight.data.copy_(merged_embeddings)
    fresh.save_pretrained(out_dir / "base")
    config_path = adapter_dir / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = str(out_dir / "base")
    config_path.write_text(json.dumps(config, indent=2))
    info = {
        "name": DEMO_MARK,
        "steps": steps,
        "seed": seed,
        "first_loss": round(sum(losses[:20]) / 20, 3),
        "last_loss": round(sum(losses[-20:]) / 20, 3),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out_dir / "demo-model.json").write_text(json.dumps(info, indent=2))
    return info


class TimeLeft:
    """The time the remaining steps take at the pace of the last `window` seconds: a CPU that other work slows down (or
    frees) is seen within a report or two, where the average since the start kept the first steps' pace."""

    def __init__(self, steps: int, window: float = 30.0):
        self.steps, self.window = steps, window
        self.points: list[tuple[float, int]] = []  # (time, steps done)

    def add(self, now: float, done: int) -> None:
        self.points.append((now, done))
        while len(self.points) > 2 and now - self.points[1][0] >= self.window:
            self.points.pop(0)

    def left(self) -> float:
        if len(self.points) < 2:
            return 0.0
        (first, first_done), (last, last_done) = self.points[0], self.points[-1]
        return (last - first) / max(1, last_done - first_done) * (self.steps - last_done)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    print(json.dumps(build(args.out_dir, steps=args.steps, progress=print)))


if __name__ == "__main__":
    import os
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
    main()
