"""The admins' pair browser (filters, Korean text search, bulk reject) and the dashboard."""

from __future__ import annotations

from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import make_pairs
from workbench.generation.models import PairStatus, QAPair
from workbench.review.models import ReviewDecision


def test_pair_browser_filters_and_searches_korean(client, owner, project):
    make_pairs(project, 6, flags_every=3, question="헌법 제{i}조는 무엇을 정하나요?")
    make_pairs(project, 2, question="김치의 발효 {i}단계는?")
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("review:pairs", args=[project.slug])
    assert client.get(url).context["count"] == 8
    assert client.get(url, {"q": "발효"}).context["count"] == 2
    assert client.get(url, {"q": "제3조"}).context["count"] == 1
    assert client.get(url, {"flag": "echo"}).context["count"] == 2
    assert client.get(url, {"flag": "echo", "min_score": 0.95}).context["count"] == 0
    assert client.get(url, {"status": "approved"}).context["count"] == 0


def test_bulk_reject_a_filtered_set_is_recorded(client, owner, project):
    pairs = make_pairs(project, 6, flags_every=3)
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("review:bulk_reject", args=[project.slug])
    selection = client.post(url, {"flag": "echo", "reason": "malformed 일괄 거절"}).context["selection"]  # the confirm step
    response = client.post(
        url,
        {"flag": "echo", "reason": "malformed 일괄 거절", "confirm": "1", "count": selection.count, "digest": selection.digest},
    )
    assert response.status_code == 302
    rejected = set(QAPair.objects.filter(status=PairStatus.REJECTED).values_list("pk", flat=True))
    assert rejected == {pairs[0].pk, pairs[3].pk}
    assert ReviewDecision.objects.filter(is_bulk=True, reviewer=owner).count() == 2


def test_reviewers_cannot_browse_or_bulk_reject(client, reviewer, project):
    make_pairs(project, 2)
    client.login(username=reviewer.username, password=PASSWORD)
    assert client.get(reverse("review:pairs", args=[project.slug])).status_code == 403
    assert client.post(reverse("review:bulk_reject", args=[project.slug]), {"reason": "x"}).status_code == 403
    assert not QAPair.objects.filter(status=PairStatus.REJECTED).exists()


def test_dashboard_charts(client, reviewer, project):
    make_pairs(project, 4, flags_every=2, with_generation=True)
    QAPair.objects.filter(pk=QAPair.objects.first().pk).update(status=PairStatus.REJECTED)
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.get(reverse("review:dashboard", args=[project.slug]))
    assert response.status_code == 200
    statuses = dict(response.context["statuses"])
    assert statuses["Rejected"] == 1 and statuses["Pending review"] == 3
    body = response.content.decode()
    for section in ("chart-status", "chart-flags", "chart-calibration", "chart-reviewers", "chart-generation", "chart-audit"):
        assert f'id="{section}"' in body


def test_form_decision_conflict_page_is_409(client, reviewer, project):
    (pair,) = make_pairs(project, 1)
    client.login(username=reviewer.username, password=PASSWORD)
    client.get(reverse("review:queue", args=[project.slug]))
    QAPair.objects.filter(pk=pair.pk).update(version=3, answer="새 답")
    response = client.post(reverse("review:decide", args=[project.slug, pair.pk]), {"decision": "approve", "version": 1})
    assert response.status_code == 409 and "새 답" in response.content.decode()


def test_next_pair_is_preloaded_as_a_fragment(client, reviewer, owner, project):
    pairs = make_pairs(project, 2)
    client.login(username=reviewer.username, password=PASSWORD)
    current = client.get(reverse("review:queue", args=[project.slug])).context["pair"]
    fragment = client.get(reverse("review:next", args=[project.slug]), {"after": current.pk})
    assert fragment.status_code == 200 and f'data-pair="{pairs[1].pk}"' in fragment.content.decode()
    assert "<html" not in fragment.content.decode()
    # Both are leased to this reviewer: nobody else gets them; a reload still shows the current one.
    assert QAPair.objects.filter(claimed_by=reviewer).count() == 2
    assert client.get(reverse("review:queue", args=[project.slug])).context["pair"].pk == current.pk
    assert (
        client.get(reverse("review:next", args=[project.slug]), {"after": pairs[1].pk})
        .content.decode()
        .count(f'data-pair="{current.pk}"')
        == 1
    )
    client.login(username=owner.username, password=PASSWORD)
    assert client.get(reverse("review:queue", args=[project.slug])).context["pair"] is None
    assert client.get(reverse("review:next", args=[project.slug]), {"after": 0}).status_code == 204
