"""Bulk actions of the pair browser: the exact set a filter selects, applied only when it is still the set the admin
confirmed, recorded as one `BulkAction` linking each pair's decision, and undone as one step."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from workbench.generation.models import PairStatus, QAPair
from workbench.projects.models import Project
from workbench.review.decisions import decision_build, decisions_record
from workbench.review.models import BulkAction, Decision, ReviewDecision

_PAIR_FIELDS = ("id", "question", "answer", "status", "version")


@dataclass(frozen=True)
class BulkSelection:
    """The pairs a bulk action would touch, in id order; `digest` names the exact set for the confirmation step."""

    ids: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def digest(self) -> str:
        return hashlib.sha256(",".join(map(str, self.ids)).encode()).hexdigest()


class BulkSelectionChanged(Exception):
    """The filtered set is no longer the one the admin confirmed; nothing was changed."""

    def __init__(self, selection: BulkSelection):
        super().__init__(f"The filtered set changed since it was confirmed: it now holds {selection.count} pending pairs.")
        self.selection = selection


def _pending(project: Project, pairs: QuerySet[QAPair]) -> QuerySet[QAPair]:
    return pairs.filter(project=project, status=PairStatus.PENDING).select_related(None).order_by("id")


def bulk_reject_selection(*, project: Project, pairs: QuerySet[QAPair]) -> BulkSelection:
    """The pending pairs of a filtered set: exactly what a bulk rejection of it would touch now."""
    return BulkSelection(tuple(_pending(project, pairs).values_list("id", flat=True)))


def pairs_bulk_reject_confirmed(
    *, project: Project, admin, pairs: QuerySet[QAPair], reason: str, filters: dict, confirmed: tuple[int, str]
) -> BulkAction:
    """Reject the pending pairs of a filtered set, all or none, if they are still exactly the set the admin confirmed
    (`confirmed` is its count and digest); each decision is in the pairs' history, linked to one BulkAction."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why these pairs are rejected."})
    with transaction.atomic():
        # Locked in id order; a pair decided meanwhile no longer matches and changes the digest.
        batch = list(_pending(project, pairs).select_for_update(of=("self",)).only(*_PAIR_FIELDS))
        selection = BulkSelection(tuple(p.pk for p in batch))
        if (selection.count, selection.digest) != tuple(confirmed):
            raise BulkSelectionChanged(selection)
        if not batch:
            raise ValidationError("No pending pair matches this filter; nothing was rejected.")
        action = BulkAction.objects.create(
            project=project,
            created_by=admin,
            decision=Decision.REJECT,
            reason=reason.strip(),
            filters=filters,
            pair_count=len(batch),
        )
        decisions_record(
            decision_build(
                pair=p,
                reviewer=admin,
                decision=Decision.REJECT,
                status_after=PairStatus.REJECTED,
                reason=action.reason,
                bulk_action=action,
            )
            for p in batch
        )
        now = timezone.now()
        for p in batch:
            p.status, p.version, p.claimed_by, p.lease_expires_at, p.updated_at = (
                PairStatus.REJECTED,
                p.version + 1,
                None,
                None,
                now,
            )
        QAPair.objects.bulk_update(batch, ["status", "version", "claimed_by", "lease_expires_at", "updated_at"], batch_size=1000)
    return action


def _why_kept(pair: QAPair, since: ReviewDecision) -> str:
    later = (
        pair.decisions.exclude(pk=since.pk)
        .filter(created_at__gte=since.created_at)
        .select_related("reviewer")
        .order_by("-created_at", "-id")
        .first()
    )
    now = f"now {pair.get_status_display().lower()}, version {pair.version}"
    if later is None:
        return f"changed since the bulk action ({now})"
    return f"{later.reviewer.get_username()} made it {later.get_decision_display().lower()} since ({now})"


def bulk_action_undo(*, project: Project, action_id: int, admin) -> BulkAction:
    """Return every pair of a bulk action that nobody changed since to its state before it, in one transaction. Each
    reversal is a decision of its own (the history keeps both); pairs changed since are left alone and reported."""
    with transaction.atomic():
        action = BulkAction.objects.select_for_update().get(project=project, pk=action_id)
        if action.undone_at is not None:
            raise ValidationError(f"Bulk action {action.pk} was already undone.")
        decisions = list(action.decisions.filter(decision=action.decision).order_by("pair_id"))
        pairs = QAPair.objects.select_for_update().filter(pk__in=[d.pair_id for d in decisions]).order_by("id").in_bulk()
        now = timezone.now()
        undos, reverted, kept = [], [], []
        for d in decisions:
            pair = pairs[d.pair_id]
            if (pair.version, pair.status) != (d.version_before + 1, d.status_after):
                kept.append({"pair": pair.pk, "why": _why_kept(pair, d)})
                continue
            undos.append(
                decision_build(
                    pair=pair,
                    reviewer=admin,
                    decision=Decision.UNDO,
                    question_after=d.question_before,
                    answer_after=d.answer_before,
                    status_after=d.status_before,
                    reason=f"Undo of bulk action {action.pk}",
                    bulk_action=action,
                )
            )
            pair.question, pair.answer, pair.status = d.question_before, d.answer_before, d.status_before
            pair.version += 1
            pair.claimed_by, pair.lease_expires_at, pair.updated_at = None, None, now
            reverted.append(pair)
        decisions_record(undos)
        QAPair.objects.bulk_update(
            reverted, ["question", "answer", "status", "version", "claimed_by", "lease_expires_at", "updated_at"], batch_size=1000
        )
        action.undone_by, action.undone_at = admin, now
        action.undo_report = {"reverted": len(reverted), "not_reverted": kept}
        action.save(update_fields=["undone_by", "undone_at", "undo_report"])
    return action
