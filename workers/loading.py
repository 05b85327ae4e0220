"""Loading the base model and the LoRA adapter: local directories or hub ids at pinned revisions, offline-aware, with a
check that the adapter fits the base before any weights are merged."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


# peft's file names for an adapter's weights (peft.utils.SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME)
ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
DEMO_MODEL_DIR_NAME = "workbench-demo-model"  # where `manage.py serve` trains the demo model, under the data directory


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


def _looks_local(name: str) -> bool:
    return Path(name).exists() or name.startswith(("/", "./", "../", "~")) or name.count("/") > 1


def _cache_in_use(spec: ModelSpec) -> str:
    if spec.cache_dir:
        return spec.cache_dir
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def missing(what: str, field: str, name: str, revision: str, spec: ModelSpec, exc: BaseException) -> ModelLoadError:
    """A load error that says what is missing on this worker and how to fix it. `field` is the project setting that
    names it (Base model, Adapter)."""
    if _looks_local(name):
        found = f"{what} not found: local directory {name}" + ("" if Path(name).exists() else " does not exist on this worker")
        fix = (
            f"Fix: copy the files there on every GPU worker, or set the project's {field} (project settings, "
            f"Generation) to a directory that holds them."
        )
        if DEMO_MODEL_DIR_NAME in name:
            fix += (
                " The demo model is trained by `bin/start` (`manage.py serve`) into the data directory "
                "(WORKBENCH_DATA_DIR); start it once, or run `python -m workers.demo_model DIR`."
            )
    else:
        rev = f" --revision {revision}" if revision else ""
        cache = _cache_in_use(spec)
        found = f"{what} not found: {_where(name, revision)}; " + (
            f"it is not in this worker's Hugging Face cache {cache}"
            if offline()
            else f"it could not be fetched from the hub into the cache {cache}"
        )
        fix = (
            f"Fix: download it into the worker's cache (`hf download {name}{rev} --cache-dir {cache}`; "
            f"the cache is MODEL_CACHE_DIR when that directory exists, else HF_HUB_CACHE / HF_HOME), then set "
            f"HF_HUB_OFFLINE=1 on workers that must not reach the hub; or set the project's {field} (project "
            f"settings, Generation) to a local directory holding it."
        )
        if not offline():
            fix += " A gated repository also needs HF_TOKEN on the worker."
    return ModelLoadError(f"{found} ({_first_line(exc)}).\n{fix}")


def _not_valid_json(name: str, revision: str, files: tuple[str, ...], exc: BaseException) -> str | None:
    """What is damaged if one of `files` is there but is not JSON (a copy or download cut short): in a local directory,
    the first such file; for a hub id, when a JSON decode error caused `exc`. None otherwise."""
    if Path(name).is_dir():
        for file in files:
            path = Path(name) / file
            if path.is_file():
                try:
                    json.loads(path.read_bytes())
                except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                    return f"{path} is there but is not valid JSON ({_first_line(err)})"
        return None
    cause, depth = exc, 0
    while cause is not None and depth < 10:
        if isinstance(cause, (json.JSONDecodeError, UnicodeDecodeError)):
            return f"{_where(name, revision)} has a file that is not valid JSON ({_first_line(exc)})"
        cause, depth = cause.__cause__ or cause.__context__, depth + 1
    return None


def damaged(what: str, field: str, name: str, problem: str) -> ModelLoadError:
    """A load error for a file that is there but cannot be read: copying it again fixes it, not pointing elsewhere."""
    again = (
        "copy it there again on every GPU worker"
        if _looks_local(name)
        else f"download it again (`hf download {name} --force-download`)"
    )
    return ModelLoadError(
        f"{what} is damaged: {problem}.\nFix: the file is damaged or incomplete; {again}, or set the project's "
        f"{field} (project settings, Generation) to another directory."
    )


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


def _resolve(spec: ModelSpec):
    """Base config, adapter config and tokenizer: the small files, no weights."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        base_config = AutoConfig.from_pretrained(spec.base_model, **_kwargs(spec, spec.base_revision))
    except (OSError, ValueError) as exc:
        if problem := _not_valid_json(spec.base_model, spec.base_revision, ("config.json",), exc):
            raise damaged("Base model config", "Base model", spec.base_model, problem) from None
        raise missing("Base model weights", "Base model", spec.base_model, spec.base_revision, spec, exc) from None

    adapter_config = None
    if spec.adapter:
        from peft import PeftConfig

        try:
            adapter_config = PeftConfig.from_pretrained(spec.adapter, **_kwargs(spec, spec.adapter_revision))
        except (OSError, ValueError) as exc:
            if problem := _not_valid_json(spec.adapter, spec.adapter_revision, ("adapter_config.json",), exc):
                raise damaged("Adapter config", "Adapter", spec.adapter, problem) from None
            raise missing("Adapter", "Adapter", spec.adapter, spec.adapter_revision, spec, exc) from None
        if Path(spec.adapter).is_dir() and not any((Path(spec.adapter) / f).is_file() for f in ADAPTER_WEIGHT_FILES):
            # peft would take the directory for a hub id and say only that the name is not a valid repo id.
            raise ModelLoadError(
                f"Adapter weights not found: local directory {spec.adapter} has adapter_config.json but no "
                f"{' or '.join(ADAPTER_WEIGHT_FILES)}.\nFix: copy the adapter's weight file there on every GPU worker, "
                f"or set the project's Adapter (project settings, Generation) to a directory that holds it."
            )

    from_adapter = bool(spec.adapter) and (Path(spec.adapter) / "tokenizer_config.json").exists()
    source, revision = (spec.adapter, spec.adapter_revision) if from_adapter else (spec.base_model, spec.base_revision)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **_kwargs(spec, revision))
    except (OSError, ValueError, TypeError) as exc:
        field = "Adapter" if from_adapter else "Base model"
        if problem := _not_valid_json(source, revision, ("tokenizer_config.json", "tokenizer.json"), exc):
            raise damaged("Tokenizer", field, source, problem) from None
        raise missing("Tokenizer", field, source, revision, spec, exc) from None
    return base_config, adapter_config, tokenizer


def preflight(spec: ModelSpec, *, max_new_tokens: int | None = None) -> str:
    """What a run needs before any weights are read: base model, adapter and tokenizer resolve at their revisions (the
    local directory, or the cache under HF_HUB_OFFLINE), the adapter fits the base, checked against the base's
    modules built on the meta device (no memory), and the run's max new tokens leave room for a prompt in the model's
    context. Raises ModelLoadError saying what is wrong and how to fix it; returns a one-line summary."""
    import torch
    from transformers import AutoModelForCausalLM

    base_config, adapter_config, tokenizer = _resolve(spec)
    context = getattr(base_config, "max_position_embeddings", None)
    if max_new_tokens and context and max_new_tokens >= context:
        raise ModelLoadError(
            f"The project's max new tokens ({max_new_tokens}) fill the whole context of {_where(spec.base_model, spec.base_revision)} "
            f"({context} tokens): no prompt would fit.\nFix: lower the project's max new tokens (the model card uses 256)."
        )
    if adapter_config is not None:
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(base_config)
        check_adapter_fits(
            adapter_config=adapter_config,
            base_config=base_config,
            base_model_name=spec.base_model,
            module_names={name for name, _ in skeleton.named_modules()},
        )
    return (
        f"{_where(spec.base_model, spec.base_revision)} ({getattr(base_config, 'model_type', '?')}, "
        f"{getattr(base_config, 'num_hidden_layers', '?')} layers)"
        + (f" + adapter {_where(spec.adapter, spec.adapter_revision)}" if spec.adapter else "")
        + f", tokenizer of {len(tokenizer)} tokens"
    )


def load_model(spec: ModelSpec, *, device: str | None = None) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    base_config, adapter_config, tokenizer = _resolve(spec)
    try:
        model = AutoModelForCausalLM.from_pretrained(spec.base_model, dtype=dtype, **_kwargs(spec, spec.base_revision))
    except (OSError, ValueError) as exc:
        raise missing("Base model weights", "Base model", spec.base_model, spec.base_revision, spec, exc) from None
    except Exception as exc:  # present but unreadable: a damaged or partial download (e.g. a SafetensorError)
        raise ModelLoadError(
            f"Base model weights could not be read: {_where(spec.base_model, spec.base_revision)} "
            f"({type(exc).__name__}: {_first_line(exc)}).\nFix: the weight files are damaged or incomplete; copy or "
            f"download them again (`hf download` resumes), or set the project's Base model to another directory."
        ) from exc

    if adapter_config is not None:
        check_adapter_fits(
            adapter_config=adapter_config,
            base_config=base_config,
            base_model_name=spec.base_model,
            module_names={name for name, _ in model.named_modules()},
        )
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, spec.adapter, **_kwargs(spec, spec.adapter_revision))
        except (OSError, ValueError) as exc:
            raise missing("Adapter weights", "Adapter", spec.adapter, spec.adapter_revision, spec, exc) from None
        except Exception as exc:  # present but unreadable, as for the base weights above
            raise ModelLoadError(
                f"Adapter weights could not be read: {_where(spec.adapter, spec.adapter_revision)} "
                f"({type(exc).__name__}: {_first_line(exc)}).\nFix: the weight files are damaged or incomplete; copy or "
                f"download them again (`hf download` resumes), or set the project's Adapter to another directory."
            ) from exc
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
    return LoadedModel(
        spec=spec, model=model, tokenizer=tokenizer, device=device, dtype=str(dtype).replace("torch.", ""), eos_token_id=eos
    )
