"""The demo model: trained once per machine with progress on the way, then copied into any new data dir."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from workbench.demo.services import demo_model_cache_dir, demo_model_ensure


def test_trained_once_per_machine_with_progress_then_copied(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    first, second = [], []
    with override_settings(DATA_DIR=tmp_path / "one"):
        model = demo_model_ensure(steps=3, log=first.append)
    text = "\n".join(first)
    assert "Training the demo model" in text and "building a tokenizer" in text and "step 3/3 · loss" in text
    assert "left" in text and "demo model ready" in text
    assert (demo_model_cache_dir(steps=3) / "demo-model.json").exists()

    with override_settings(DATA_DIR=tmp_path / "two"):
        copy = demo_model_ensure(steps=3, log=second.append)
    assert "Copying the demo model trained earlier" in "\n".join(second) and "Training" not in "\n".join(second)
    assert copy != model and (copy / "demo-model.json").exists()
    # The copy's adapter names its own base, not the first data dir's.
    config = json.loads((copy / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(copy / "base")

    from workers.loading import ModelSpec, load_model

    loaded = load_model(ModelSpec(base_model=str(copy / "base"), adapter=str(copy / "adapter")), device="cpu")
    assert loaded.tokenizer.convert_tokens_to_ids("<|eot_id|>") == 128009


def test_the_time_left_follows_the_recent_pace():
    from workers.demo_model import TimeLeft

    timeline = TimeLeft(steps=500, window=30)
    for step in range(1, 101):  # 100 steps at 0.1 s each
        timeline.add(step * 0.1, step)
    assert timeline.left() == pytest.approx(400 * 0.1)
    for step in range(101, 201):  # then the machine is loaded: 1 s a step
        timeline.add(10 + (step - 100) * 1.0, step)
    # The last 30 s are the slow steps only; the average since the start (0.55 s a step) would say 165 s.
    assert timeline.left() == pytest.approx(300 * 1.0)
