"""The dashboard's charts: server-rendered SVG over time, drawn in Chromium, hostile names kept as text, and a grid
that stays inside the page."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from tests.browser import chromium_page, log_in
from tests.factories import make_pairs, make_user
from workbench.generation.models import QAPair
from workbench.projects.models import Membership
from workbench.review.models import ReviewDecision
from workbench.review.services import ReviewInput, pair_claim, pair_review
from workbench.review.trends import buckets_for, review_trends

HOSTILE = '<img src=x onerror="window.pwned=1">'


def decide(project, reviewer, decision, n):
    for _ in range(n):
        pair = pair_claim(project=project, reviewer=reviewer)
        pair_review(
            pair_id=pair.pk,
            reviewer=reviewer,
            data=ReviewInput(
                decision=decision, version=pair.version, reason="off-topic" if decision == "reject" else "", confirm=True
            ),
        )


def test_buckets_are_hours_over_two_days_else_days():
    now = timezone.now()
    unit, starts = buckets_for(now - timedelta(hours=5), now)
    assert unit == "hour" and len(starts) in (6, 7)
    unit, starts = buckets_for(now - timedelta(days=200), now)
    assert unit == "day" and len(starts) == 60
    assert buckets_for(None, None) == ("hour", [])


def test_review_trends_count_each_reviewers_decisions_per_bucket(project, reviewer):
    other = make_user("second")
    Membership.objects.create(project=project, user=other)
    make_pairs(project, 6)
    decide(project, reviewer, "approve", 3)
    decide(project, other, "reject", 2)
    # One of them yesterday: a second bucket.
    moved = ReviewDecision.objects.filter(reviewer=other).first()
    ReviewDecision.objects.filter(pk=moved.pk).update(created_at=timezone.now() - timedelta(hours=20))
    trends = review_trends(project=project)
    assert trends["unit"] == "hour" and len(trends["labels"]) >= 20
    by = dict(trends["by_reviewer"])
    assert sum(by["reviewer"]) == 3 and sum(by["second"]) == 2
    assert by["second"][0] == 1 and trends["rejection_rate"][0] == 1.0
    assert trends["approval_rate"][-1] == pytest.approx(3 / 4)


@pytest.mark.django_db(transaction=True)
def test_dashboard_charts_render_in_chromium(live_server, project, owner, reviewer):
    hostile = make_user(HOSTILE)
    Membership.objects.create(project=project, user=hostile)
    make_pairs(project, 12, flags_every=3, with_generation=True)
    make_pairs(project, 6, flags_every=2, with_generation=True)
    decide(project, reviewer, "approve", 5)
    decide(project, hostile, "reject", 4)
    assert QAPair.objects.filter(project=project, status="rejected").count() == 4
    with chromium_page() as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        log_in(page, live_server.url, "owner")
        page.goto(live_server.url + f"/p/{project.slug}/dashboard/")
        for chart in ("svg-reviews", "svg-rates", "svg-generation", "svg-flags-by-run", "svg-calibration"):
            assert page.locator(f"#{chart} rect.bar").count() > 0, chart
        # The reviewer named like markup is a legend entry, as text.
        assert HOSTILE in page.locator("#svg-reviews text.legend").all_text_contents()
        assert page.evaluate("window.pwned") is None and page.csp_violations == []
        # Two runs in the flag-rate chart.
        assert page.locator("#svg-flags-by-run text", has_text="run ").count() == 2
        # Drawn: the chart's pixels hold the palette's colours, not just a blank box.
        image = Image.open(io.BytesIO(page.locator("#svg-reviews").screenshot())).convert("RGB")
        colours = {c for _, c in image.getcolors(maxcolors=1 << 20)}
        assert (0x24, 0x56, 0xD6) in colours and (0xD9, 0x2D, 0x20) in colours
        # The card grid stays inside the page at a laptop's width.
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        assert page.evaluate(
            "[...document.querySelectorAll('.dashboard-grid > .card')].every(c => c.getBoundingClientRect().right <= "
            "document.querySelector('main').getBoundingClientRect().right + 1)"
        )
