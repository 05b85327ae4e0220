"""How a decision enters a pair's history: every `ReviewDecision` row is built here.

The row's "before" is always the pair as it stands when the decision is made (its text, status and version); the caller
says what the decision makes of it. The review queue's one-statement PostgreSQL path writes the same row in SQL, with
the column list checked against the model here, so a column added to the history cannot be left out of that path.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from workbench.generation.models import QAPair
from workbench.review.models import BulkAction, ReviewDecision


def decision_build(
    *,
    pair: QAPair,
    reviewer,
    decision: str,
    status_after: str,
    question_after: str | None = None,
    answer_after: str | None = None,
    reason: str = "",
    bulk_action: BulkAction | None = None,
) -> ReviewDecision:
    """The unsaved row for a decision made now on `pair`; the text after defaults to the text before (no edit)."""
    return ReviewDecision(
        pair=pair,
        reviewer=reviewer,
        decision=decision,
        question_before=pair.question,
        answer_before=pair.answer,
        question_after=pair.question if question_after is None else question_after,
        answer_after=pair.answer if answer_after is None else answer_after,
        status_before=pair.status,
        status_after=status_after,
        reason=reason,
        version_before=pair.version,
        is_bulk=bulk_action is not None,
        bulk_action=bulk_action,
    )


def decision_record(**fields) -> ReviewDecision:
    """Build (as `decision_build`) and write one decision row."""
    row = decision_build(**fields)
    row.save(force_insert=True)
    return row


def decisions_record(rows: Iterable[ReviewDecision]) -> None:
    """Write many built rows in a few INSERTs (bulk actions and their undo)."""
    ReviewDecision.objects.bulk_create(rows, batch_size=1000)


def _inserted_columns() -> list[str]:
    return [f.column for f in ReviewDecision._meta.concrete_fields if not f.primary_key]


def decision_insert_sql(*, source: str, values: dict[str, str]) -> str:
    """`INSERT ... SELECT ... FROM source RETURNING id` of decision rows, for a statement that writes the pair and its
    history at once; `values` maps every column of the row to its SQL expression (a missing or unknown one raises)."""
    columns = _inserted_columns()
    if set(values) != set(columns):
        raise ValueError(
            f"decision columns not given: {sorted(set(columns) - set(values))}; unknown: {sorted(set(values) - set(columns))}"
        )
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {quote(ReviewDecision._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
        f"SELECT {', '.join(values[c] for c in columns)} FROM {source} RETURNING id"
    )
