"""The review page marks the facts of an answer that the source lacks (headless Chromium), as text, never markup."""

from __future__ import annotations

import pytest

from tests.browser import chromium_page, log_in
from tests.quality.test_flags_in_db import make_pairs
from workbench.quality.services import pairs_assess

SOURCE = (
    "제70조 대통령의 임기는 5년으로 하며, 중임할 수 없다. 제128조 헌법개정은 국회재적의원 과반수 또는 대통령의 발의로 제안된다."
)
ANSWER = '대통령의 임기는 4년이며 <b onmouseover="window.pwned=1">WHO</b> 기준을 따릅니다.'


@pytest.mark.django_db(transaction=True)
def test_missing_facts_are_marked_on_the_review_page(live_server, project, reviewer):
    pairs = make_pairs(project, [f"[[Q]] 대통령의 임기는 몇 년인가요?\n[[A]] {ANSWER}"], chunk_text=SOURCE)
    pairs_assess(pair_ids=[pairs[0].pk])
    with chromium_page() as page:
        log_in(page, live_server.url, reviewer)
        page.goto(f"{live_server.url}/p/{project.slug}/review/")
        page.wait_for_selector("#unsupported-answer")
        flags = page.inner_text("#flags")
        assert "unsupported" in flags and "Not found in the source" in flags and "“4년”" in flags
        marked = page.eval_on_selector_all("#unsupported-answer mark", "els => els.map(e => e.textContent)")
        assert "4년" in marked and "WHO" in marked and "5년" not in marked
        assert page.inner_text("#unsupported-answer") == ANSWER  # the answer's markup shown as text
        page.hover("#unsupported-answer")
        assert page.evaluate("window.pwned") is None and page.csp_violations == []
