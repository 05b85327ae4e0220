"""Question embeddings on the GPU workers, for the optional embedding-similarity duplicate check: the project's
sentence-embedding model (multilingual-e5, bge-m3 or any BERT-like encoder; a local directory or a hub id), mean
pooling over the tokens, L2-normalised, compared by cosine with the project's earlier questions.

Off unless the project names an embedding model. `build_tiny_encoder` makes a small local encoder for tests."""

from __future__ import annotations

import threading
from pathlib import Path

from celery import shared_task

_lock = threading.Lock()
_loaded: dict[str, tuple] = {}


def _load(model_name: str):
    with _lock:
        if model_name not in _loaded:
            import torch
            from django.conf import settings
            from transformers import AutoModel, AutoTokenizer

            cache = getattr(settings, "MODEL_CACHE_DIR", None)
            device = "cuda" if torch.cuda.is_available() else "cpu"
            tokenizer = AutoTokenizer.from_pretrained(model_name, cache_dir=cache)
            model = AutoModel.from_pretrained(
                model_name, cache_dir=cache, torch_dtype=torch.float16 if device == "cuda" else torch.float32
            )
            _loaded[model_name] = (tokenizer, model.to(device).eval(), device)
        return _loaded[model_name]


def _prefix(model_name: str) -> str:
    # e5 models were trained with "query: " before short texts to compare; other encoders take the text as it is.
    return "query: " if "e5" in model_name.lower() else ""


def embed(texts: list[str], *, model_name: str, batch_size: int = 128):
    """float32 CPU tensor [len(texts), dim] of unit vectors."""
    import torch

    tokenizer, model, device = _load(model_name)
    prefix = _prefix(model_name)
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                [prefix + t for t in texts[start : start + batch_size]],
                padding=True,
                truncation=True,
                max_length=128,
                return_tensors="pt",
            ).to(device)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled.float(), dim=-1).cpu())
    return torch.cat(out) if out else torch.empty(0, 0)


def nearest_earlier(pair_ids: list[int], vectors, earlier_ids: list[int], earlier_vectors, *, chunk: int = 65536):
    """For each pair, the earlier pair (lower id, other than itself) with the highest cosine: {pair_id: (id, cos)}.
    Earlier vectors are compared in slices on the GPU where there is one."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    ids = torch.tensor(pair_ids)
    all_ids = torch.tensor(earlier_ids + pair_ids)
    all_vectors = torch.cat([earlier_vectors, vectors]) if len(earlier_ids) else vectors
    best = torch.full((len(pair_ids),), -2.0)
    best_at = torch.full((len(pair_ids),), -1, dtype=torch.long)
    queries = vectors.to(device, torch.float32)
    for start in range(0, len(all_ids), chunk):
        keys = all_vectors[start : start + chunk].to(device, torch.float32)
        sims = (queries @ keys.T).cpu()
        sims[all_ids[start : start + chunk].unsqueeze(0) >= ids.unsqueeze(1)] = -2.0  # only earlier pairs
        value, at = sims.max(dim=1)
        better = value > best
        best[better], best_at[better] = value[better], at[better] + start
    return {pid: (int(all_ids[j]), float(v)) for pid, j, v in zip(pair_ids, best_at.tolist(), best.tolist()) if j >= 0}


@shared_task(name="workers.embeddings.embed_question_duplicates", acks_late=True)
def embed_question_duplicates(pair_ids: list[int]) -> int:
    """Embed these pairs' questions with the project's model, store the vectors, and flag as duplicates those whose
    cosine with an earlier question of the project reaches `duplicate.embedding_similarity`. Safe to run twice."""
    import numpy as np
    import torch

    from workbench.generation.models import QAPair
    from workbench.quality.filters import FilterConfig
    from workbench.quality.models import QuestionEmbedding
    from workbench.quality.services import model_question, pairs_flag_embedding_duplicates, question_embeddings_store

    # The model's questions, as the other flags judge the model's output (a reviewer's edit changes none of them).
    pairs = [p for p in QAPair.objects.filter(pk__in=pair_ids).select_related("project").order_by("id") if model_question(p)]
    if not pairs or not pairs[0].project.embedding_model:
        return 0
    project = pairs[0].project
    model_name = project.embedding_model
    vectors = embed([model_question(p) for p in pairs], model_name=model_name)
    question_embeddings_store(
        project=project,
        model=model_name,
        vectors={p.pk: vectors[i].numpy().astype(np.float16).tobytes() for i, p in enumerate(pairs)},
    )
    earlier = list(
        QuestionEmbedding.objects.filter(project=project, model=model_name, pair_id__lt=pairs[-1].pk)
        .exclude(pair_id__in=[p.pk for p in pairs])
        .values_list("pair_id", "vector")
    )
    earlier_vectors = (
        torch.from_numpy(np.stack([np.frombuffer(bytes(v), dtype=np.float16) for _, v in earlier]).astype(np.float32))
        if earlier
        else torch.empty(0, vectors.shape[1])
    )
    nearest = nearest_earlier([p.pk for p in pairs], vectors, [i for i, _ in earlier], earlier_vectors)
    threshold = FilterConfig.from_overrides(project.filter_thresholds)["duplicate.embedding_similarity"]
    hits = {pid: (other, cos) for pid, (other, cos) in nearest.items() if cos >= threshold}
    return pairs_flag_embedding_duplicates(similar=hits, model=model_name)


def build_tiny_encoder(texts: list[str], out_dir: Path, *, vocab_size: int = 800, hidden: int = 32) -> Path:
    """A small BERT encoder with a WordPiece tokenizer trained on `texts`, saved with save_pretrained (random
    weights: it runs the real loading, tokenising and pooling, not meaningful similarities)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
    )
    fast.save_pretrained(out_dir)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=160,
    )
    BertModel(config).save_pretrained(out_dir)
    return out_dir
