"""Writes of source documents and chunks: one import service behind the upload form, the admin, the CLI and the API."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings as django_settings
from django.db import DatabaseError, models, transaction
from django.db.models.deletion import get_candidate_relations_to_delete
from django.template.defaultfilters import pluralize

from workbench.documents.chunking import ChunkSettings, ChunkSettingsError, chunk_text, measure_for
from workbench.documents.importers import FieldMap, ImportProblem, Limits, ParsedDocument, parse_file
from workbench.documents.models import Chunk, ImportJob, SourceDocument
from workbench.documents.text import normalize_text
from workbench.jobs import job_run, job_send_on_commit
from workbench.projects.models import Project
from workbench.projects.services import project_lock

logger = logging.getLogger(__name__)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_settings_for(project: Project) -> ChunkSettings:
    """The project's chunking settings, checked before anything is cut or written (its tokenizer loaded): a setting
    that cannot be used raises ChunkSettingsError with a message for the user."""
    try:
        settings = ChunkSettings(
            unit=project.chunk_unit,
            target=project.chunk_target_size,
            maximum=project.chunk_max_size,
            overlap=project.chunk_overlap,
            tokenizer=project.tokenizer if project.chunk_unit == "tokens" else "",
        )
        measure_for(settings)
    except ChunkSettingsError as exc:
        raise ChunkSettingsError(
            f"The project's chunking settings cannot be used: {exc}. A project admin fixes them in the project's "
            "settings (Chunking: the tokenizer, or measure chunks in characters)."
        ) from exc
    return settings


@dataclass
class FileReport:
    name: str
    status: str  # "imported", "unchanged" or "failed"
    documents_created: int = 0
    documents_existing: int = 0
    chunks_created: int = 0
    error: str = ""
    locator: str = ""
    encoding: str = ""  # the encodings its text was read in, e.g. "cp949" (empty for PDF and DOCX)

    def summary(self) -> str:
        """What an imported file added, as the upload page and the admin say it."""
        return (
            f"{self.name}: {self.documents_created} new document{pluralize(self.documents_created)}, "
            f"{self.documents_existing} already present, {self.chunks_created} chunk{pluralize(self.chunks_created)}."
        )

    def as_dict(self) -> dict:
        # Names and messages echo the upload: kept storable (a job's report is a jsonb column) and printable.
        return {k: _printable(v) if isinstance(v, str) else v for k, v in asdict(self).items()}


def _printable(text: str) -> str:
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


@dataclass
class ImportReport:
    files: list[FileReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.status != "failed" for f in self.files)

    @property
    def documents_created(self) -> int:
        return sum(f.documents_created for f in self.files)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "documents_created": self.documents_created, "files": [f.as_dict() for f in self.files]}


def documents_import(
    *,
    project: Project,
    files: Iterable[tuple[str, bytes]],
    fields: FieldMap = FieldMap(),
    limits: Limits | None = None,
    progress: Callable[[ImportReport], None] | None = None,
    done: Iterable[FileReport] = (),
) -> ImportReport:
    """Import each file atomically: a file with one bad record imports nothing; other files are unaffected.
    `progress` is called with the report so far after each file. `done`: the reports of files an earlier attempt of
    the same import recorded (a resumed job), which lead the report and count against the document limit."""
    limits = limits or Limits()
    report = ImportReport(files=list(done))
    budget = limits.max_documents - sum(f.documents_created + f.documents_existing for f in report.files)
    try:
        settings = chunk_settings_for(project)
    except ChunkSettingsError as exc:  # nothing can be chunked: every file fails with the reason, nothing is written
        for name, _ in files:
            report.files.append(FileReport(name=name, status="failed", error=str(exc)))
        if progress:
            progress(report)
        return report
    for name, raw in files:
        try:
            parsed = _parse(name, raw, fields=fields, limits=limits)
            if len(parsed) > budget:
                raise ImportProblem(f"importing it would pass the limit of {limits.max_documents:,} documents per import")
            created, existing, chunks = _store(project=project, parsed=parsed, settings=settings)
        except ImportProblem as exc:
            report.files.append(FileReport(name=name, status="failed", error=exc.reason, locator=exc.locator))
        except DatabaseError as exc:
            # _store's transaction is rolled back: nothing of this file is written, and the batch goes on.
            logger.exception("import of %r failed in the database", name)
            report.files.append(
                FileReport(name=name, status="failed", error=f"the database refused the file's content ({type(exc).__name__})")
            )
        else:
            budget -= len(parsed)
            report.files.append(
                FileReport(
                    name=name,
                    status="imported" if created else "unchanged",
                    documents_created=created,
                    documents_existing=existing,
                    chunks_created=chunks,
                    encoding=", ".join(sorted({d.encoding for d in parsed if d.encoding})),
                )
            )
        if progress:
            progress(report)
    return report


def _parse(name: str, raw: bytes, *, fields: FieldMap, limits: Limits) -> list[ParsedDocument]:
    """parse_file, where a parser failing in a way nobody foresaw is that file's failure, not the whole batch's."""
    try:
        return parse_file(name, raw, fields=fields, limits=limits)
    except ImportProblem:
        raise
    except Exception as exc:
        logger.exception("unexpected error while reading %r", name)
        raise ImportProblem(f"the file could not be read ({type(exc).__name__})") from None


@transaction.atomic
def _store(*, project: Project, parsed: list[ParsedDocument], settings: ChunkSettings) -> tuple[int, int, int]:
    by_hash: dict[str, ParsedDocument] = {}
    for doc in parsed:
        by_hash.setdefault(content_hash(doc.text), doc)  # the same text twice in one file is one document
    existing = set(
        SourceDocument.objects.filter(project=project, content_hash__in=list(by_hash)).values_list("content_hash", flat=True)
    )
    new = [
        SourceDocument(
            project=project,
            content_hash=digest,
            text=doc.text,
            title=doc.title,
            external_id=doc.external_id,
            metadata=doc.metadata,
            origin_filename=doc.origin_filename,
            origin_size=doc.origin_size,
            origin_sha256=doc.origin_sha256,
            origin_locator=doc.locator,
        )
        for digest, doc in by_hash.items()
        if digest not in existing
    ]
    # ignore_conflicts: a concurrent import of the same content wins quietly instead of failing this file.
    SourceDocument.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    created_docs = SourceDocument.objects.filter(
        project=project, content_hash__in=[d.content_hash for d in new], chunks__isnull=True
    ).only("id", "text")
    chunk_count = 0
    for document in created_docs.iterator(chunk_size=200):
        chunk_count += _chunk_document(document=document, settings=settings)
    return len(new), len(parsed) - len(new), chunk_count


def _chunk_document(*, document: SourceDocument, settings: ChunkSettings) -> int:
    spans = chunk_text(document.text, settings)
    Chunk.objects.bulk_create(
        [
            Chunk(
                document_id=document.pk,
                chunking_key=settings.key,
                index=index,
                text=document.text[span.start : span.end],
                start=span.start,
                end=span.end,
                size=span.size,
                is_current=True,
            )
            for index, span in enumerate(spans)
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )
    return len(spans)


@transaction.atomic
def source_document_create(
    *, project: Project, text: str, title: str = "", origin_filename: str = "", origin_size: int | None = None
) -> tuple[SourceDocument, bool]:
    """One document from text already in hand (the demo's samples), chunked with the project's settings."""
    text = normalize_text(text)
    if not text:
        raise ImportProblem("the document has no text")
    document, created = SourceDocument.objects.get_or_create(
        project=project,
        content_hash=content_hash(text),
        defaults={"text": text, "title": title, "origin_filename": origin_filename, "origin_size": origin_size},
    )
    if created:
        _chunk_document(document=document, settings=chunk_settings_for(project))
    return document, created


@transaction.atomic
def project_rechunk(*, project: Project) -> dict:
    """Cut every document with the project's current settings. Chunks from earlier settings are retired, not deleted:
    pairs generated from them stay attached to the exact text they came from."""
    settings = chunk_settings_for(project)
    project_lock(project.pk)  # not beside a deletion of its documents
    documents = SourceDocument.objects.filter(project=project)
    retired = (
        Chunk.objects.filter(document__project=project, is_current=True)
        .exclude(chunking_key=settings.key)
        .update(is_current=False)
    )
    revived = Chunk.objects.filter(document__project=project, chunking_key=settings.key, is_current=False).update(is_current=True)
    have = set(Chunk.objects.filter(document__project=project, chunking_key=settings.key).values_list("document_id", flat=True))
    created = 0
    for document in documents.exclude(pk__in=have).only("id", "text").iterator(chunk_size=200):
        created += _chunk_document(document=document, settings=settings)
    return {"retired": retired, "revived": revived, "created": created, "chunking_key": settings.key}


def _job_dir(job_id: int) -> Path:
    return Path(django_settings.MEDIA_ROOT) / "imports" / str(job_id)


@transaction.atomic
def import_job_create(*, project: Project, uploads, fields: FieldMap, created_by) -> ImportJob:
    """A large upload: each file stored under MEDIA_ROOT as it streams in, then imported by a CPU worker. `uploads` are
    Django uploaded files (a name and `chunks()`)."""
    job = ImportJob.objects.create(project=project, created_by=created_by, fields=asdict(fields))
    directory = _job_dir(job.pk)
    stored = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for index, upload in enumerate(uploads):
            path = directory / str(index)  # the uploaded name is kept in the row, never used as a path
            with open(path, "wb") as out:
                for part in upload.chunks():
                    out.write(part)
            stored.append(
                {"name": upload.name, "path": str(path.relative_to(django_settings.MEDIA_ROOT)), "size": path.stat().st_size}
            )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        job.delete()
        raise
    ImportJob.objects.filter(pk=job.pk).update(uploads=stored, files_total=len(stored))
    job.refresh_from_db()
    job_send_on_commit(job)
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """Import a stored upload, file by file (each whole or not at all), with the progress and the report on the row.
    A job a lost worker left running (its message delivered again once the broker's visibility timeout lapses, which
    outlasts any live task) resumes after the files its report holds: each of those was committed whole. Its stored
    files are removed when it ends, done or failed."""
    return job_run(
        model=ImportJob,
        job_id=job_id,
        work=_import_stored,
        resume=True,
        queryset=ImportJob.objects.select_related("project"),
        cleanup=lambda: shutil.rmtree(_job_dir(job_id), ignore_errors=True),
    )


def _import_stored(job: ImportJob) -> dict:
    job_id = job.pk
    root = Path(django_settings.MEDIA_ROOT)

    done = [FileReport(**f) for f in (job.report or {}).get("files", [])][: len(job.uploads)]

    def files():
        for upload in job.uploads[len(done) :]:
            yield upload["name"], (root / upload["path"]).read_bytes()

    def progress(report: ImportReport) -> None:
        ImportJob.objects.filter(pk=job_id).update(files_done=len(report.files), report=report.as_dict())

    report = documents_import(project=job.project, files=files(), fields=FieldMap(**job.fields), progress=progress, done=done)
    return {"files_done": len(report.files), "report": report.as_dict()}


class DeletionRefused(Exception):
    """A deletion that would pull rows from under a live generation run; the message is for the user."""


def deletion_counts(*, documents) -> dict[str, int]:
    """What deleting these documents removes with them, counted (shown before anyone confirms; listing every row of a
    large project would take longer than a request may)."""
    from workbench.generation.models import QAPair  # apps above this one, not when the module loads
    from workbench.review.models import ReviewDecision

    pairs = QAPair.objects.filter(chunk__document__in=documents)
    return {
        "documents": documents.count(),
        "chunks": Chunk.objects.filter(document__in=documents).count(),
        "pairs": pairs.count(),
        "reviewed": pairs.exclude(status="pending").count(),
        "decisions": ReviewDecision.objects.filter(pair__chunk__document__in=documents).count(),
    }


def live_run_message(*, project: Project, lock: bool = False) -> str:
    """Why the project's documents cannot be deleted now ("" when they can): a run of it is live."""
    from workbench.generation.models import GenerationRun, RunStatus

    live = GenerationRun.objects.filter(
        project=project, status__in=[RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.DISPATCH_FAILED]
    )
    run = (live.select_for_update() if lock else live).order_by("pk").first()
    if run is None:
        return ""
    return f"Run {run.pk} of project {project.name} is generating; cancel it or let it finish, then delete."


def too_large_message(*, project: Project, counts: dict[str, int], documents: bool = True) -> str:
    """Why this deletion is not made in a request ("" when it can be): more pairs than DELETE_INLINE_MAX_PAIRS."""
    limit = django_settings.DELETE_INLINE_MAX_PAIRS
    if counts["pairs"] <= limit:
        return ""
    command = f"python manage.py delete_project {project.slug}" + (" --document ID" if documents else "")
    return (
        f"{counts['pairs']:,} pairs go with this deletion, more than a request deletes in time ({limit:,}, "
        f"DELETE_INLINE_MAX_PAIRS): run `{command}` on the server instead."
    )


@transaction.atomic
def documents_delete(*, project: Project, document_ids, inline: bool = True, documents_only: bool = True) -> dict:
    """Delete documents with everything made from them: chunks, generations, pairs and their reviews, flags and audit
    items. Pairs keep their chunk's exact text (the chunk is protected while a pair or generation holds it), so those go
    first. Refused while a run of the project is live: its workers would store results for chunks that are gone.
    Exports already written keep their files. `inline` (a page, the admin): refused above DELETE_INLINE_MAX_PAIRS."""
    # The project's row first (a run starting or retried, a re-chunk take it too), then its live runs.
    project_lock(project.pk)
    refused = live_run_message(project=project, lock=True)
    if refused:
        raise DeletionRefused(refused)
    documents = SourceDocument.objects.filter(project=project, pk__in=list(document_ids))
    counts = deletion_counts(documents=documents)
    too_large = inline and too_large_message(project=project, counts=counts, documents=documents_only)
    if too_large:
        raise DeletionRefused(too_large)
    rows_delete(documents)
    return counts


def rows_delete(queryset: models.QuerySet) -> int:
    """Delete the queryset's rows and every row that depends on them, leaves first, each table in one DELETE filtered
    by a subquery; rows that only point at them (SET_NULL) are cleared. Django's `delete()` loads every row as a model
    instance first, which for a large project (a million pairs) outlasts a request and its memory. There are no delete
    signals in the workbench to skip. PROTECT counts as CASCADE here: the caller deletes on purpose what protects (a
    chunk's pairs and generations go before the chunk)."""
    model = queryset.model
    for m2m in model._meta.many_to_many:
        through = m2m.remote_field.through
        if through._meta.auto_created:
            rows_delete(through._base_manager.filter(**{f"{m2m.m2m_field_name()}__in": queryset.values("pk")}))
    for relation in get_candidate_relations_to_delete(model._meta):  # as the collector walks them, hidden ones too
        if relation.on_delete is models.DO_NOTHING:
            continue
        dependents = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": queryset.values("pk")})
        if relation.on_delete is models.SET_NULL:
            dependents.update(**{relation.field.name: None})
        else:
            rows_delete(dependents)
    return queryset._raw_delete(queryset.db)


@transaction.atomic
def project_delete(*, project: Project, inline: bool = True) -> None:
    """Delete a project with everything in it (refused while one of its runs is live, as for documents), and once
    that commits the files of its exports and stored uploads, which no row would reach any more."""
    folders = [Path(django_settings.MEDIA_ROOT) / "exports" / str(pk) for pk in project.exports.values_list("pk", flat=True)]
    folders += [_job_dir(pk) for pk in project.import_jobs.values_list("pk", flat=True)]
    documents_delete(
        project=project, document_ids=project.documents.values_list("pk", flat=True), inline=inline, documents_only=False
    )
    rows_delete(Project.objects.filter(pk=project.pk))
    transaction.on_commit(lambda: [shutil.rmtree(folder, ignore_errors=True) for folder in folders])


def deletion_summary(*, documents) -> tuple[list[str], dict[str, int]]:
    """`deletion_counts` as the admin's confirmation page lists them."""
    counts = deletion_counts(documents=documents)
    names = {"documents": "documents", "chunks": "chunks", "pairs": "pairs", "decisions": "review decisions"}
    counts = {name: counts[key] for key, name in names.items()}
    return [f"{n:,} {name}" for name, n in counts.items()], counts
