"""Writing exports: streamed with constant memory, with a manifest, from one consistent snapshot on PostgreSQL.

Progress is never written inside the snapshot (its transaction is read-only): on PostgreSQL a second connection writes
it; on SQLite (one machine), which has one writer at a time, the rows are read in pages by id, without a long
transaction, and progress is written between them."""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from workbench.exports.formats import EXTENSIONS, FORMATS, build, flat_columns, neutralize_cell, split_of
from workbench.exports.models import Export
from workbench.generation.models import Generation, GenerationRun, PairStatus, QAPair
from workbench.jobs import job_run, job_send_on_commit
from workbench.projects.models import Project
from workbench.review.blank import is_blank
from workbench.review.models import Decision, ReviewDecision


@dataclass(frozen=True)
class ExportOptions:
    statuses: tuple[str, ...] = (PairStatus.APPROVED, PairStatus.EDITED)
    grounded: bool = False  # put the source chunk in the prompt
    metadata: bool = False  # document, chunk, run, adapter, flags, reviewer columns
    validation_percent: int = 0  # deterministic split by document
    split_seed: str = "workbench"

    def __post_init__(self):
        bad = set(self.statuses) - {PairStatus.APPROVED, PairStatus.EDITED, PairStatus.REJECTED, PairStatus.PENDING}
        if bad or not self.statuses:
            raise ValueError(f"unknown statuses: {', '.join(sorted(bad)) or 'none given'}")
        if not 0 <= self.validation_percent <= 50:
            raise ValueError("validation_percent must be between 0 and 50")


def _statuses_for(fmt: str, options: ExportOptions) -> list[str]:
    # Preference pairs come from reviewer edits only: the chosen text against the model's original.
    return [PairStatus.EDITED] if fmt == "dpo" else list(options.statuses)


def _pages(qs, size: int):
    """The rows in pages by id, each page read whole before it is handed on, so no statement stays open between pages
    and a write between them commits at once (SQLite)."""
    last = 0
    while page := list(qs.filter(id__gt=last)[:size]):
        yield from page
        last = page[-1]["id"]


def _rows(project: Project, options: ExportOptions, fmt: str, *, batch: int):
    statuses = _statuses_for(fmt, options)
    last_reviewer = (
        ReviewDecision.objects.filter(pair=OuterRef("pk"))
        .exclude(decision__in=[Decision.SKIP])
        .order_by("-created_at", "-id")
        .values("reviewer__username")[:1]
    )
    qs = (
        QAPair.objects.filter(project=project, status__in=statuses)
        .order_by("id")
        .values("id", "question", "answer", "original_question", "original_answer", "status", "flags", "chunk_id")
        .annotate(
            chunk_text=F("chunk__text"),
            document_id=F("chunk__document_id"),
            document_title=F("chunk__document__title"),
            document_hash=F("chunk__document__content_hash"),
            run_id=F("generation__run_id"),
            reviewer=Subquery(last_reviewer),
        )
    )
    adapters = dict(GenerationRun.objects.filter(project=project).values_list("id", "parameters__adapter"))
    # PostgreSQL: a server-side cursor inside the snapshot; elsewhere, pages by id. Memory stays flat either way.
    rows = qs.iterator(chunk_size=batch) if connection.vendor == "postgresql" else _pages(qs, batch)
    try:
        for row in rows:
            row["adapter"] = adapters.get(row["run_id"], "")
            yield row
    finally:
        # Closed here, inside the export's transaction: left to the garbage collector, the server-side cursor's CLOSE
        # could run inside a later transaction that no longer has it, and abort that one.
        rows.close()


def _has_empty_turn(fmt: str, row: dict) -> bool:
    """A pair with an empty question or answer (or one that shows nothing: spaces, zero-width characters) would train on
    an empty turn; it is left out."""
    texts = [row["question"], row["answer"]] + ([row["original_answer"]] if fmt == "dpo" else [])
    return any(is_blank(text) for text in texts)


class _Sink:
    """One output file per split, hashed as it is written."""

    PARQUET_BATCH = 20_000  # rows per Parquet row group written

    def __init__(self, path: Path, fmt: str, columns: list[tuple[str, str]]):
        self.path, self.fmt, self.rows = path, fmt, 0
        self.digest = hashlib.sha256()
        self.file = open(path, "wb")
        self._csv = [name for name, _ in columns]
        self._parquet = None
        self._batch: list[dict] = []
        if fmt == "csv":
            # Excel reads a CSV without a byte-order mark in the system code page (CP949 on Korean Windows).
            buf = io.StringIO()
            csv.writer(buf).writerow(self._csv)  # the header, also when no row follows
            header = codecs.BOM_UTF8 + buf.getvalue().encode("utf-8")
            self.file.write(header)
            self.digest.update(header)
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in columns])
            self._parquet = pq.ParquetWriter(self.file, self._schema, compression="zstd")

    def write(self, record: dict) -> None:
        self.rows += 1
        if self.fmt == "parquet":
            self._batch.append(record)
            if len(self._batch) >= self.PARQUET_BATCH:
                self._flush_parquet()
            return
        if self.fmt == "csv":
            buf = io.StringIO()
            csv.writer(buf).writerow([neutralize_cell(record[k]) for k in self._csv])
            data = buf.getvalue().encode("utf-8")
        else:
            data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        self.digest.update(data)
        self.file.write(data)

    def _flush_parquet(self) -> None:
        import pyarrow as pa

        if not self._batch:
            return
        self._parquet.write_table(pa.Table.from_pylist(self._batch, schema=self._schema))
        self._batch = []

    def close(self) -> dict:
        if self.fmt == "parquet":
            self._flush_parquet()
            self._parquet.close()
        self.file.close()
        if self.fmt == "parquet":
            self.digest = hashlib.sha256(self.path.read_bytes())
        return {"file": self.path.name, "rows": self.rows, "sha256": self.digest.hexdigest(), "bytes": self.path.stat().st_size}


def export_write(*, project: Project, fmt: str, options: ExportOptions, out_dir: Path, created_by=None, progress=None) -> dict:
    """Write the export's files and manifest into out_dir from one snapshot of the database; return the manifest.

    `progress(rows_written)` is called after every EXPORT_BATCH_ROWS rows, from inside the snapshot on PostgreSQL:
    it must write through another connection (see `_progress_writer`)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    sinks: dict[str, _Sink] = {}
    counts: Counter = Counter()
    skipped_empty = skipped_same = 0
    # The documents of the pairs written, for the warning when none fell into the validation share: the pairs the
    # format takes and keeps (DPO: edited answers only), not every pair of the statuses asked for. Kept only while that
    # warning may still be due, so a large export holds no set of every document.
    train_documents: set[str] = set()
    columns = flat_columns(grounded=options.grounded, metadata=options.metadata)
    outermost = not connection.in_atomic_block
    batch = settings.EXPORT_BATCH_ROWS
    snapshot = connection.vendor == "postgresql"
    with transaction.atomic() if snapshot else contextlib.nullcontext():
        if snapshot and outermost:
            # One snapshot for the whole export: reviews that continue meanwhile never produce a half-updated file.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        with contextlib.closing(_rows(project, options, fmt, batch=batch)) as rows:  # closed here if a write fails
            for n, row in enumerate(rows, start=1):
                if _has_empty_turn(fmt, row):
                    skipped_empty += 1
                    continue
                if fmt == "dpo" and row["answer"].strip() == row["original_answer"].strip():
                    # Only the question was edited: chosen and rejected would be one text, no preference to learn.
                    skipped_same += 1
                    continue
                split = split_of(row["document_hash"], validation_percent=options.validation_percent, seed=options.split_seed)
                if options.validation_percent and "validation" not in sinks:
                    train_documents.add(row["document_hash"])
                if split not in sinks:
                    sinks[split] = _Sink(out_dir / f"{split}.{EXTENSIONS[fmt]}", fmt, columns)
                sinks[split].write(build(fmt, row, grounded=options.grounded, metadata=options.metadata))
                counts[(row["status"], split)] += 1
                if progress and n % batch == 0:
                    progress(n)
        runs = list(GenerationRun.objects.filter(project=project).values("id", "parameters"))
        # Each run's matmul precisions and samplings (top-k and top-p as the workers resolved them), in one scan.
        precisions: dict[int, list[str]] = {}
        samplings: dict[int, list[dict]] = {}
        for run_id, precision, sampling in (
            Generation.objects.filter(run__project=project)
            .values_list("run_id", "precision", "sampling")
            .distinct()
            .order_by("run_id", "precision")
        ):
            if precision and precision not in precisions.setdefault(run_id, []):
                precisions[run_id].append(precision)
            if sampling and sampling not in samplings.setdefault(run_id, []):
                samplings[run_id].append(sampling)
    if "train" not in sinks:
        sinks["train"] = _Sink(out_dir / f"train.{EXTENSIONS[fmt]}", fmt, columns)
    warnings = []
    if options.validation_percent > 0 and "validation" not in sinks:
        # The split is by document: with few documents, none may fall into the validation share. Said, not hidden.
        documents = len(train_documents)
        if documents:
            warnings.append(
                f"No validation file: none of the {documents} document{'s' if documents != 1 else ''} with exported pairs "
                f"fell into the {options.validation_percent}% validation share (the split is by document, so no document "
                "is in both). Add documents or raise the share to get one."
            )
        else:
            warnings.append("No validation file: no pair was exported, so there was nothing to split.")
    if skipped_empty:
        turns = (
            "a question, an answer or the model's original answer (the rejected side)"
            if fmt == "dpo"
            else "a question or an answer"
        )
        warnings.append(
            f"{skipped_empty} pair{'s' if skipped_empty != 1 else ''} left out: {turns} that shows nothing "
            "(empty, spaces or invisible characters only); a training set never gets an empty turn."
        )
    if skipped_same:
        warnings.append(
            f"{skipped_same} edited pair{'s' if skipped_same != 1 else ''} left out: the answer is the model's own "
            "(only the question was edited), so chosen and rejected would be the same text."
        )
    exported_statuses = _statuses_for(fmt, options)
    if fmt == "dpo" and PairStatus.EDITED not in options.statuses:
        warnings.append(
            "DPO pairs come from edited pairs only (the reviewer's answer chosen, the model's rejected); the statuses "
            f"asked for ({', '.join(options.statuses)}) do not apply."
        )
    files = [sink.close() for sink in sinks.values()]
    manifest = {
        "project": project.slug,
        "format": fmt,
        "options": asdict(options) | {"statuses": list(exported_statuses)},
        "counts": {
            "total": sum(counts.values()),
            "by_status": {s: sum(v for (st, _), v in counts.items() if st == s) for s in exported_statuses},
            "by_split": {split: sum(v for (_, sp), v in counts.items() if sp == split) for split in sinks},
            "skipped_empty": skipped_empty,
            "skipped_same_answer": skipped_same,
        },
        "warnings": warnings,
        "files": sorted(files, key=lambda f: f["file"]),
        "project_settings": {
            "adapter_preset": project.adapter_preset,
            "base_model": project.base_model,
            "base_model_revision": project.base_model_revision,
            "adapter": project.adapter,
            "adapter_revision": project.adapter_revision,
            "prompt_template": project.prompt_template,
            "temperature": project.temperature,
            "top_k": project.top_k,
            "top_p": project.top_p,
            "max_new_tokens": project.max_new_tokens,
            "filter_thresholds": project.filter_thresholds,
        },
        "runs": [
            {
                "id": r["id"],
                **{
                    k: r["parameters"].get(k)
                    for k in ("base_model", "base_model_revision", "adapter", "adapter_revision", "prompt_template_hash", "seed")
                },
                "precision": precisions.get(r["id"], []),
                "sampling": samplings.get(r["id"], []),
            }
            for r in runs
        ],
        "created_at": timezone.now().isoformat(),
        "created_by": created_by.get_username() if created_by else None,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return manifest


def export_record(*, project: Project, fmt: str, options: ExportOptions, created_by) -> Export:
    return Export.objects.create(
        project=project, created_by=created_by, format=fmt, options=asdict(options) | {"statuses": list(options.statuses)}
    )


def export_create(*, project: Project, fmt: str, options: ExportOptions, created_by) -> Export:
    """A large export: recorded now, written by a CPU worker (progress on the row)."""
    export = export_record(project=project, fmt=fmt, options=options, created_by=created_by)
    job_send_on_commit(export)
    return export


@contextlib.contextmanager
def _progress_writer(export_id: int):
    """A function that records the export's progress on its row, committed at once, outside the export's snapshot.

    PostgreSQL: through a second connection to the same database (the snapshot's transaction is read-only, and what it
    wrote would stay invisible until the end anyway). SQLite allows one writer at a time and the export holds no
    transaction there: the connection itself writes, between pages of reading."""
    if connection.vendor != "postgresql":
        yield lambda n: Export.objects.filter(pk=export_id).update(rows_done=n)
        return
    second = connections.create_connection(DEFAULT_DB_ALIAS)
    sql = f"UPDATE {connection.ops.quote_name(Export._meta.db_table)} SET rows_done = %s WHERE id = %s"

    def write(n: int) -> None:
        with second.cursor() as cursor:
            cursor.execute(sql, [n, export_id])

    try:
        yield write
    finally:
        second.close()


def export_run(*, export_id: int) -> Export:
    """Write a recorded export's files, with its progress on the row (a job: `workbench.jobs.job_run`). An export a
    lost worker left running is written again from the start when its message comes back (the broker's visibility
    timeout outlasts any live task): the files are replaced, and its snapshot is taken anew."""
    return job_run(
        model=Export,
        job_id=export_id,
        work=_export_files,
        queryset=Export.objects.select_related("project", "created_by"),
        resume=True,
    )


def _export_files(export: Export) -> dict:
    export_id = export.pk
    options = ExportOptions(**{**export.options, "statuses": tuple(export.options.get("statuses", ()))})
    total = QAPair.objects.filter(project=export.project, status__in=_statuses_for(export.format, options)).count()
    Export.objects.filter(pk=export_id).update(rows_total=total)
    out_dir = Path(settings.MEDIA_ROOT) / "exports" / str(export.pk)
    with _progress_writer(export_id) as progress:
        manifest = export_write(
            project=export.project,
            fmt=export.format,
            options=options,
            out_dir=out_dir,
            created_by=export.created_by,
            progress=progress,
        )
    return {"manifest": manifest, "rows_done": manifest["counts"]["total"], "file": f"exports/{export.pk}/manifest.json"}
