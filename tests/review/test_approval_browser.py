"""Approving pairs with a reject-level flag, and empty pairs, on the reviewer's page in headless Chromium."""

from __future__ import annotations

import pytest

from tests.browser import chromium_page, log_in
from tests.factories import make_pairs
from tests.review.browser_steps import shown, wait_for_preload
from workbench.generation.models import PairStatus, QAPair
from workbench.quality.models import PairFlag


@pytest.mark.django_db(transaction=True)
def test_approving_flagged_and_empty_pairs(live_server, project, reviewer):
    empty, flagged = make_pairs(project, 2, question="질문 {i}은 무엇인가요?", answer="답변 {i}입니다.")
    QAPair.objects.filter(pk=empty.pk).update(question="", answer="", flags=["malformed"], is_flagged=True)
    QAPair.objects.filter(pk=flagged.pk).update(flags=["echo"], is_flagged=True)
    PairFlag.objects.create(pair=empty, name="malformed", severity="reject", score=1.0, reason="No [[Q]] or [[A]] found.")
    PairFlag.objects.create(pair=flagged, name="echo", severity="reject", score=0.9, reason="The question copies the source.")
    base = live_server.url
    with chromium_page() as page:
        log_in(page, base, reviewer)
        page.goto(f"{base}/p/{project.slug}/review/")
        shown(page, empty)
        wait_for_preload(page, empty.pk)
        page.keyboard.press("a")  # asked first: the flag is named, nothing is sent
        assert page.is_visible("#confirm-approve")
        assert "Reject-level flags: malformed" in page.inner_text("#confirm-approve")
        page.keyboard.press("a")  # confirmed, and still refused: the pair is empty
        page.wait_for_selector("#form-errors")
        assert "empty question cannot be approved" in page.inner_text("#form-errors")
        assert "empty answer cannot be approved" in page.inner_text("#form-errors")
        assert QAPair.objects.get(pk=empty.pk).status == PairStatus.PENDING

        page.select_option("#id_reason_preset", "Not Korean / broken formatting")
        page.focus("#id_reason")
        page.keyboard.press("Control+Enter")  # the way out is to reject it
        shown(page, flagged)
        page.keyboard.press("a")
        assert page.is_visible("#confirm-approve")
        page.keyboard.press("a")
        page.wait_for_selector("#queue-empty")
        assert page.csp_violations == []
    assert QAPair.objects.get(pk=empty.pk).status == PairStatus.REJECTED
    assert QAPair.objects.get(pk=flagged.pk).status == PairStatus.APPROVED
