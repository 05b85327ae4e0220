"""Writes of the review queue: claiming with a lease, decisions with optimistic locking, undo, bulk actions.

Claims are short transactions (`SELECT ... FOR UPDATE SKIP LOCKED` and an UPDATE): no lock is held while a person
thinks; the lease in the row says who holds the pair until when.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from workbench.generation.models import PairStatus, QAPair
from workbench.projects.models import Project, QueueOrder
from workbench.quality.models import PairFlag
from workbench.review.models import Decision, ReviewDecision

QUEUE_ORDERING = {
    QueueOrder.FLAGGED_FIRST: ("-is_flagged", "id"),
    QueueOrder.CLEAN_FIRST: ("is_flagged", "id"),
    QueueOrder.DOCUMENT_ORDER: ("chunk_id", "id"),
    QueueOrder.RANDOM: ("shuffle_key", "id"),
}
PRESET_REASONS = [
    "Echoes the source instead of asking",
    "Answer is wrong or unsupported by the source",
    "Answer is incomplete or cut off",
    "Question is unclear or not answerable from the source",
    "Duplicate of another question",
    "Not Korean / broken formatting",
]


class ReviewConflict(Exception):
    """A stale version or someone else's lease: the caller sees the pair as it is now."""

    def __init__(self, message: str, pair: QAPair):
        super().__init__(message)
        self.pair = pair


def _claimable(project: Project, now) -> QuerySet[QAPair]:
    return QAPair.objects.filter(project=project, status=PairStatus.PENDING).filter(
        Q(claimed_by__isnull=True) | Q(lease_expires_at__lt=now)
    )


def pair_claim(*, project: Project, reviewer, flag: str | None = None, exclude: tuple[int, ...] = ()) -> QAPair | None:
    """The reviewer's current pair if they hold one, else the next free pending pair in the project's queue order,
    leased to them. Never hands one pair to two reviewers. `exclude` asks for another pair than those (the review page
    preloads the next pair while the reviewer reads the current one, so a reviewer may hold two)."""
    now = timezone.now()
    held = QAPair.objects.filter(project=project, status=PairStatus.PENDING, claimed_by=reviewer, lease_expires_at__gte=now)
    if exclude:
        held = held.exclude(pk__in=exclude)
    if flag:
        held = held.filter(Exists(PairFlag.objects.filter(pair=OuterRef("pk"), name=flag)))
    current = held.order_by("lease_expires_at").first()
    if current is not None:
        return current
    candidates = _claimable(project, now)
    if flag:
        candidates = candidates.filter(Exists(PairFlag.objects.filter(pair=OuterRef("pk"), name=flag)))
    ordering = QUEUE_ORDERING.get(project.queue_order, ("id",))
    with transaction.atomic():
        pair = candidates.order_by(*ordering).select_for_update(skip_locked=True, of=("self",)).first()
        if pair is None:
            return None
        pair.claimed_by = reviewer
        pair.lease_expires_at = now + timedelta(seconds=project.lease_seconds)
        pair.save(update_fields=["claimed_by", "lease_expires_at", "updated_at"])
    return pair


@dataclass(frozen=True)
class ReviewInput:
    decision: str
    version: int
    question: str | None = None
    answer: str | None = None
    reason: str = ""


def _validate(data: ReviewInput) -> None:
    errors = {}
    if data.decision not in {Decision.APPROVE, Decision.EDIT, Decision.REJECT, Decision.SKIP}:
        errors["decision"] = "Choose approve, edit, reject or skip."
    if data.decision == Decision.EDIT:
        if not (data.question or "").strip():
            errors["question"] = "An edited pair needs a question."
        if not (data.answer or "").strip():
            errors["answer"] = "An edited pair needs an answer."
    if data.decision == Decision.REJECT and not data.reason.strip():
        errors["reason"] = "Say why the pair is rejected."
    if errors:
        raise ValidationError(errors)


def pair_review(*, pair_id: int, reviewer, data: ReviewInput) -> QAPair:
    """Record a decision against the version the reviewer saw. A stale version or another reviewer's lease is a
    conflict, never a silent overwrite; the same decision submitted twice is recorded once."""
    _validate(data)
    try:
        with transaction.atomic():
            pair = QAPair.objects.select_for_update().get(pk=pair_id)
            if pair.version != data.version:
                replay = _replayed(pair, reviewer, data)
                if replay:
                    return pair
                raise ReviewConflict(
                    f"This pair changed since you opened it (version {data.version}, now {pair.version}).", pair
                )
            now = timezone.now()
            if pair.claimed_by_id != reviewer.pk:
                holder = pair.claimed_by.get_username() if pair.claimed_by_id else None
                if holder and pair.lease_expires_at and pair.lease_expires_at >= now:
                    raise ReviewConflict(f"{holder} is reviewing this pair now.", pair)
                if pair.status != PairStatus.PENDING:
                    raise ReviewConflict("This pair was already decided.", pair)
                raise ReviewConflict("Your lease on this pair lapsed; claim it again from the queue.", pair)
            before = (pair.question, pair.answer, pair.status)
            if data.decision == Decision.SKIP:
                ReviewDecision.objects.create(
                    pair=pair, reviewer=reviewer, decision=Decision.SKIP, question_before=pair.question,
                    answer_before=pair.answer, question_after=pair.question, answer_after=pair.answer,
                    status_before=pair.status, status_after=pair.status, reason=data.reason, version_before=pair.version,
                )
                # Skipped pairs go to the back of this reviewer's queue: the lease is released.
                pair.claimed_by, pair.lease_expires_at = None, None
                pair.save(update_fields=["claimed_by", "lease_expires_at", "updated_at"])
                return pair
            if data.decision == Decision.EDIT:
                pair.question, pair.answer, pair.status = data.question.strip(), data.answer.strip(), PairStatus.EDITED
            elif data.decision == Decision.APPROVE:
                pair.status = PairStatus.APPROVED
            else:
                pair.status = PairStatus.REJECTED
            ReviewDecision.objects.create(
                pair=pair, reviewer=reviewer, decision=data.decision, question_before=before[0], answer_before=before[1],
                question_after=pair.question, answer_after=pair.answer, status_before=before[2], status_after=pair.status,
                reason=data.reason.strip(), version_before=pair.version,
            )
            pair.version += 1
            pair.claimed_by, pair.lease_expires_at = None, None
            pair.save(update_fields=["question", "answer", "status", "version", "claimed_by", "lease_expires_at", "updated_at"])
            return pair
    except IntegrityError:
        # Two identical submissions raced past the version check: the unique (pair, version) key kept one.
        pair = QAPair.objects.get(pk=pair_id)
        if _replayed(pair, reviewer, data):
            return pair
        raise ReviewConflict("This pair changed since you opened it.", pair) from None


def _replayed(pair: QAPair, reviewer, data: ReviewInput) -> bool:
    last = ReviewDecision.objects.filter(pair=pair, version_before=data.version).exclude(decision=Decision.SKIP).first()
    return bool(
        last
        and last.reviewer_id == reviewer.pk
        and last.decision == data.decision
        and pair.version == data.version + 1
        and (data.decision != Decision.EDIT or (last.question_after, last.answer_after) == ((data.question or "").strip(), (data.answer or "").strip()))
    )


def review_undo(*, project: Project, reviewer) -> QAPair:
    """Undo the reviewer's last decision in the project, if nobody changed the pair since; it comes back to them."""
    with transaction.atomic():
        last = (
            ReviewDecision.objects.filter(pair__project=project, reviewer=reviewer, is_bulk=False)
            .exclude(decision__in=[Decision.SKIP, Decision.UNDO])
            .select_related("pair")
            .order_by("-created_at", "-id")
            .first()
        )
        if last is None:
            raise ValidationError("You have no decision to undo in this project.")
        pair = QAPair.objects.select_for_update().get(pk=last.pair_id)
        if pair.version != last.version_before + 1:
            raise ReviewConflict("The pair changed after your decision; it cannot be undone.", pair)
        ReviewDecision.objects.create(
            pair=pair, reviewer=reviewer, decision=Decision.UNDO, question_before=pair.question, answer_before=pair.answer,
            question_after=last.question_before, answer_after=last.answer_before, status_before=pair.status,
            status_after=last.status_before, reason=f"Undo of {last.get_decision_display().lower()}", version_before=pair.version,
        )
        pair.question, pair.answer, pair.status = last.question_before, last.answer_before, last.status_before
        pair.version += 1
        pair.claimed_by, pair.lease_expires_at = reviewer, timezone.now() + timedelta(seconds=project.lease_seconds)
        pair.save(update_fields=["question", "answer", "status", "version", "claimed_by", "lease_expires_at", "updated_at"])
        return pair


def pairs_bulk_reject(*, project: Project, admin, pairs: QuerySet[QAPair], reason: str) -> int:
    """Reject every pending pair of a filtered set, each decision in the history (marked bulk)."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why these pairs are rejected."})
    done = 0
    ids = list(pairs.filter(project=project, status=PairStatus.PENDING).values_list("id", flat=True))
    for start in range(0, len(ids), 1000):
        with transaction.atomic():
            batch = list(QAPair.objects.select_for_update(skip_locked=True).filter(pk__in=ids[start : start + 1000], status=PairStatus.PENDING))
            ReviewDecision.objects.bulk_create(
                ReviewDecision(pair=p, reviewer=admin, decision=Decision.REJECT, question_before=p.question, answer_before=p.answer,
                               question_after=p.question, answer_after=p.answer, status_before=p.status,
                               status_after=PairStatus.REJECTED, reason=reason.strip(), version_before=p.version, is_bulk=True)
                for p in batch
            )
            for p in batch:
                p.status, p.version, p.claimed_by, p.lease_expires_at = PairStatus.REJECTED, p.version + 1, None, None
            QAPair.objects.bulk_update(batch, ["status", "version", "claimed_by", "lease_expires_at"])
            done += len(batch)
    return done
