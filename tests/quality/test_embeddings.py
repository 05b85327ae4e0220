"""The optional embedding-similarity duplicate check: a tiny BERT encoder built locally, run by a real Celery worker on
the gpu queue after the pairs are assessed."""

from __future__ import annotations

import time

import pytest

from tests.conftest import SHARED_DATA
from tests.quality.test_flags_in_db import make_pairs
from workbench.generation.models import QAPair
from workbench.quality.models import PairFlag, QuestionEmbedding
from workbench.quality.services import pairs_assess
from workers.embeddings import build_tiny_encoder, embed

QUESTIONS = ["김치는 어떻게 만드나요?", "김치를 담그는 순서를 알려 주세요.", "국회의원의 임기는 몇 년인가요?"]


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    text = (SHARED_DATA / "constitution.txt").read_text(encoding="utf-8")
    return str(build_tiny_encoder([text, *QUESTIONS], tmp_path_factory.mktemp("encoder")))


def test_embedding_duplicates_flagged_by_a_gpu_queue_worker(celery_worker, project, tiny_encoder):
    vectors = embed(QUESTIONS, model_name=tiny_encoder)
    cosines = (vectors @ vectors.T).tolist()
    second, third = cosines[1][0], max(cosines[2][0], cosines[2][1])
    assert abs(second - third) > 1e-3
    threshold = (second + third) / 2
    project.embedding_model = tiny_encoder
    project.filter_thresholds = {"duplicate.embedding_similarity": threshold}
    project.save()
    pairs = make_pairs(project, [f"[[Q]] {q}\n[[A]] 답입니다." for q in QUESTIONS])
    pairs_assess(pair_ids=[p.pk for p in pairs])
    assert not any("duplicate" in QAPair.objects.get(pk=p.pk).flags for p in pairs)  # not lexical duplicates
    deadline = time.monotonic() + 180
    while QuestionEmbedding.objects.filter(pair__in=pairs).count() < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1)  # the flags are written in the same task, right after the vectors
    flagged = {p.pk for p in pairs if "duplicate" in QAPair.objects.get(pk=p.pk).flags}
    expected = {pairs[i].pk for i, cos in ((1, second), (2, third)) if cos >= threshold}
    assert flagged == expected and len(expected) == 1
    flag = PairFlag.objects.get(pair_id=expected.pop(), name="duplicate")
    assert "embeddings" in flag.reason and flag.details["embedding"] == tiny_encoder
    assert flag.score == pytest.approx(max(second, third), abs=0.01)
    stored = QuestionEmbedding.objects.get(pair=pairs[0])
    assert stored.model == tiny_encoder and len(bytes(stored.vector)) == 2 * vectors.shape[1]


def test_off_by_default(project):
    pairs = make_pairs(project, [f"[[Q]] {q}\n[[A]] 답입니다." for q in QUESTIONS])
    assert project.embedding_model == ""
    from django.db import transaction

    with transaction.atomic():
        pairs_assess(pair_ids=[p.pk for p in pairs])
        assert not transaction.get_connection().run_on_commit


def test_a_check_the_broker_did_not_take_is_kept_and_sent_by_the_sweep(transactional_db, project, tiny_encoder, monkeypatch):
    """The pairs are stored and assessed whatever the broker does; the embedding check it did not take waits in a row
    that the dispatch sweep sends once the broker answers, and the message then does its work."""
    import base64
    import json

    from tests.generation.test_dispatch import broker_down, broker_up, drop_broker_pools, redis
    from workbench.generation.tasks import dispatch_sweep
    from workbench.quality.models import EmbeddingDispatch
    from workers.embeddings import embed_question_duplicates

    drop_broker_pools()
    live = redis()
    live.delete("gpu")
    project.embedding_model = tiny_encoder
    project.filter_thresholds = {"duplicate.embedding_similarity": -1.0}  # every later question is "close"
    project.save()
    pairs = make_pairs(project, [f"[[Q]] {q}\n[[A]] 답입니다." for q in QUESTIONS])
    broker_down(monkeypatch)
    try:
        assert pairs_assess(pair_ids=[p.pk for p in pairs]) == 3  # no error for the storing thread
        (kept,) = EmbeddingDispatch.objects.all()
        assert kept.pair_ids == [p.pk for p in pairs] and kept.error
        assert dispatch_sweep()["embeddings"] == 0 and EmbeddingDispatch.objects.count() == 1  # still down
    finally:
        broker_up(monkeypatch)
    try:
        assert dispatch_sweep()["embeddings"] == 1 and not EmbeddingDispatch.objects.exists()
        (raw,) = live.lrange("gpu", 0, -1)
        message = json.loads(raw)
        assert message["headers"]["task"] == "workers.embeddings.embed_question_duplicates"
        (ids,) = json.loads(base64.b64decode(message["body"]))[0]
        assert ids == [p.pk for p in pairs]
        assert dispatch_sweep()["embeddings"] == 0  # sent once
    finally:
        live.delete("gpu")
    assert embed_question_duplicates(ids) == 2  # what the GPU worker does with it
    assert QuestionEmbedding.objects.filter(pair__in=pairs).count() == 3
