"""Skip, decide, next and undo on the reviewer's page in headless Chromium."""

from __future__ import annotations

import pytest

from tests.browser import chromium_page, log_in
from tests.factories import make_pairs
from tests.review.browser_steps import shown, wait_for_preload
from workbench.generation.models import PairStatus, QAPair


@pytest.mark.django_db(transaction=True)
def test_skip_decide_next_and_undo(live_server, project, reviewer):
    pairs = make_pairs(project, 4)
    base = live_server.url
    with chromium_page() as page:
        log_in(page, base, reviewer)
        page.goto(f"{base}/p/{project.slug}/review/")
        shown(page, pairs[0])
        wait_for_preload(page, pairs[0].pk)
        page.keyboard.press("s")  # skip: the next pair, and the skipped one goes behind the rest of the queue
        shown(page, pairs[1])
        wait_for_preload(page, pairs[1].pk)
        page.keyboard.press("a")
        shown(page, pairs[2])  # not the skipped pair 0
        wait_for_preload(page, pairs[2].pk)

        page.keyboard.press("u")  # decide then undo: the approved pair 1 comes back, and it is the one shown
        shown(page, pairs[1], version=3)
        assert f"pair {pairs[1].pk} is back with you" in page.inner_text(".messages")
        assert QAPair.objects.get(pk=pairs[1].pk).status == PairStatus.PENDING

        wait_for_preload(page, pairs[1].pk)
        page.keyboard.press("s")  # skip then undo: the skipped pair comes back
        shown(page, pairs[2])
        page.keyboard.press("u")
        shown(page, pairs[1], version=4)
        assert f"pair {pairs[1].pk} is back with you" in page.inner_text(".messages")

        wait_for_preload(page, pairs[1].pk)
        for expected in (pairs[2], pairs[3]):
            page.keyboard.press("a")
            shown(page, expected)
            wait_for_preload(page, expected.pk)
        page.keyboard.press("a")
        shown(page, pairs[0])  # the queue is done: the pair skipped at the start comes back last
        assert page.csp_violations == []
    statuses = dict(QAPair.objects.filter(project=project).values_list("pk", "status"))
    assert [statuses[p.pk] for p in pairs] == ["pending", "approved", "approved", "approved"]
