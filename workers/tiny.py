"""Tiny Llama-3-shaped models built locally: a byte-level BPE tokenizer trained on Korean text with the Llama-3
special tokens at their real ids (eos <|eot_id|> = 128009) and chat template, a small LlamaConfig, and a LoRA adapter
on all linear layers made with peft. The tests run the real loading, merging, prompting and generation code on them,
and the demo model (`workers/demo_model.py`) starts from them."""

from __future__ import annotations

from pathlib import Path

LLAMA3_SPECIAL = 256  # <|begin_of_text|> is 128000, <|eot_id|> 128009, ... up to 128255
LLAMA3_BASE_VOCAB = 128000
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
_NAMED = {
    0: "<|begin_of_text|>",
    1: "<|end_of_text|>",
    6: "<|start_header_id|>",
    7: "<|end_header_id|>",
    9: "<|eot_id|>",
}


def special_tokens() -> list[str]:
    names, reserved = [], 0
    for i in range(LLAMA3_SPECIAL):
        if i in _NAMED:
            names.append(_NAMED[i])
        else:
            names.append(f"<|reserved_special_token_{reserved}|>")
            reserved += 1
    return names


def build_tokenizer(texts: list[str], out_dir: Path, *, vocab_size: int = 2000):
    """Train a byte-level BPE on `texts`, pad its vocabulary to 128,000 so the special tokens get Llama-3's ids."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trained.train_from_iterator(
        texts,
        trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False),
    )
    model = trained.model
    vocab = trained.get_vocab()
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in _merges(trained)]
    for i in range(len(vocab), LLAMA3_BASE_VOCAB):
        vocab[f"<unused_{i}>"] = i
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens()])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|end_of_text|>",
    )
    fast.chat_template = LLAMA3_CHAT_TEMPLATE
    assert fast.convert_tokens_to_ids("<|eot_id|>") == 128009, "special tokens must keep Llama-3's ids"
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    del model
    return fast


def _merges(tokenizer) -> list:
    import json

    return json.loads(tokenizer.to_str())["model"]["merges"]


def build_base_model(
    tokenizer_dir: Path, out_dir: Path, *, hidden: int = 64, layers: int = 2, seed: int = 0, max_positions: int = 4096
):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=LLAMA3_BASE_VOCAB + LLAMA3_SPECIAL,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        bos_token_id=128000,
        eos_token_id=128009,
        pad_token_id=128001,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out_dir)
    return model


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def build_lora(base_dir: Path, out_dir: Path, *, r: int = 16, alpha: int = 16, seed: int = 1, base_name: str | None = None):
    """A LoRA like ko-genstruct's (r=16, alpha=16, all linear layers), with non-zero B so merging changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=LORA_TARGETS, init_lora_weights=False, task_type="CAUSAL_LM"
    )
    model = get_peft_model(base, config)
    model.peft_config["default"].base_model_name_or_path = base_name or str(base_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    return model
