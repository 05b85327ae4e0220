"""A reviewer's text is never dropped by the page, in headless Chromium: when the session ends while they work (a
logout in another tab, an expiry) the decision is not taken for recorded, the page says so, and the text survives a new
login; A after an unsaved edit approves the text on screen."""

from __future__ import annotations

import json

import pytest
from django.contrib.sessions.models import Session

from tests.browser import chromium_page
from tests.factories import make_pairs
from tests.review.browser_steps import open_queue, replace_answer, shown, wait_for_preload
from tests.review.test_review_browser import log_in
from workbench.generation.models import PairStatus, QAPair
from workbench.review.models import ReviewDecision


@pytest.mark.django_db(transaction=True)
def test_an_edit_sent_after_the_session_ended_is_kept_and_said_not_recorded(live_server, project, reviewer):
    pairs = make_pairs(project, 3)
    mine = "세션이 끝난 뒤 고친 답변입니다."
    base = live_server.url
    with chromium_page() as page:
        open_queue(page, base, project, reviewer, pairs[0])
        Session.objects.all().delete()  # logged out elsewhere
        page.keyboard.press("e")
        replace_answer(page, mine)
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#review-error")
        assert "Your session has ended, so this decision was not recorded" in page.inner_text("#review-error")
        shown(page, pairs[0])  # the pair stays on screen, with the reviewer's text
        assert page.input_value("#id_answer") == mine
        page.keyboard.press("Escape")
        page.keyboard.press("a")  # a second try while logged out: still nothing sent, still said
        assert "Your session has ended" in page.inner_text("#review-error")
        assert "null" not in page.inner_text("main")
        draft = json.loads(page.evaluate(f"localStorage.getItem('workbench-draft:{pairs[0].pk}:1')"))
        assert draft["a"] == mine

        log_in(page, base, reviewer)  # logged in again; the page reloaded shows the draft
        page.goto(f"{base}/p/{project.slug}/review/")
        shown(page, pairs[0])
        assert page.input_value("#id_answer") == mine
        assert page.csp_violations == []
    stored = QAPair.objects.get(pk=pairs[0].pk)
    assert stored.status == PairStatus.PENDING and stored.answer != mine
    assert not ReviewDecision.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_session_that_ends_before_the_next_pair_is_fetched_shows_no_broken_page(live_server, project, reviewer):
    pairs = make_pairs(project, 3)
    base = live_server.url
    with chromium_page() as page:
        open_queue(page, base, project, reviewer, pairs[0])
        page.keyboard.press("a")  # recorded; the next pair shows from the preload, which then asks for the one after
        shown(page, pairs[1])
        Session.objects.all().delete()
        wait_for_preload(page, pairs[1].pk)
        page.keyboard.press("a")
        page.wait_for_selector("#review-error")
        assert "Your session has ended" in page.inner_text("#review-error")
        assert "null" not in page.inner_text("main")
        shown(page, pairs[1])
    assert list(QAPair.objects.order_by("pk").values_list("status", flat=True)) == [
        PairStatus.APPROVED,
        PairStatus.PENDING,
        PairStatus.PENDING,
    ]


@pytest.mark.django_db(transaction=True)
def test_a_after_an_unsaved_edit_approves_the_text_on_screen(live_server, project, reviewer):
    """E, a change, Esc (leaves the field), then A: the pair is approved as the fields show it, the edit is not dropped."""
    pairs = make_pairs(project, 2)
    mine = "화면에 보이는 고친 답변입니다."
    base = live_server.url
    with chromium_page() as page:
        open_queue(page, base, project, reviewer, pairs[0])
        replace_answer(page, mine)
        page.keyboard.press("Escape")
        page.keyboard.press("a")
        shown(page, pairs[1])
    stored = QAPair.objects.get(pk=pairs[0].pk)
    assert (stored.status, stored.answer) == (PairStatus.EDITED, mine)
