"""The ko-genstruct adapter presets: adapter, prompt template and sampling defaults for each sibling model."""

from __future__ import annotations

from dataclasses import dataclass

BASE_MODEL_ID = "MLP-KTLim/llama-3-Korean-Bllossom-8B"
# Where `manage.py serve` trains the demo model: a folder of this name in the data directory (WORKBENCH_DATA_DIR).
DEMO_MODEL_DIR_NAME = "workbench-demo-model"

# Verbatim from the simple-qa model card (PROMPT_QA).
SIMPLE_QA_PROMPT = """주어진 텍스트 컨텐츠를 참고하여 질문과 정확하고 상세한 답변을 만드세요, 대답은 아래 형태로 작성하세요
**답변 형식**
[[Q]] 지시문
[[A]] 답변
---
{text}"""

# The writing siblings' cards publish no prompt of their own; these keep the simple-qa layout (which is what the
# [[Q]]/[[A]] parser expects) and change only the task sentence. Admins can edit them per project.
WRITING_PROMPT = """주어진 텍스트 컨텐츠를 참고하여 글쓰기 지시문과 그에 대한 정확하고 상세한 답변을 만드세요, 대답은 아래 형태로 작성하세요
**답변 형식**
[[Q]] 지시문
[[A]] 답변
---
{text}"""

CREATIVE_WRITING_PROMPT = """주어진 텍스트 컨텐츠를 참고하여 창의적인 글쓰기 지시문과 그에 대한 답변을 만드세요, 대답은 아래 형태로 작성하세요
**답변 형식**
[[Q]] 지시문
[[A]] 답변
---
{text}"""


@dataclass(frozen=True)
class AdapterPreset:
    key: str
    label: str
    adapter_id: str  # a hub id, or for the demo model a directory under the data directory
    prompt_template: str
    temperature: float = 1.0
    top_p: float | None = None  # None: as the card's `generate` call (the checkpoint's generation config, else 1.0)
    top_k: int | None = None  # None: likewise (else transformers' default, 50)
    max_new_tokens: int = 256
    samples_per_chunk: int = 3
    base_model: str = BASE_MODEL_ID


PRESETS: dict[str, AdapterPreset] = {
    preset.key: preset
    for preset in (
        AdapterPreset("simple-qa", "Simple QA", "iknow-lab/0725-ko-genstruct-v0.2-simple-qa", SIMPLE_QA_PROMPT),
        AdapterPreset("writing", "Writing", "iknow-lab/0725-ko-genstruct-v0.2-writing", WRITING_PROMPT),
        AdapterPreset(
            "creative-writing",
            "Creative writing",
            "iknow-lab/0725-ko-genstruct-v0.2-creative-writing",
            CREATIVE_WRITING_PROMPT,
        ),
        # The tiny model `bin/start` trains on this machine (workers/demo_model.py) on the simple-qa prompt: it shows
        # the workflow, not ko-genstruct's quality. Its directories are resolved when the preset is applied.
        AdapterPreset(
            "demo",
            "Demo model (tiny, trained by bin/start; not ko-genstruct)",
            f"{DEMO_MODEL_DIR_NAME}/adapter",
            SIMPLE_QA_PROMPT,
            base_model=f"{DEMO_MODEL_DIR_NAME}/base",
        ),
    )
}
DEFAULT_PRESET = "simple-qa"
PRESET_CHOICES = [(preset.key, preset.label) for preset in PRESETS.values()]


def demo_model_dir():
    """The demo model's directory on this machine (base/ and adapter/ inside)."""
    from django.conf import settings

    return settings.DATA_DIR / DEMO_MODEL_DIR_NAME


def _resolve(path: str) -> str:
    if path.startswith(f"{DEMO_MODEL_DIR_NAME}/"):
        return str(demo_model_dir() / path.split("/", 1)[1])
    return path


def preset_defaults(key: str) -> dict:
    """The Project field values a preset sets."""
    preset = PRESETS[key]
    return {
        "adapter_preset": preset.key,
        "base_model": _resolve(preset.base_model),
        "adapter": _resolve(preset.adapter_id),
        "prompt_template": preset.prompt_template,
        "temperature": preset.temperature,
        "top_p": preset.top_p,
        "top_k": preset.top_k,
        "max_new_tokens": preset.max_new_tokens,
        "samples_per_chunk": preset.samples_per_chunk,
    }
