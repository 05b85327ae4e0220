"""The model card's five outputs for its example article: only the second (the echo) is flagged."""

from __future__ import annotations

import pytest

from tests.quality.card import article, outputs
from workbench.quality.filters import assess


def test_card_has_five_outputs():
    assert len(outputs()) == 5


@pytest.mark.parametrize("finish_reason", ["length", None])
def test_second_output_is_malformed_truncated_and_echo(finish_reason):
    result = assess(article(), outputs()[1], finish_reason=finish_reason)
    assert {"malformed", "truncated", "echo"} <= set(result.flag_names)
    echo = next(f for f in result.flags if f.name == "echo")
    assert "question copies" in echo.reason
    spans = echo.details["spans"]
    assert spans and all(article()[s["source_start"] : s["source_end"]] for s in spans)
    # The highlighted spans are really in the source, character for character.
    question = result.question
    for s in spans:
        assert question[s["start"] : s["end"]] == article()[s["source_start"] : s["source_end"]]


@pytest.mark.parametrize("index", [0, 2, 3, 4])
@pytest.mark.parametrize("finish_reason", ["stop", None])
def test_good_outputs_are_not_flagged_for_quoting_facts(index, finish_reason):
    result = assess(article(), outputs()[index], finish_reason=finish_reason)
    # Real outputs of the model: their answers restate the article in other words, and none of them is unsupported.
    assert not {"echo", "truncated", "malformed", "unsupported"} & set(result.flag_names), [f.reason for f in result.flags]
    assert result.question and result.answer
