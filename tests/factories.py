"""Test data builders, in one place."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model

from workbench.projects.models import Project
from workbench.projects.services import project_create

_seq = itertools.count(1)


def make_user(username: str | None = None, *, password: str = "pw-for-tests-only", **extra):
    username = username or f"user{next(_seq)}"
    return get_user_model().objects.create_user(username=username, password=password, **extra)


def make_project(*, slug: str | None = None, name: str | None = None, admins=(), reviewers=(), **fields) -> Project:
    n = next(_seq)
    return project_create(slug=slug or f"project-{n}", name=name or f"Project {n}", admins=admins, reviewers=reviewers, **fields)


def make_pairs(
    project,
    n: int,
    *,
    chunk_text: str | None = None,
    question: str = "질문 {i}은 무엇인가요?",
    answer: str = "답변 {i}입니다.",
    flags_every: int = 0,
    with_generation: bool = False,
):
    """n pending pairs on one chunk of one document; every `flags_every`-th pair flagged `echo`."""
    from workbench.documents.models import Chunk, SourceDocument
    from workbench.generation.models import Generation, GenerationRun, QAPair
    from workbench.quality.models import PairFlag

    text = chunk_text or "대한민국은 민주공화국이다. 대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다."
    seq = next(_seq)
    doc = SourceDocument.objects.create(project=project, content_hash=f"doc-{seq}", text=text, title=f"문서 {seq}")
    chunk = Chunk.objects.create(document=doc, chunking_key="k", index=0, text=text, start=0, end=len(text), size=len(text))
    run = GenerationRun.objects.create(project=project) if with_generation else None
    pairs = []
    for i in range(n):
        flagged = bool(flags_every) and i % flags_every == 0
        generation = (
            Generation.objects.create(
                run=run,
                chunk=chunk,
                sample_index=i,
                raw_text=f"[[Q]] {question.format(i=i)}\n[[A]] {answer.format(i=i)}",
                finish_reason="stop",
                completion_tokens=20,
            )
            if run
            else None
        )
        pairs.append(
            QAPair(
                project=project,
                chunk=chunk,
                generation=generation,
                question=question.format(i=i),
                answer=answer.format(i=i),
                original_question=question.format(i=i),
                original_answer=answer.format(i=i),
                flags=["echo"] if flagged else [],
                is_flagged=flagged,
            )
        )
    pairs = QAPair.objects.bulk_create(pairs, batch_size=1000)
    PairFlag.objects.bulk_create(
        PairFlag(
            pair=p,
            name="echo",
            severity="reject",
            score=0.9,
            reason="The question copies the source.",
            details={"spans": [{"field": "question", "start": 0, "end": 5, "source_start": 0, "source_end": 12}]},
        )
        for p in pairs
        if p.is_flagged
    )
    return pairs
