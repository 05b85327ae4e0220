"""What the random-weight model cannot do, made up the same way in every process of `benchmarks/pipeline.py`.

Random weights almost never sample end-of-turn and write no Korean. So each (chunk, sample) gets
- an answer length drawn uniformly from 60-256 new tokens, seeded by the prompt and the sample index: the request's token budget, so
  the sequence stops there as the real model stops at its own end of turn;
- the text of a realistic model output for that chunk (`PIPELINE_OUTPUTS`, written by the benchmark: mostly good pairs
  quoting the chunk, some echoed, cut or broken ones, as the model card's failure case), so the quality filters on the
  worker's writer thread do their real work on every stored pair.
The GPU work, the scheduling, the storing and the filters are the product's own; only the token ids' meaning is not.
"""

from __future__ import annotations

import json
import os
import random
import zlib
from dataclasses import dataclass

LENGTHS = (60, 256)


def budget_for(key, prompt_ids) -> int:
    """Seeded by the prompt and the sample index: the same chunk text gets the same lengths in every project."""
    return random.Random(f"{zlib.crc32(repr(list(prompt_ids)).encode())}:{key[1]}").randint(*LENGTHS)


def install() -> None:
    from workers import engine

    outputs_path = os.environ.get("PIPELINE_OUTPUTS", "")
    outputs = {int(k): v for k, v in json.loads(open(outputs_path, encoding="utf-8").read()).items()} if outputs_path else {}
    base = engine.SampleRequest

    @dataclass(frozen=True)
    class StandInRequest(base):
        def __post_init__(self):
            if self.max_new_tokens is None:
                object.__setattr__(self, "max_new_tokens", budget_for(self.key, self.prompt_ids))

    engine.SampleRequest = StandInRequest
    result = engine.Engine._result

    def _result(self, request, generated, max_new_tokens, duration_ms):
        out = result(self, request, generated, max_new_tokens, duration_ms)
        texts = outputs.get(request.key[0])
        if texts:
            out.text, out.finish_reason = texts[request.key[1] % len(texts)]
        return out

    engine.Engine._result = _result
