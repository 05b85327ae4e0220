"""The model card's example article and its five real outputs, read from tests/fixtures/model-card/."""

from __future__ import annotations

import re

from tests.conftest import FIXTURES

CARD = FIXTURES / "model-card" / "ko-genstruct-v0.2-simple-qa-model-card.md"


def article() -> str:
    text = CARD.read_text(encoding="utf-8")
    return re.search(r'text = """(.*?)"""', text, re.DOTALL).group(1)


def outputs() -> list[str]:
    """The five outputs. The card's display wrapped long lines mid-word; only the break before [[A]] is real."""
    text = CARD.read_text(encoding="utf-8")
    block = text.split("## 생성 결과", 1)[1].split("```")[1]
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith("ㄴ NOTE")]
    joined = "".join(lines)
    parts = ["[[Q]]" + p for p in joined.split("[[Q]]")[1:]]
    return [p.replace("[[A]]", "\n[[A]]").strip() for p in parts]
