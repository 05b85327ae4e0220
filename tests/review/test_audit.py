"""Second-pass audit: sampling approved pairs, leased auditing by someone other than the first reviewer, verdicts
recorded once, rejection through the audit in the pair's history, and agreement figures with Wilson intervals."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import make_pairs, make_user
from workbench.generation.models import PairStatus, QAPair
from workbench.projects.models import Membership
from workbench.review.audit import audit_agreement, audit_claim, audit_create, audit_verdict, wilson
from workbench.review.bulk import bulk_reject_selection, pairs_bulk_reject_confirmed
from workbench.review.models import AuditItem, ReviewDecision
from workbench.review.services import ReviewConflict, ReviewInput, pair_claim, pair_review


def review_all(project, reviewer, decision="approve", n=None):
    done = []
    while n is None or len(done) < n:
        pair = pair_claim(project=project, reviewer=reviewer)
        if pair is None:
            break
        extra = {"question": pair.question + " (고침)", "answer": pair.answer} if decision == "edit" else {}
        done.append(
            pair_review(
                pair_id=pair.pk,
                reviewer=reviewer,
                data=ReviewInput(decision=decision, version=pair.version, reason="틀림" if decision == "reject" else "", **extra),
            )
        )
    return done


@pytest.fixture
def second(project):
    user = make_user()
    Membership.objects.create(project=project, user=user, role="reviewer")
    return user


def test_sample_takes_only_reviewer_approved_pairs_each_once(project, owner, reviewer):
    make_pairs(project, 12)
    review_all(project, reviewer, "approve", 5)
    review_all(project, reviewer, "edit", 2)
    review_all(project, reviewer, "reject", 2)
    pending = QAPair.objects.filter(project=project)
    selection = bulk_reject_selection(project=project, pairs=pending)
    pairs_bulk_reject_confirmed(
        project=project, admin=owner, pairs=pending, reason="bulk", filters={}, confirmed=(selection.count, selection.digest)
    )
    audit = audit_create(project=project, admin=owner, sample_size=100)
    assert audit.sample_size == 7  # approved and edited pairs only; rejected and bulk-rejected ones are not sampled
    items = list(audit.items.all())
    assert {i.pair.status for i in items} <= {PairStatus.APPROVED, PairStatus.EDITED}
    assert all(i.reviewer_id == reviewer.pk and i.question == i.pair.question for i in items)
    with pytest.raises(ValidationError, match="No approved pairs are left"):
        audit_create(project=project, admin=owner, sample_size=3)  # every approved pair is audited already


def test_sample_for_one_reviewer(project, owner, reviewer, second):
    make_pairs(project, 6)
    review_all(project, reviewer, "approve", 3)
    review_all(project, second, "approve", 3)
    audit = audit_create(project=project, admin=owner, sample_size=2, reviewer=second)
    assert audit.sample_size == 2 and set(audit.items.values_list("reviewer", flat=True)) == {second.pk}
    with pytest.raises(ValidationError):
        audit_create(project=project, admin=owner, sample_size=0)


def test_nobody_audits_their_own_decisions(project, owner, reviewer, second):
    make_pairs(project, 3)
    review_all(project, reviewer, "approve")
    audit_create(project=project, admin=owner, sample_size=3)
    assert audit_claim(project=project, auditor=reviewer) is None
    item = audit_claim(project=project, auditor=second)
    assert item is not None and audit_claim(project=project, auditor=second).pk == item.pk  # the lease holds
    assert audit_claim(project=project, auditor=owner).pk != item.pk
    with pytest.raises(ReviewConflict):
        audit_verdict(item_id=item.pk, auditor=owner, verdict="agree")  # leased to someone else


@pytest.mark.django_db(transaction=True)
def test_concurrent_auditors_get_distinct_items(project, owner, reviewer):
    make_pairs(project, 40)
    review_all(project, reviewer, "approve")
    audit_create(project=project, admin=owner, sample_size=40)
    auditors = []
    for _ in range(8):
        user = make_user()
        Membership.objects.create(project=project, user=user, role="reviewer")
        auditors.append(user)
    got, errors = [], []
    barrier = threading.Barrier(len(auditors))

    def work(user):
        try:
            barrier.wait()
            while (item := audit_claim(project=project, auditor=user)) is not None:
                got.append(item.pk)
                audit_verdict(item_id=item.pk, auditor=user, verdict="agree")
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in auditors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(got) == 40 and len(set(got)) == 40
    assert AuditItem.objects.filter(verdict="agree").count() == 40


def test_verdicts_rejection_and_conflicts(project, owner, reviewer, second):
    make_pairs(project, 3)
    review_all(project, reviewer, "approve")
    audit_create(project=project, admin=owner, sample_size=3)
    item = audit_claim(project=project, auditor=second)
    with pytest.raises(ValidationError, match="Say what is wrong"):
        audit_verdict(item_id=item.pk, auditor=second, verdict="disagree")
    with pytest.raises(ValidationError):
        audit_verdict(item_id=item.pk, auditor=second, verdict="agree", reject_pair=True)
    audit_verdict(item_id=item.pk, auditor=second, verdict="disagree", note="답이 원문과 다릅니다", reject_pair=True)
    pair = QAPair.objects.get(pk=item.pair_id)
    assert pair.status == PairStatus.REJECTED and pair.version == item.pair_version + 1
    last = ReviewDecision.objects.filter(pair=pair).first()
    assert (last.reviewer_id, last.decision, last.reason) == (second.pk, "reject", "Audit: 답이 원문과 다릅니다")
    # The same verdict sent twice records once; a different one after it is a conflict.
    audit_verdict(item_id=item.pk, auditor=second, verdict="disagree", note="답이 원문과 다릅니다", reject_pair=True)
    assert ReviewDecision.objects.filter(pair=pair, reviewer=second).count() == 1
    with pytest.raises(ReviewConflict):
        audit_verdict(item_id=item.pk, auditor=second, verdict="agree")
    # A pair changed after sampling is not rejected by the audit; the verdict is not recorded either.
    other = audit_claim(project=project, auditor=second)
    QAPair.objects.filter(pk=other.pair_id).update(version=other.pair_version + 1)
    with pytest.raises(ReviewConflict, match="changed after it was sampled"):
        audit_verdict(item_id=other.pk, auditor=second, verdict="disagree", note="x", reject_pair=True)
    assert AuditItem.objects.get(pk=other.pk).verdict == ""
    assert QAPair.objects.get(pk=other.pair_id).status == PairStatus.APPROVED


def test_wilson_interval():
    low, high = wilson(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    low, high = wilson(0, 5)
    assert low == 0.0 and round(high, 3) == 0.434
    assert wilson(0, 0) is None


def test_agreement_per_reviewer_and_audit(project, owner, reviewer, second):
    make_pairs(project, 10)
    review_all(project, reviewer, "approve", 6)
    review_all(project, second, "approve", 4)
    audit_create(project=project, admin=owner, sample_size=10)
    verdicts = {reviewer.pk: ["agree"] * 5 + ["disagree"], second.pk: ["agree", "agree", "disagree", "disagree"]}
    while (item := audit_claim(project=project, auditor=owner)) is not None:
        v = verdicts[item.reviewer_id].pop()
        audit_verdict(item_id=item.pk, auditor=owner, verdict=v, note="틀림" if v == "disagree" else "")
    figures = audit_agreement(project=project)
    assert figures["overall"]["audited"] == 10 and figures["overall"]["agreed"] == 7 and figures["open"] == 0
    rows = {r["reviewer"]: r for r in figures["reviewers"]}
    assert (rows[reviewer.username]["agreed"], rows[reviewer.username]["audited"]) == (5, 6)
    assert (rows[second.username]["agreed"], rows[second.username]["audited"]) == (2, 4)
    assert rows[second.username]["low"] < 0.5 < rows[second.username]["high"]
    assert figures["audits"][0]["items"] == 10 and figures["audits"][0]["audited"] == 10


def test_audit_pages(client, project, owner, reviewer, second):
    make_pairs(project, 4, question="<script>alert(1)</script> 질문 {i}")
    review_all(project, reviewer, "approve")
    client.login(username=reviewer.username, password=PASSWORD)
    assert client.post(reverse("review:audit_start", args=[project.slug]), {"sample_size": 2}).status_code == 403
    assert client.get(reverse("review:audit", args=[project.slug])).status_code == 200
    client.logout()
    client.login(username=owner.username, password=PASSWORD)
    assert client.post(reverse("review:audit_start", args=[project.slug]), {"sample_size": 0}).status_code == 400
    assert client.post(reverse("review:audit_start", args=[project.slug]), {"sample_size": 2}).status_code == 302
    client.logout()
    client.login(username=second.username, password=PASSWORD)
    page = client.get(reverse("review:audit_queue", args=[project.slug]))
    item = page.context["item"]
    body = page.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert(1)" not in body
    url = reverse("review:audit_verdict", args=[project.slug, item.pk])
    assert client.post(url, {"verdict": "disagree"}).status_code == 400  # a note is needed
    assert client.post(url, {"verdict": "agree"}).status_code == 302
    assert AuditItem.objects.get(pk=item.pk).verdict == "agree"
    overview = client.get(reverse("review:audit", args=[project.slug]))
    assert overview.context["figures"]["overall"]["agreed"] == 1
    assert 'id="agreement-reviewers"' in overview.content.decode()
