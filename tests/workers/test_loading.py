"""Loading real weights with transformers + peft: merge, revisions, offline mode, and adapter/base checks."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from workers.loading import ModelLoadError, ModelSpec, load_model


def logits(loaded, ids=(128000, 300, 301, 302)):
    with torch.no_grad():
        return loaded.model(torch.tensor([list(ids)])).logits


def test_merged_adapter_equals_unmerged_and_differs_from_base(tiny_model):
    merged = load_model(ModelSpec(base_model=tiny_model["base"], adapter=tiny_model["adapter"]), device="cpu")
    unmerged = load_model(ModelSpec(base_model=tiny_model["base"], adapter=tiny_model["adapter"], merge=False), device="cpu")
    base = load_model(ModelSpec(base_model=tiny_model["base"]), device="cpu")
    assert torch.allclose(logits(merged), logits(unmerged), atol=1e-4)
    assert not torch.allclose(logits(merged), logits(base), atol=1e-3)
    assert type(merged.model).__name__ == "LlamaForCausalLM"  # merged: no peft wrapper left
    assert merged.dtype == "float32" and merged.device == "cpu"
    assert merged.eos_token_id == 128009


def test_missing_base_names_what_is_missing(tmp_path):
    with pytest.raises(ModelLoadError, match=f"Base model weights not found: local directory {tmp_path}"):
        load_model(ModelSpec(base_model=str(tmp_path)), device="cpu")


def test_missing_adapter_names_what_is_missing(tiny_model, tmp_path):
    with pytest.raises(ModelLoadError, match="Adapter not found"):
        load_model(ModelSpec(base_model=tiny_model["base"], adapter=str(tmp_path / "nope")), device="cpu")


def _model_copy(tiny_model, tmp_path):
    base, adapter = tmp_path / "base", tmp_path / "adapter"
    shutil.copytree(tiny_model["base"], base)
    shutil.copytree(tiny_model["adapter"], adapter)
    return ModelSpec(base_model=str(base), adapter=str(adapter))


def _cut_short(path):
    path.write_bytes(path.read_bytes()[:60])


def test_missing_adapter_weights_name_the_file(tiny_model, tmp_path):
    from workers.loading import preflight

    spec = _model_copy(tiny_model, tmp_path)
    (tmp_path / "adapter" / "adapter_model.safetensors").unlink()
    message = (
        f"Adapter weights not found: local directory {spec.adapter} has adapter_config.json but no adapter_model.safetensors"
    )
    with pytest.raises(ModelLoadError, match=message):
        preflight(spec)  # a run is refused before any worker loads weights
    with pytest.raises(ModelLoadError, match=message) as error:
        load_model(spec, device="cpu")
    assert "Repo id" not in str(error.value)


@pytest.mark.parametrize(
    "folder,file,what,field",
    [
        ("base", "config.json", "Base model config", "Base model"),
        ("adapter", "adapter_config.json", "Adapter config", "Adapter"),
        ("base", "tokenizer.json", "Tokenizer", "Base model"),
        ("base", "tokenizer_config.json", "Tokenizer", "Base model"),
    ],
)
def test_damaged_config_is_reported_as_damaged_not_missing(tiny_model, tmp_path, folder, file, what, field):
    spec = _model_copy(tiny_model, tmp_path)
    _cut_short(tmp_path / folder / file)
    with pytest.raises(ModelLoadError) as error:
        load_model(spec, device="cpu")
    message = str(error.value)
    assert message.startswith(f"{what} is damaged: {tmp_path / folder / file} is there but is not valid JSON")
    assert (
        f"Fix: the file is damaged or incomplete; copy it there again on every GPU worker, or set the project's {field}"
        in message
    )
    assert "not found" not in message


def test_damaged_adapter_weights_are_reported_as_damaged(tiny_model, tmp_path):
    spec = _model_copy(tiny_model, tmp_path)
    _cut_short(tmp_path / "adapter" / "adapter_model.safetensors")
    with pytest.raises(ModelLoadError, match=r"(?s)Adapter weights could not be read: local directory .*damaged or incomplete"):
        load_model(spec, device="cpu")


def test_offline_hub_id_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"MLP-KTLim/llama-3-Korean-Bllossom-8B@abc123 \(offline mode"):
        load_model(
            ModelSpec(base_model="MLP-KTLim/llama-3-Korean-Bllossom-8B", base_revision="abc123", cache_dir=str(tmp_path)),
            device="cpu",
        )


def _adapter_copy(tiny_model, tmp_path, **changes):
    copy = tmp_path / "adapter"
    shutil.copytree(tiny_model["adapter"], copy)
    config = json.loads((copy / "adapter_config.json").read_text())
    config.update(changes)
    (copy / "adapter_config.json").write_text(json.dumps(config))
    return str(copy)


def test_adapter_for_another_base_is_refused():
    from types import SimpleNamespace

    from workers.loading import check_adapter_fits

    # Hub ids on both sides, as in production: an adapter declared for another base is refused before merging.
    with pytest.raises(
        ModelLoadError, match="trained on 'meta-llama/Llama-3.1-8B', not on 'MLP-KTLim/llama-3-Korean-Bllossom-8B'"
    ):
        check_adapter_fits(
            adapter_config=SimpleNamespace(base_model_name_or_path="meta-llama/Llama-3.1-8B", target_modules=["q_proj"], r=16),
            base_config=None,
            base_model_name="MLP-KTLim/llama-3-Korean-Bllossom-8B",
            module_names={"model.layers.0.self_attn.q_proj"},
        )


def test_adapter_targeting_missing_modules_is_refused(tiny_model, tmp_path):
    adapter = _adapter_copy(tiny_model, tmp_path, target_modules=["q_proj", "c_attn"])
    with pytest.raises(ModelLoadError, match="targets modules the base model does not have: c_attn"):
        load_model(ModelSpec(base_model=tiny_model["base"], adapter=adapter), device="cpu")


def test_max_new_tokens_that_fill_the_context_fail_the_model_check(tiny_model):
    from workers.loading import preflight

    spec = ModelSpec(base_model=tiny_model["base"], adapter=tiny_model["adapter"])
    assert "layers" in preflight(spec, max_new_tokens=256)  # the tiny model's context is 1,024 tokens
    with pytest.raises(ModelLoadError, match=r"max new tokens \(1024\) fill the whole context .* \(1024 tokens\)"):
        preflight(spec, max_new_tokens=1024)
