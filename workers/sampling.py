"""One token per row of logits, drawn as the model card's `generate` call draws it, without a host synchronisation."""

from __future__ import annotations

import torch


def sample(logits, *, temperature: float, top_k: int, top_p: float):
    """Temperature, then top-k, then top-p, as transformers' `generate` applies them, then one draw per row."""
    if temperature <= 0:
        return logits.argmax(-1)
    indices = None
    if 0 < top_k < logits.shape[-1]:
        # The k likeliest, sorted: softmax over k, not the vocabulary. Taken on the logits as they come (bf16 on a
        # GPU): widening to fp32 is exact and dividing by the temperature keeps the order, so the k are the same, and
        # only k values per row are widened instead of the whole vocabulary.
        logits, indices = logits.topk(top_k, dim=-1)
    scores = logits.float() / temperature
    probs = torch.softmax(scores, dim=-1)
    if top_p < 1.0:
        if indices is None:
            probs, indices = probs.sort(dim=-1, descending=True)
        # Keep the likeliest tokens until their mass reaches top_p (the first always), as TopPLogitsWarper does.
        probs = probs.masked_fill(probs.cumsum(-1) - probs >= top_p, 0.0)
    # Sampling as a race of exponential clocks: argmax(p / E), E ~ Exp(1), draws index i with probability p_i;
    # unlike torch.multinomial it needs no host synchronisation, so it can live inside the CUDA graph.
    choice = (probs / torch.empty_like(probs).exponential_().clamp_(min=1e-20)).argmax(-1)
    return choice if indices is None else indices.gather(-1, choice[:, None])[:, 0]
