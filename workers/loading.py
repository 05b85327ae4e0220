"""Loading the base model and the LoRA adapter: local directories or hub ids at pinned revisions, offline-aware, with a
check that the adapter fits the base before any weights are merged."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """The weights could not be loaded; the message names what is missing or mismatched."""


@dataclass(frozen=True)
class ModelSpec:
    base_model: str
    adapter: str = ""
    base_revision: str = ""
    adapter_revision: str = ""
    cache_dir: str = ""
    merge: bool = True  # merged LoRA weights decode faster than an unmerged adapter (no extra matmuls per layer)


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: object
    tokenizer: object
    device: str
    dtype: str
    eos_token_id: int


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"} or os.environ.get(
        "TRANSFORMERS_OFFLINE", ""
    ).lower() in {"1", "true", "yes"}


def _where(name: str, revision: str) -> str:
    if Path(name).exists():
        return f"local directory {name}"
    return f"{name}@{revision or 'main'}" + (" (offline mode: only the local cache is searched)" if offline() else "")


def _kwargs(spec: ModelSpec, revision: str) -> dict:
    kwargs = {"local_files_only": offline()}
    if revision:
        kwargs["revision"] = revision
    if spec.cache_dir:
        kwargs["cache_dir"] = spec.cache_dir
    return kwargs


def check_adapter_fits(*, adapter_config, base_config, base_model_name: str, module_names: set[str]) -> None:
    """The adapter must have been trained on this base: same base id (when both are hub ids), targets that exist."""
    declared = (adapter_config.base_model_name_or_path or "").rstrip("/")
    if declared and not Path(declared).exists() and not Path(base_model_name).exists() and declared != base_model_name:
        raise ModelLoadError(
            f"The adapter was trained on {declared!r}, not on {base_model_name!r}; set the project's base model to "
            f"{declared!r} (at the revision the adapter was trained on)."
        )
    targets = adapter_config.target_modules
    targets = {targets} if isinstance(targets, str) else set(targets or ())
    leaf_names = {name.rsplit(".", 1)[-1] for name in module_names}
    missing = sorted(t for t in targets if t not in leaf_names)
    if missing:
        raise ModelLoadError(
            f"The adapter targets modules the base model does not have: {', '.join(missing)} "
            f"(base is {getattr(base_config, 'model_type', '?')} with {getattr(base_config, 'num_hidden_layers', '?')} layers)."
        )
    if not adapter_config.r or adapter_config.r <= 0:
        raise ModelLoadError(f"The adapter's rank r={adapter_config.r} is not usable.")


def load_model(spec: ModelSpec, *, device: str | None = None) -> LoadedModel:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        base_config = AutoConfig.from_pretrained(spec.base_model, **_kwargs(spec, spec.base_revision))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Base model weights not found: {_where(spec.base_model, spec.base_revision)} ({exc})") from None

    adapter_config = None
    if spec.adapter:
        from peft import PeftConfig

        try:
            adapter_config = PeftConfig.from_pretrained(spec.adapter, **_kwargs(spec, spec.adapter_revision))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Adapter not found: {_where(spec.adapter, spec.adapter_revision)} ({exc})") from None

    tokenizer_source = spec.adapter if spec.adapter and (Path(spec.adapter) / "tokenizer_config.json").exists() else spec.base_model
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            tokenizer_source, **_kwargs(spec, spec.adapter_revision if tokenizer_source == spec.adapter else spec.base_revision)
        )
        model = AutoModelForCausalLM.from_pretrained(spec.base_model, dtype=dtype, **_kwargs(spec, spec.base_revision))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Base model weights not found: {_where(spec.base_model, spec.base_revision)} ({exc})") from None

    if adapter_config is not None:
        check_adapter_fits(
            adapter_config=adapter_config,
            base_config=base_config,
            base_model_name=spec.base_model,
            module_names={name for name, _ in model.named_modules()},
        )
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec.adapter, **_kwargs(spec, spec.adapter_revision))
        if spec.merge:
            model = model.merge_and_unload()
    model.to(device)
    model.eval()
    model.requires_grad_(False)  # inference only: no autograd state, and the slots backend may share weight storage
    eos = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    if eos is None or eos == tokenizer.unk_token_id:
        eos = tokenizer.eos_token_id
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(spec=spec, model=model, tokenizer=tokenizer, device=device, dtype=str(dtype).replace("torch.", ""), eos_token_id=eos)
