"""Second-pass audit: a random sample of approved pairs goes to other members, who agree or disagree with the first
reviewer's approval; agreement is reported per reviewer with a 95% interval.

Each pair is audited at most once. An item is claimed with a lease like a pair in the review queue (never by the
reviewer whose decision it audits); a disagreeing auditor may also reject the pair, which is recorded in the pair's
history and is refused if the pair changed since it was sampled.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from workbench.generation.models import PairStatus, QAPair
from workbench.projects.models import Project
from workbench.review.decisions import decision_record
from workbench.review.models import Audit, AuditItem, Decision, ReviewDecision, Verdict
from workbench.review.services import ReviewConflict, normalize_input

MAX_SAMPLE = 5000


def audit_create(*, project: Project, admin, sample_size: int, reviewer=None) -> Audit:
    """Sample up to `sample_size` approved pairs not audited before, whose approval came from a reviewer's own
    decision (not a bulk action), optionally only one reviewer's."""
    if not 1 <= sample_size <= MAX_SAMPLE:
        raise ValidationError({"sample_size": f"Choose a sample of 1 to {MAX_SAMPLE:,} pairs."})
    approved = QAPair.objects.filter(project=project, status__in=[PairStatus.APPROVED, PairStatus.EDITED]).exclude(
        Exists(AuditItem.objects.filter(pair=OuterRef("pk")))
    )
    if reviewer is not None:
        approved = approved.filter(
            Exists(
                ReviewDecision.objects.filter(
                    pair=OuterRef("pk"), reviewer=reviewer, decision__in=[Decision.APPROVE, Decision.EDIT]
                )
            )
        )
    with transaction.atomic():
        audit = Audit.objects.create(project=project, created_by=admin, sample_size=sample_size, reviewer=reviewer)
        # Random order over the approved set, then the approving decision of each sampled pair (its latest one).
        candidates = list(approved.order_by("?").values_list("id", "version", "question", "answer")[: sample_size * 2])
        latest: dict[int, ReviewDecision] = {}
        for d in (
            ReviewDecision.objects.filter(pair_id__in=[c[0] for c in candidates])
            .exclude(decision=Decision.SKIP)
            .order_by("created_at", "id")
        ):
            latest[d.pair_id] = d
        items = []
        for pair_id, version, question, answer in candidates:
            decision = latest.get(pair_id)
            if decision is None or decision.is_bulk or decision.decision not in (Decision.APPROVE, Decision.EDIT):
                continue
            if reviewer is not None and decision.reviewer_id != reviewer.pk:
                continue
            items.append(
                AuditItem(
                    audit=audit,
                    pair_id=pair_id,
                    decision=decision,
                    reviewer_id=decision.reviewer_id,
                    pair_version=version,
                    question=question,
                    answer=answer,
                )
            )
            if len(items) == sample_size:
                break
        if not items:
            raise ValidationError(
                {"sample_size": "No approved pairs are left to audit" + (" for that reviewer." if reviewer else ".")}
            )
        AuditItem.objects.bulk_create(items)
        audit.sample_size = len(items)
        audit.save(update_fields=["sample_size"])
    return audit


def audit_claim(*, project: Project, auditor) -> AuditItem | None:
    """The auditor's current item, else the next open one they did not review themselves, leased to them."""
    now = timezone.now()
    mine = AuditItem.objects.filter(audit__project=project, verdict="", auditor=auditor, lease_expires_at__gte=now).first()
    if mine is not None:
        return mine
    with transaction.atomic():
        item = (
            AuditItem.objects.filter(audit__project=project, verdict="")
            .filter(Q(auditor__isnull=True) | Q(lease_expires_at__lt=now))
            .exclude(reviewer=auditor)
            .order_by("id")
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if item is None:
            return None
        item.auditor, item.lease_expires_at = auditor, now + timedelta(seconds=project.lease_seconds)
        item.save(update_fields=["auditor", "lease_expires_at"])
    return item


def audit_verdict(*, item_id: int, auditor, verdict: str, note: str = "", reject_pair: bool = False) -> AuditItem:
    """Record the auditor's verdict once. Disagreeing needs a note; rejecting the pair needs the pair unchanged."""
    note = normalize_input(note) or ""
    errors = {}
    if verdict not in Verdict.values:
        errors["verdict"] = "Choose agree or disagree."
    elif verdict == Verdict.DISAGREE and not note.strip():
        errors["note"] = "Say what is wrong with the approved pair."
    if reject_pair and verdict != Verdict.DISAGREE:
        errors["reject_pair"] = "Only a disagreeing verdict can reject the pair."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        item = AuditItem.objects.select_for_update().select_related("audit__project").get(pk=item_id)
        if item.verdict:
            if item.auditor_id == auditor.pk and item.verdict == verdict:
                return item  # the same verdict submitted twice
            raise ReviewConflict("This item was already audited.", item.pair)
        now = timezone.now()
        if item.auditor_id != auditor.pk:
            raise ReviewConflict("This item is leased to someone else; take the next one from the audit queue.", item.pair)
        if item.reviewer_id == auditor.pk:
            raise ReviewConflict("You cannot audit your own decision.", item.pair)
        if reject_pair:
            pair = QAPair.objects.select_for_update().get(pk=item.pair_id)
            if pair.version != item.pair_version or pair.status not in (PairStatus.APPROVED, PairStatus.EDITED):
                raise ReviewConflict("The pair changed after it was sampled for the audit; it was not rejected.", pair)
            decision_record(
                pair=pair,
                reviewer=auditor,
                decision=Decision.REJECT,
                status_after=PairStatus.REJECTED,
                reason=f"Audit: {note.strip()}",
            )
            pair.status, pair.version = PairStatus.REJECTED, pair.version + 1
            pair.save(update_fields=["status", "version", "updated_at"])
        item.verdict, item.note, item.rejected_pair, item.decided_at = verdict, note.strip(), reject_pair, now
        item.lease_expires_at = None
        item.save(update_fields=["verdict", "note", "rejected_pair", "decided_at", "lease_expires_at"])
    return item


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval for a proportion (sound at small n and near 0 or 1, unlike the normal interval)."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _figures(audited: int, agreed: int, **extra) -> dict:
    interval = wilson(agreed, audited)
    return {
        **extra,
        "audited": audited,
        "agreed": agreed,
        "disagreed": audited - agreed,
        "agreement": agreed / audited if audited else None,
        "low": interval[0] if interval else None,
        "high": interval[1] if interval else None,
    }


def audit_agreement(*, project: Project) -> dict:
    """Agreement overall, per first-pass reviewer and per audit, with 95% intervals; open items counted apart."""
    items = AuditItem.objects.filter(audit__project=project)
    decided = items.exclude(verdict="")
    agree = Count("id", filter=Q(verdict=Verdict.AGREE))
    total = decided.aggregate(n=Count("id"), agreed=agree)
    per_reviewer = [
        _figures(r["n"], r["agreed"], reviewer=r["reviewer__username"])
        for r in decided.values("reviewer__username").annotate(n=Count("id"), agreed=agree).order_by("reviewer__username")
    ]
    per_audit = [
        {**_figures(a["done"], a["agreed"], audit=a["audit_id"]), "items": a["n"]}
        for a in items.values("audit_id")
        .annotate(n=Count("id"), done=Count("id", filter=~Q(verdict="")), agreed=agree)
        .order_by("-audit_id")
    ]
    return {
        "overall": _figures(total["n"], total["agreed"]),
        "reviewers": per_reviewer,
        "audits": per_audit,
        "open": items.filter(verdict="").count(),
    }
