"""Bulk rejection and its undo in headless Chromium, with a search term the bulk form used to drop."""

from __future__ import annotations

import pytest

from tests.browser import chromium_page, log_in
from tests.factories import make_pairs
from workbench.generation.models import PairStatus, QAPair
from workbench.review.models import BulkAction

XSS = '<img src=x onerror="window.pwned=1">'


@pytest.mark.django_db(transaction=True)
def test_bulk_reject_the_searched_pairs_confirm_and_undo(live_server, project, owner):
    targets = make_pairs(project, 3, question="No. {i} 조항은 무엇인가요? " + XSS)
    others = make_pairs(project, 4, question="다른 질문 {i}?")
    base = live_server.url
    with chromium_page() as page:
        log_in(page, base, owner.username)
        page.goto(f"{base}/p/{project.slug}/pairs/")
        page.fill("#id_q", "No")
        page.click("#pair-filters button[type=submit]")
        page.wait_for_selector("#pair-count:text('3 pairs')")
        assert page.inner_text("#bulk-count") == "3"

        page.fill("#id_reason", "조항 질문 일괄 거절")
        page.click("#bulk-reject button[type=submit]")
        page.wait_for_selector("#bulk-confirm")
        assert page.inner_text("h1") == "Reject 3 pending pairs?"
        assert page.locator("#bulk-pairs tbody tr").count() == 3
        assert XSS in page.inner_text("#bulk-pairs")  # shown as text, never run
        assert not QAPair.objects.filter(status=PairStatus.REJECTED).exists()  # nothing yet
        page.click("#bulk-confirm button[type=submit]")

        page.wait_for_selector(".messages li.success")
        assert "Rejected 3 pending pairs" in page.inner_text(".messages")
        assert set(QAPair.objects.filter(status=PairStatus.REJECTED).values_list("pk", flat=True)) == {p.pk for p in targets}
        assert not QAPair.objects.filter(pk__in=[p.pk for p in others]).exclude(status=PairStatus.PENDING).exists()

        action = BulkAction.objects.get()
        page.click(f"#bulk-actions tr[data-action='{action.pk}'] button")
        page.wait_for_selector(f"#bulk-actions tr[data-action='{action.pk}'] .bulk-undo:text('Undone by')")
        assert "3 pairs back" in page.inner_text(".messages")
        assert page.evaluate("window.pwned") is None and page.csp_violations == []
    assert not QAPair.objects.exclude(status=PairStatus.PENDING).exists()
