"""Writes of the review queue: claiming with a lease, decisions with optimistic locking, undo, bulk actions.

Claims are short transactions (`SELECT ... FOR UPDATE SKIP LOCKED` and an UPDATE): no lock is held while a person
thinks; the lease in the row says who holds the pair until when.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from workbench.generation.models import PairStatus, QAPair
from workbench.projects.models import Project, QueueOrder, Role
from workbench.quality.models import PairFlag, Severity
from workbench.review.blank import VISIBLE_REGEX, is_blank
from workbench.review.decisions import decision_insert_sql, decision_record
from workbench.review.models import Decision, ReviewDecision

QUEUE_ORDERING = {
    QueueOrder.FLAGGED_FIRST: ("-is_flagged", "id"),
    QueueOrder.CLEAN_FIRST: ("is_flagged", "id"),
    QueueOrder.DOCUMENT_ORDER: ("chunk_id", "id"),
    QueueOrder.RANDOM: ("shuffle_key", "id"),
}
# A reviewer's or admin's own words on a decision, in every way in (review page, pair page, bulk rejection, API).
REASON_MAX_CHARS = 2000

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


class AlreadyUndone(ReviewConflict):
    """The reviewer's last decision was undone already (U pressed twice): only the last decision can be undone."""


def _claimable(project: Project, now) -> QuerySet[QAPair]:
    return QAPair.objects.filter(project=project, status=PairStatus.PENDING).filter(
        Q(claimed_by__isnull=True) | Q(lease_expires_at__lt=now)
    )


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _pair_columns(alias: str, overrides: dict[str, str] | None = None) -> str:
    """The pair's columns for a raw statement; `overrides` maps a column to the expression that gives it."""
    overrides = overrides or {}
    quote = connection.ops.quote_name
    return ", ".join(
        f"{overrides[f.column]} AS {quote(f.column)}" if f.column in overrides else f"{alias}.{quote(f.column)}"
        for f in QAPair._meta.concrete_fields
    )


def _order_sql(ordering: tuple[str, ...], alias: str) -> str:
    parts = []
    for name in ordering:
        column = QAPair._meta.get_field(name.lstrip("-")).column
        parts.append(f"{alias}.{connection.ops.quote_name(column)}{' DESC' if name.startswith('-') else ''}")
    return ", ".join(parts)


def _skips_since(reviewer):
    """Skips count for the reviewer's current session: those made since they last logged in."""
    return reviewer.last_login or datetime(1970, 1, 1, tzinfo=UTC)


def _claim_in_one_statement(project: Project, reviewer, flag: str | None, exclude: tuple[int, ...], now) -> QAPair | None:
    """PostgreSQL: the held-pair check, the SKIP LOCKED pick and the lease in one statement (one round trip, no
    explicit transaction). Returns the pair with `chunk_text` attached, as the ORM path's result would be."""
    pair_table = QAPair._meta.db_table
    chunk_table = QAPair._meta.get_field("chunk").related_model._meta.db_table
    decision_table = ReviewDecision._meta.db_table
    flag_filter = ""
    params: dict = {
        "project": project.pk,
        "user": reviewer.pk,
        "now": now,
        "exclude": list(exclude),
        "until": now + timedelta(seconds=project.lease_seconds),
        "flag": flag,
        "since": _skips_since(reviewer),
    }
    if flag:
        flag_filter = f"AND EXISTS (SELECT 1 FROM {PairFlag._meta.db_table} f WHERE f.pair_id = q.id AND f.name = %(flag)s)"
    ordering = _order_sql(QUEUE_ORDERING.get(project.queue_order, ("id",)), "q")
    # Pairs the reviewer skipped this session (and nobody changed since) come after the rest of their queue, the
    # earliest skip first; other reviewers take them in the usual order.
    sql = f"""
        WITH held AS (
            SELECT q.id FROM {pair_table} q
            WHERE q.project_id = %(project)s AND q.status = 'pending' AND q.claimed_by_id = %(user)s
              AND q.lease_expires_at >= %(now)s AND NOT (q.id = ANY(%(exclude)s)) {flag_filter}
            ORDER BY q.lease_expires_at LIMIT 1
        ), skipped AS (
            SELECT d.pair_id, max(d.created_at) AS skipped_at FROM {decision_table} d JOIN {pair_table} s ON s.id = d.pair_id
            WHERE d.reviewer_id = %(user)s AND d.decision = 'skip' AND d.created_at >= %(since)s
              AND s.project_id = %(project)s AND s.status = 'pending' AND s.version = d.version_before
            GROUP BY d.pair_id
        ), fresh AS (
            SELECT q.id FROM {pair_table} q
            WHERE q.project_id = %(project)s AND q.status = 'pending'
              AND (q.claimed_by_id IS NULL OR q.lease_expires_at < %(now)s) {flag_filter}
              AND NOT EXISTS (SELECT 1 FROM held) AND NOT EXISTS (SELECT 1 FROM skipped s WHERE s.pair_id = q.id)
            ORDER BY {ordering} LIMIT 1 FOR UPDATE OF q SKIP LOCKED
        ), deferred AS (
            SELECT q.id FROM {pair_table} q JOIN skipped s ON s.pair_id = q.id
            WHERE q.status = 'pending' AND (q.claimed_by_id IS NULL OR q.lease_expires_at < %(now)s) {flag_filter}
              AND NOT EXISTS (SELECT 1 FROM held) AND NOT EXISTS (SELECT 1 FROM fresh)
            ORDER BY s.skipped_at, q.id LIMIT 1 FOR UPDATE OF q SKIP LOCKED
        ), picked AS (
            SELECT id FROM fresh UNION ALL SELECT id FROM deferred
        ), leased AS (
            UPDATE {pair_table} q SET claimed_by_id = %(user)s, lease_expires_at = %(until)s, updated_at = %(now)s
            FROM picked WHERE q.id = picked.id
            RETURNING q.id, q.claimed_by_id, q.lease_expires_at, q.updated_at
        )
        SELECT {_pair_columns("p", {c: f"COALESCE(l.{c}, p.{c})" for c in ("claimed_by_id", "lease_expires_at", "updated_at")})},
               c.text AS chunk_text
        FROM {pair_table} p JOIN {chunk_table} c ON c.id = p.chunk_id LEFT JOIN leased l ON l.id = p.id
        WHERE p.id = (SELECT id FROM held UNION ALL SELECT id FROM leased LIMIT 1)
    """
    rows = list(QAPair.objects.raw(sql, params))
    return rows[0] if rows else None


def pair_claim(*, project: Project, reviewer, flag: str | None = None, exclude: tuple[int, ...] = ()) -> QAPair | None:
    """The reviewer's current pair if they hold one, else the next free pending pair in the project's queue order,
    leased to them. Never hands one pair to two reviewers. `exclude` asks for another pair than those (the review page
    preloads the next pair while the reviewer reads the current one, so a reviewer may hold two). Pairs the reviewer
    skipped this session come last."""
    now = timezone.now()
    if _postgres():
        return _claim_in_one_statement(project, reviewer, flag, tuple(exclude), now)
    # SQLite: one transaction, which takes the write lock when it begins (IMMEDIATE), so two claims of one reviewer at
    # once run one after the other and the second finds the pair the first leased.
    with transaction.atomic():
        return _claim_in_python(project, reviewer, flag, exclude, now)


def _claim_in_python(project: Project, reviewer, flag: str | None, exclude, now) -> QAPair | None:
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
    skipped = dict(
        ReviewDecision.objects.filter(
            reviewer=reviewer,
            decision=Decision.SKIP,
            created_at__gte=_skips_since(reviewer),
            pair__project=project,
            pair__status=PairStatus.PENDING,
            version_before=F("pair__version"),
        )
        .values("pair_id")
        .annotate(skipped_at=Max("created_at"))
        .values_list("pair_id", "skipped_at")
    )
    ordering = QUEUE_ORDERING.get(project.queue_order, ("id",))
    with transaction.atomic():
        pair = candidates.exclude(pk__in=skipped).order_by(*ordering).select_for_update(skip_locked=True, of=("self",)).first()
        if pair is None:
            later = list(candidates.filter(pk__in=skipped).select_for_update(skip_locked=True, of=("self",)))
            pair = min(later, key=lambda p: (skipped[p.pk], p.pk), default=None)
        if pair is None:
            return None
        pair.claimed_by = reviewer
        pair.lease_expires_at = now + timedelta(seconds=project.lease_seconds)
        pair.save(update_fields=["claimed_by", "lease_expires_at", "updated_at"])
    return pair


def pair_held(*, project: Project, reviewer, pair_id: int) -> QAPair | None:
    """The pair if it is pending and leased to the reviewer now (the page shows the pair an undo gave back)."""
    return QAPair.objects.filter(
        project=project, pk=pair_id, status=PairStatus.PENDING, claimed_by=reviewer, lease_expires_at__gte=timezone.now()
    ).first()


def pair_lease(*, project: Project, reviewer, pair_id: int) -> bool:
    """Lease one pending pair to the reviewer if nobody else holds it now (after a conflict, so the reviewer can decide
    again against the pair as it is now). False when it is decided or someone else holds it."""
    now = timezone.now()
    return bool(
        QAPair.objects.filter(project=project, pk=pair_id, status=PairStatus.PENDING)
        .filter(Q(claimed_by__isnull=True) | Q(claimed_by=reviewer) | Q(lease_expires_at__lt=now))
        .update(claimed_by=reviewer, lease_expires_at=now + timedelta(seconds=project.lease_seconds), updated_at=now)
    )


@dataclass(frozen=True)
class ReviewInput:
    decision: str
    version: int
    question: str | None = None
    answer: str | None = None
    reason: str = ""
    # Approve a pair that carries a reject-level flag anyway (the reviewer was asked and said yes).
    confirm: bool = False


def normalize_newlines(text: str | None) -> str | None:
    """CRLF and lone CR as LF: browsers send textareas with CRLF, and stored text must not depend on the client."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if text else text


def normalize_input(text: str | None) -> str | None:
    """A reviewer's text as stored: LF line ends, and Unicode NFC, as imported documents are (a Mac pastes decomposed
    Hangul, NFD, which search, deduplication and training would take for other text)."""
    return unicodedata.normalize("NFC", normalize_newlines(text)) if text else text


def _validate(data: ReviewInput) -> None:
    errors = {}
    if data.decision not in {Decision.APPROVE, Decision.EDIT, Decision.REJECT, Decision.SKIP}:
        errors["decision"] = "Choose approve, edit, reject or skip."
    if data.decision == Decision.EDIT:
        if is_blank(data.question):
            errors["question"] = (
                "An edited pair needs a question (text that shows: spaces and invisible characters do not count)."
            )
        if is_blank(data.answer):
            errors["answer"] = "An edited pair needs an answer (text that shows: spaces and invisible characters do not count)."
        if not data.confirm and "\ufffd" in (data.question or "") + (data.answer or ""):
            # What a broken decoding leaves (the `malformed` flag's U+FFFD): an edit is where a reviewer fixes it.
            errors["confirm"] = (
                "The edited text still holds a broken character (U+FFFD, shown as �): fix it, or confirm to keep it."
            )
    if data.decision == Decision.REJECT and not data.reason.strip():
        errors["reason"] = "Say why the pair is rejected."
    if errors:
        raise ValidationError(errors)


def reject_level_flags(pair: QAPair) -> list[str]:
    return sorted(PairFlag.objects.filter(pair=pair, severity=Severity.REJECT).values_list("name", flat=True))


def _check_approvable(pair: QAPair, data: ReviewInput) -> None:
    """An approval (plain or with an edit) never takes an empty question or answer, and approving a pair with a
    reject-level flag needs the reviewer's confirmation, unless their edit changed the text."""
    if data.decision not in (Decision.APPROVE, Decision.EDIT):
        return
    errors = {}
    if data.decision == Decision.APPROVE:
        if is_blank(pair.question):
            errors["question"] = "The question is empty: an empty question cannot be approved. Edit the pair or reject it."
        if is_blank(pair.answer):
            errors["answer"] = "The answer is empty: an empty answer cannot be approved. Edit the pair or reject it."
    if errors:
        raise ValidationError(errors)
    edited = data.decision == Decision.EDIT and ((data.question or "").strip(), (data.answer or "").strip()) != (
        pair.question,
        pair.answer,
    )
    if not (data.confirm or edited):
        flags = reject_level_flags(pair)
        if flags:
            raise ValidationError(
                {"confirm": f"This pair has reject-level flags ({', '.join(flags)}). Confirm to approve it anyway, or edit it."}
            )


_STATUS_AFTER = {Decision.APPROVE: PairStatus.APPROVED, Decision.EDIT: PairStatus.EDITED, Decision.REJECT: PairStatus.REJECTED}


def _review_in_one_statement(pair_id: int, reviewer, data: ReviewInput) -> QAPair | None:
    """PostgreSQL, the common case: the pair is at the version the reviewer saw and leased to them. The lock, the
    update, the history row and the response row in one statement (atomic on its own). None when the case is not the
    common one (stale version, someone else's lease, a replay, a race on the unique key): the caller then takes the
    general path, which tells those apart."""
    pair_table = QAPair._meta.db_table
    chunk_table = QAPair._meta.get_field("chunk").related_model._meta.db_table
    flag_table = PairFlag._meta.db_table
    edit = data.decision == Decision.EDIT
    params = {
        "id": pair_id,
        "user": reviewer.pk,
        "version": data.version,
        "decision": data.decision,
        "status": _STATUS_AFTER[data.decision],
        "edit": edit,
        "question": (data.question or "").strip() if edit else "",
        "answer": (data.answer or "").strip() if edit else "",
        "reason": data.reason.strip(),
        "now": timezone.now(),
        "approving": data.decision in (Decision.APPROVE, Decision.EDIT),
        "confirm": data.confirm,
        "not_blank": VISIBLE_REGEX,
    }
    returned = _pair_columns("q")
    history = decision_insert_sql(
        source="changed",
        values={
            "pair_id": "id",
            "reviewer_id": "%(user)s",
            "decision": "%(decision)s",
            "question_before": "question_before",
            "answer_before": "answer_before",
            "question_after": "question",
            "answer_after": "answer",
            "status_before": "status_before",
            "status_after": "status",
            "reason": "%(reason)s",
            "version_before": "%(version)s",
            "is_bulk": "false",
            "bulk_action_id": "NULL",
            "created_at": "%(now)s",
        },
    )
    # An approval that _check_approvable would refuse (empty text, an unconfirmed reject-level flag) matches no row
    # here, and the general path then says why.
    sql = f"""
        WITH current AS (
            SELECT p.id, p.question, p.answer, p.status FROM {pair_table} p
            WHERE p.id = %(id)s AND p.version = %(version)s AND p.claimed_by_id = %(user)s AND p.status = 'pending'
              AND (NOT %(approving)s OR (
                  (%(edit)s OR (p.question ~ %(not_blank)s AND p.answer ~ %(not_blank)s))
                  AND (%(confirm)s OR (%(edit)s AND (p.question <> %(question)s OR p.answer <> %(answer)s))
                       OR NOT EXISTS (SELECT 1 FROM {flag_table} f WHERE f.pair_id = p.id AND f.severity = 'reject'))))
            FOR UPDATE OF p
        ), changed AS (
            UPDATE {pair_table} q SET
                question = CASE WHEN %(edit)s THEN %(question)s ELSE q.question END,
                answer = CASE WHEN %(edit)s THEN %(answer)s ELSE q.answer END,
                status = %(status)s, version = q.version + 1, claimed_by_id = NULL, lease_expires_at = NULL,
                updated_at = %(now)s
            FROM current, {chunk_table} c
            WHERE q.id = current.id AND c.id = q.chunk_id
            RETURNING {returned}, c.text AS chunk_text, current.question AS question_before,
                      current.answer AS answer_before, current.status AS status_before
        ), history AS (
            {history}
        )
        SELECT changed.*, (SELECT count(*) FROM history) AS recorded FROM changed
    """
    try:
        if connection.in_atomic_block:
            with transaction.atomic():  # a savepoint, so a unique-key race leaves the outer transaction usable
                rows = list(QAPair.objects.raw(sql, params))
        else:
            rows = list(QAPair.objects.raw(sql, params))
    except IntegrityError:
        return None
    return rows[0] if rows else None


def pair_review(*, pair_id: int, reviewer, data: ReviewInput) -> QAPair:
    """Record a decision against the version the reviewer saw. A stale version or another reviewer's lease is a
    conflict, never a silent overwrite; the same decision submitted twice is recorded once. A pending pair is decided
    by the reviewer who holds it; a decided pair may be decided again by a reviewer who saw its current version (after a
    conflict, to re-apply their text)."""
    data = replace(
        data,
        question=normalize_input(data.question),
        answer=normalize_input(data.answer),
        reason=normalize_input(data.reason) or "",
    )
    _validate(data)
    if data.decision == Decision.EDIT:
        # An "edit" that changes nothing (E, then save) is an approval: the pair is not marked edited, and no preference
        # pair with chosen equal to rejected reaches a DPO export.
        current = QAPair.objects.filter(pk=pair_id, version=data.version).values_list("question", "answer").first()
        if current is not None and current == ((data.question or "").strip(), (data.answer or "").strip()):
            data = replace(data, decision=Decision.APPROVE, question=None, answer=None)
    if _postgres() and data.decision in _STATUS_AFTER:
        pair = _review_in_one_statement(pair_id, reviewer, data)
        if pair is not None:
            return pair
    try:
        with transaction.atomic():
            pair = QAPair.objects.select_for_update().get(pk=pair_id)
            if pair.version != data.version:
                replay = _replayed(pair, reviewer, data)
                if replay:
                    return pair
                raise ReviewConflict(f"This pair changed since you opened it (version {data.version}, now {pair.version}).", pair)
            now = timezone.now()
            if pair.claimed_by_id != reviewer.pk:
                holder = pair.claimed_by.get_username() if pair.claimed_by_id else None
                if holder and pair.lease_expires_at and pair.lease_expires_at >= now:
                    raise ReviewConflict(f"{holder} is reviewing this pair now.", pair)
                if pair.status == PairStatus.PENDING:
                    raise ReviewConflict(
                        "You do not hold this pair (your lease lapsed, or you never claimed it); claim it from the queue.",
                        pair,
                    )
                if data.decision == Decision.SKIP:
                    raise ReviewConflict("This pair was already decided.", pair)
            if pair.status != PairStatus.PENDING and admin_decision_stands(pair, reviewer):
                raise ReviewConflict("A project admin decided this pair; only an admin can change their decision.", pair)
            _check_approvable(pair, data)
            if data.decision == Decision.SKIP:
                decision_record(
                    pair=pair, reviewer=reviewer, decision=Decision.SKIP, status_after=pair.status, reason=data.reason
                )
                # Skipped pairs go to the back of this reviewer's queue: the lease is released.
                pair.claimed_by, pair.lease_expires_at = None, None
                pair.save(update_fields=["claimed_by", "lease_expires_at", "updated_at"])
                return pair
            if data.decision == Decision.EDIT:
                question, answer = data.question.strip(), data.answer.strip()
            else:
                question, answer = pair.question, pair.answer
            status = _STATUS_AFTER[data.decision]
            decision_record(
                pair=pair,
                reviewer=reviewer,
                decision=data.decision,
                question_after=question,
                answer_after=answer,
                status_after=status,
                reason=data.reason.strip(),
            )
            pair.question, pair.answer, pair.status = question, answer, status
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


def admin_decision_stands(pair: QAPair, user) -> bool:
    """Whether a project admin's decision is the pair's last and `user` may not change it. A decided pair may be
    decided again by anyone who saw its current version (a reviewer re-applying their text after a conflict with
    another reviewer), except over an admin's decision: an admin's rejection or approval stands until an admin
    changes it."""
    last = (
        ReviewDecision.objects.filter(pair=pair)
        .exclude(decision=Decision.SKIP)
        .order_by("-id")
        .values_list("reviewer_id", flat=True)
        .first()
    )
    if last is None or last == user.pk:
        return False
    admins = set(
        get_user_model()
        .objects.filter(pk__in=[last, user.pk])
        .filter(Q(is_superuser=True) | Q(memberships__project_id=pair.project_id, memberships__role=Role.ADMIN))
        .values_list("pk", flat=True)
    )
    return last in admins and user.pk not in admins


def _replayed(pair: QAPair, reviewer, data: ReviewInput) -> bool:
    last = ReviewDecision.objects.filter(pair=pair, version_before=data.version).exclude(decision=Decision.SKIP).first()
    return bool(
        last
        and last.reviewer_id == reviewer.pk
        and last.decision == data.decision
        and pair.version == data.version + 1
        and (
            data.decision != Decision.EDIT
            or (last.question_after, last.answer_after) == ((data.question or "").strip(), (data.answer or "").strip())
        )
        # The same rejection with another reason is not a replay: it is a conflict, so the second reason is not
        # silently dropped. (An edit or approval sent again without its optional note is the same decision.)
        and (data.decision != Decision.REJECT or last.reason == data.reason.strip())
    )


def review_undo(*, project: Project, reviewer) -> QAPair:
    """Undo the reviewer's last decision in the project, if nobody changed the pair since; it comes back to them, leased.
    Undoing a skip gives the skipped pair back, unless another reviewer has taken it meanwhile."""
    with transaction.atomic():
        last = (
            ReviewDecision.objects.filter(pair__project=project, reviewer=reviewer, is_bulk=False)
            .exclude(decision=Decision.UNDO)
            .select_related("pair")
            .order_by("-created_at", "-id")
            .first()
        )
        if last is None:
            raise ValidationError("You have no decision to undo in this project.")
        pair = QAPair.objects.select_for_update().get(pk=last.pair_id)
        if ReviewDecision.objects.filter(pair=pair, reviewer=reviewer, decision=Decision.UNDO, id__gt=last.id).exists():
            raise AlreadyUndone(
                f"Your last decision (pair {pair.pk}) is undone already; only the last decision can be undone.", pair
            )
        now = timezone.now()
        if last.decision == Decision.SKIP:
            if pair.version != last.version_before:
                raise ReviewConflict("The pair changed after you skipped it; it cannot be undone.", pair)
            if pair.claimed_by_id not in (None, reviewer.pk) and pair.lease_expires_at and pair.lease_expires_at >= now:
                raise ReviewConflict(f"{pair.claimed_by.get_username()} took the pair you skipped; it cannot be undone.", pair)
        elif pair.version != last.version_before + 1:
            raise ReviewConflict("The pair changed after your decision; it cannot be undone.", pair)
        # An undo is a write like any other: it takes the pair to a new version (a skip's undo too, so the skip no
        # longer sends the pair to the back of the reviewer's queue).
        decision_record(
            pair=pair,
            reviewer=reviewer,
            decision=Decision.UNDO,
            question_after=last.question_before,
            answer_after=last.answer_before,
            status_after=last.status_before,
            reason=f"Undo of {last.get_decision_display().lower()}",
        )
        pair.question, pair.answer, pair.status = last.question_before, last.answer_before, last.status_before
        pair.version += 1
        pair.claimed_by, pair.lease_expires_at = reviewer, now + timedelta(seconds=project.lease_seconds)
        pair.save(update_fields=["question", "answer", "status", "version", "claimed_by", "lease_expires_at", "updated_at"])
        return pair


def pair_admin_decide(*, pair_id: int, admin, action: str, version: int, reason: str = "") -> QAPair:
    """An admin's action from the pair's own page: reject it (with a reason) or reopen it (back to pending, its text
    kept), whatever its status and whoever holds it. Made against the version the admin saw, recorded in the history;
    a reviewer holding the pair meets a conflict when they submit."""
    if action not in (Decision.REJECT, Decision.REOPEN):
        raise ValidationError(f"Unknown action {action!r}.")
    reason = (normalize_input(reason) or "").strip()
    if action == Decision.REJECT and not reason:
        raise ValidationError({"reason": "Say why this pair is rejected."})
    if len(reason) > REASON_MAX_CHARS:
        raise ValidationError({"reason": f"Keep the reason to {REASON_MAX_CHARS:,} characters (it has {len(reason):,})."})
    with transaction.atomic():
        pair = QAPair.objects.select_for_update().get(pk=pair_id)
        if pair.version != version:
            raise ReviewConflict(f"This pair changed since you opened it (version {version}, now {pair.version}).", pair)
        after = PairStatus.REJECTED if action == Decision.REJECT else PairStatus.PENDING
        if pair.status == after:
            raise ValidationError(f"The pair is {pair.get_status_display().lower()} already.")
        decision_record(pair=pair, reviewer=admin, decision=action, status_after=after, reason=reason or "Reopened by an admin")
        pair.status, pair.version = after, pair.version + 1
        pair.claimed_by, pair.lease_expires_at = None, None
        pair.save(update_fields=["status", "version", "claimed_by", "lease_expires_at", "updated_at"])
        return pair


def leases_release_on_logout(sender, request, user, **kwargs) -> None:
    """A reviewer who logs out gives back the pending pairs they hold (the one on screen and the preloaded one), so
    other reviewers get them now rather than when the lease lapses. A decision sent later meets a conflict that keeps
    its text."""
    if user is not None:
        QAPair.objects.filter(claimed_by=user, status=PairStatus.PENDING).update(claimed_by=None, lease_expires_at=None)
