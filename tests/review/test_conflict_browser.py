"""An edit that meets a conflict after its lease expired, in headless Chromium: the draft survives and is re-applied."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser import chromium_page
from tests.factories import make_pairs, make_user
from tests.review.browser_steps import shown, wait_for_preload
from tests.review.test_review_browser import log_in
from workbench.generation.models import PairStatus, QAPair
from workbench.projects.models import Membership, Role
from workbench.review.models import ReviewDecision
from workbench.review.services import ReviewInput, pair_claim, pair_review


@pytest.mark.django_db(transaction=True)
def test_an_edit_survives_an_expired_lease_and_is_reapplied(live_server, project, reviewer):
    other = make_user("other")
    Membership.objects.create(project=project, user=other, role=Role.REVIEWER)
    pairs = make_pairs(project, 2)
    mine_q, mine_a = "내가 고친 질문입니까?", "첫 줄입니다.\n둘째 줄입니다."
    base = live_server.url
    with chromium_page() as page:
        log_in(page, base, reviewer)
        page.goto(f"{base}/p/{project.slug}/review/")
        shown(page, pairs[0])
        wait_for_preload(page, pairs[0].pk)
        page.keyboard.press("e")
        page.keyboard.press("Control+a")
        page.keyboard.type(mine_q)
        page.focus("#id_answer")
        page.keyboard.press("Control+a")
        page.keyboard.type("첫 줄입니다.")
        page.keyboard.press("Enter")
        page.keyboard.type("둘째 줄입니다.")

        # The lease runs out while the reviewer types; another reviewer takes the pair and changes it (an admin's
        # decision would stand: tests/review/test_pair_page.py).
        QAPair.objects.filter(pk=pairs[0].pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        taken = pair_claim(project=project, reviewer=other)
        assert taken.pk == pairs[0].pk
        pair_review(
            pair_id=taken.pk,
            reviewer=other,
            data=ReviewInput("edit", 1, question="다른 검수자가 고친 질문?", answer="다른 검수자의 답."),
        )

        page.focus("#id_question")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#conflict")
        assert "changed since you opened it" in page.inner_text("#conflict")
        assert "다른 검수자가 고친 질문?" in page.inner_text("#conflict-current")
        assert page.inner_text("#your-question") == mine_q
        assert page.inner_text("#your-answer") == mine_a
        draft = json.loads(page.evaluate(f"localStorage.getItem('workbench-draft:{pairs[0].pk}:1')"))
        assert (draft["q"], draft["a"]) == (mine_q, mine_a)  # kept: the server did not take the edit
        assert page.input_value("#id_question") == "다른 검수자가 고친 질문?"  # the fields hold the pair as it is now

        page.click("#btn-reapply")
        assert (page.input_value("#id_question"), page.input_value("#id_answer")) == (mine_q, mine_a)
        page.focus("#id_question")
        page.keyboard.press("Control+Enter")  # decided again, against the version now shown
        shown(page, pairs[1])
        leftover = page.evaluate(f"Object.keys(localStorage).filter(k => k.startsWith('workbench-draft:{pairs[0].pk}:'))")
        assert leftover == []
        assert page.csp_violations == []
    stored = QAPair.objects.get(pk=pairs[0].pk)
    assert (stored.question, stored.answer, stored.status, stored.version) == (mine_q, mine_a, PairStatus.EDITED, 3)
    history = list(ReviewDecision.objects.filter(pair=stored).order_by("id").values_list("reviewer__username", "question_after"))
    assert history == [("other", "다른 검수자가 고친 질문?"), ("reviewer", mine_q)]
