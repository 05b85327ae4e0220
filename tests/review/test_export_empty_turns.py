"""Exports never write an empty turn: a pair with an empty question or answer is left out and counted."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.factories import make_pairs
from workbench.exports.services import ExportOptions, export_write
from workbench.generation.models import PairStatus, QAPair


@pytest.mark.parametrize("fmt", ["messages", "alpaca", "sharegpt", "csv", "dpo"])
def test_exports_never_write_an_empty_turn(project, tmp_path, fmt):
    """Pairs approved before the guard existed (or set by hand) with an empty side are left out and counted."""
    good, empty_q, blank_a, invisible_a = make_pairs(project, 4)
    QAPair.objects.filter(pk=good.pk).update(status=PairStatus.EDITED, question="좋은 질문?", answer="좋은 답.")
    QAPair.objects.filter(pk=empty_q.pk).update(status=PairStatus.EDITED, question="", answer="답.")
    QAPair.objects.filter(pk=blank_a.pk).update(status=PairStatus.EDITED, question="질문?", answer=" \n")
    QAPair.objects.filter(pk=invisible_a.pk).update(status=PairStatus.EDITED, question="질문?", answer="\u200b\u3164")
    manifest = export_write(project=project, fmt=fmt, options=ExportOptions(metadata=True), out_dir=tmp_path)
    assert manifest["counts"]["total"] == 1 and manifest["counts"]["skipped_empty"] == 3
    assert any(w.startswith("3 pairs left out:") for w in manifest["warnings"])  # shown in the export list
    text = (tmp_path / manifest["files"][0]["file"]).read_text(encoding="utf-8")
    if fmt == "csv":
        assert [int(r["pair_id"]) for r in csv.DictReader(io.StringIO(text))] == [good.pk]
    else:
        rows = [json.loads(line) for line in text.splitlines()]
        assert [r["pair_id"] for r in rows] == [good.pk]
        assert '"content": ""' not in text and '"value": ""' not in text
