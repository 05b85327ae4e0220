"""The reviewer's page in headless Chromium: keyboard review, edit, reject, a conflict, highlights, drafts, and
hostile text from documents and model outputs staying text."""

from __future__ import annotations

import pytest

from tests.browser import chromium_page, log_in
from tests.factories import make_pairs
from workbench.generation.models import PairStatus, QAPair
from workbench.review.models import ReviewDecision

XSS_DOC = '대한민국은 민주공화국이다. <script>window.pwned=1</script><img src=x onerror="window.pwned=2"> 모든 권력은 국민으로부터 나온다.'
XSS_OUT = '<img src=x onerror="window.pwned=3">'


@pytest.mark.django_db(transaction=True)
def test_review_with_the_keyboard(live_server, project, reviewer):
    pairs = make_pairs(project, 4, chunk_text=XSS_DOC, question="질문 {i} " + XSS_OUT, flags_every=4, with_generation=True)
    base = live_server.url
    with chromium_page() as page:
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        log_in(page, base, reviewer)
        page.goto(f"{base}/p/{project.slug}/review/")
        # Flagged first: pair 0, with its copied span highlighted and its flag explained.
        assert page.inner_text("#pair-title").startswith(f"Pair {pairs[0].pk}")
        assert page.inner_text("#source-text mark") == XSS_DOC[0:12]
        assert "The question copies the source." in page.inner_text("#flags")
        assert "Keys:" in page.inner_text("#shortcuts")
        # Hostile text is shown as text, never run.
        assert "<script>window.pwned=1</script>" in page.inner_text("#source-text")
        assert page.input_value("#id_question").endswith(XSS_OUT)
        assert page.evaluate("window.pwned") is None

        page.evaluate("window.samePage = true")
        page.wait_for_function("() => performance.getEntriesByType('resource').some(e => e.name.includes('/review/next'))")
        page.keyboard.press("a")  # approve a pair with a reject-level flag: asked first, nothing sent
        assert "Reject-level flags: echo" in page.inner_text("#confirm-approve")
        assert QAPair.objects.get(pk=pairs[0].pk).status == PairStatus.PENDING
        page.keyboard.press("a")  # confirmed: the preloaded next pair replaces this one without a page load
        page.wait_for_selector(f"#review[data-pair='{pairs[1].pk}']")
        assert page.evaluate("window.samePage") is True

        page.keyboard.press("e")  # edit: focus the question
        page.keyboard.press("Control+a")
        page.keyboard.type("고친 질문입니까?")
        page.reload()  # the draft survives a reload
        assert page.input_value("#id_question") == "고친 질문입니까?"
        page.focus("#id_question")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(f"#review[data-pair='{pairs[2].pk}']")

        page.keyboard.press("r")  # reject: a reason is asked for first
        assert page.evaluate("document.activeElement.id") == "id_reason_preset"
        page.select_option("#id_reason_preset", "Duplicate of another question")
        page.focus("#id_reason")
        page.keyboard.type("같은 질문이 위에 있음")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(f"#review[data-pair='{pairs[3].pk}']")

        # A conflict: someone else changed the pair after this page loaded.
        QAPair.objects.filter(pk=pairs[3].pk).update(question="다른 사람이 고친 질문?", version=5)
        page.keyboard.press("a")
        page.wait_for_selector("#conflict")
        assert "changed since you opened it" in page.inner_text("#conflict")
        assert "다른 사람이 고친 질문?" in page.inner_text("#conflict")
        assert page.csp_violations == [] and dialogs == []

    statuses = {p.pk: QAPair.objects.get(pk=p.pk) for p in pairs}
    assert statuses[pairs[0].pk].status == PairStatus.APPROVED
    assert (statuses[pairs[1].pk].status, statuses[pairs[1].pk].question) == (PairStatus.EDITED, "고친 질문입니까?")
    assert statuses[pairs[2].pk].status == PairStatus.REJECTED
    assert ReviewDecision.objects.get(pair=pairs[2]).reason == "Duplicate of another question: 같은 질문이 위에 있음"
    assert statuses[pairs[3].pk].question == "다른 사람이 고친 질문?"  # not overwritten


@pytest.mark.django_db(transaction=True)
def test_audit_with_the_keyboard(live_server, project, owner, reviewer):
    from workbench.review.models import AuditItem
    from workbench.review.services import ReviewInput, pair_claim, pair_review

    make_pairs(project, 2, question="질문 {i} " + XSS_OUT)
    for _ in range(2):
        pair = pair_claim(project=project, reviewer=reviewer)
        pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput(decision="approve", version=pair.version))
    base = live_server.url
    with chromium_page() as page:
        log_in(page, base, owner)
        page.goto(f"{base}/p/{project.slug}/audit/")
        page.fill("#id_sample_size", "2")
        page.click("#btn-start-audit")
        page.wait_for_selector("#audit-open")
        assert "2 items open" in page.inner_text("#audit-open")
        page.click("#audit-queue-link")
        first = int(page.get_attribute("#audit", "data-item"))
        page.wait_for_load_state("load")  # the keys work once audit.js has run, not as soon as the item is in the DOM
        assert page.inner_text("#audit-question").endswith(XSS_OUT) and page.evaluate("window.pwned") is None
        page.keyboard.press("a")  # agree
        page.wait_for_function(
            f"() => document.querySelector('#audit') && document.querySelector('#audit').dataset.item != '{first}'"
        )
        second = int(page.get_attribute("#audit", "data-item"))
        page.wait_for_load_state("load")
        page.keyboard.press("d")  # disagree: the note first, Ctrl+Enter sends
        page.keyboard.type("답이 원문에 없습니다")
        page.check("#id_reject_pair")
        page.focus("#id_note")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#audit-empty")
        assert page.csp_violations == []
    assert AuditItem.objects.get(pk=first).verdict == "agree"
    item = AuditItem.objects.get(pk=second)
    assert (item.verdict, item.note, item.rejected_pair) == ("disagree", "답이 원문에 없습니다", True)
    assert QAPair.objects.get(pk=item.pair_id).status == PairStatus.REJECTED


@pytest.mark.django_db(transaction=True)
def test_a_server_error_keeps_the_pair_and_the_draft_and_says_so_in_one_line(live_server, project, reviewer):
    """A 500 (or a proxy's 502) is not a refusal page: the reviewer sees one line of text, the pair and the typed edit
    stay, the error page's markup is never put into the review page, and sending again records the edit."""
    pairs = make_pairs(project, 2)
    base = live_server.url
    error_page = (
        "<html><body><main><h1>OperationalError at /decide</h1><pre>Traceback (most recent call last)</pre>"
        '<img src=x onerror="window.pwned=1"></main></body></html>'
    )
    with chromium_page() as page:
        log_in(page, base, reviewer)
        page.goto(f"{base}/p/{project.slug}/review/")
        page.wait_for_function("() => performance.getEntriesByType('resource').some(e => e.name.includes('/review/next'))")
        first = page.get_attribute("#review", "data-pair")
        page.route("**/decide", lambda route: route.fulfill(status=500, content_type="text/html", body=error_page))
        page.fill("#id_question", "고친 질문입니까?")
        page.focus("#id_question")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#review-error")
        assert "HTTP 500" in page.inner_text("#review-error") and "try again" in page.inner_text("#review-error")
        assert "Traceback" not in page.inner_text("main") and page.evaluate("window.pwned") is None
        assert page.get_attribute("#review", "data-pair") == first and page.input_value("#id_question") == "고친 질문입니까?"
        page.unroute("**/decide")
        page.focus("#id_question")
        page.keyboard.press("Control+Enter")
        page.wait_for_function(
            f"() => document.querySelector('#review') && document.querySelector('#review').dataset.pair !== '{first}'"
        )
        assert page.csp_violations == []
    edited = QAPair.objects.get(pk=int(first))
    assert (edited.status, edited.question) == (PairStatus.EDITED, "고친 질문입니까?")
    assert {p.pk for p in pairs} >= {edited.pk}
