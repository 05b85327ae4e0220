"""Parsers from uploaded files to documents: text, Markdown, JSON Lines, JSON, CSV, PDF, DOCX and ZIP archives.

A parser reads a whole file before anything is written, and raises `ImportProblem` naming the file, the line, row or
record, and why; the import service then writes nothing for that file.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import posixpath
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings

from workbench.documents.text import DecodeError, decode_bytes, looks_binary, normalize_text

TEXT_FORMATS = {".txt", ".md", ".markdown"}
RECORD_FORMATS = {".jsonl", ".ndjson", ".json", ".csv"}
BINARY_FORMATS = {".pdf", ".docx"}
ARCHIVE_FORMATS = {".zip"}
SUPPORTED = sorted(TEXT_FORMATS | RECORD_FORMATS | BINARY_FORMATS | ARCHIVE_FORMATS)


class ImportProblem(Exception):
    def __init__(self, reason: str, *, locator: str = ""):
        self.reason, self.locator = reason, locator
        super().__init__(f"{locator}: {reason}" if locator else reason)


@dataclass(frozen=True)
class FieldMap:
    """Which record fields hold the text, title and id; every other field goes into metadata."""

    text: str = "text"
    title: str = "title"
    id: str = "id"


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = field(default_factory=lambda: settings.DOCUMENTS_MAX_UPLOAD_BYTES)
    max_documents: int = field(default_factory=lambda: settings.DOCUMENTS_MAX_PER_IMPORT)
    max_archive_members: int = field(default_factory=lambda: settings.DOCUMENTS_MAX_ARCHIVE_MEMBERS)
    max_archive_bytes: int = field(default_factory=lambda: settings.DOCUMENTS_MAX_ARCHIVE_BYTES)


@dataclass
class ParsedDocument:
    text: str
    title: str = ""
    external_id: str = ""
    metadata: dict = field(default_factory=dict)
    locator: str = ""
    origin_filename: str = ""
    origin_size: int | None = None
    origin_sha256: str = ""


def _extension(name: str) -> str:
    base = posixpath.basename(name.replace("\\", "/")).lower()
    return "." + base.rsplit(".", 1)[1] if "." in base else ""


def parse_file(name: str, raw: bytes, *, fields: FieldMap = FieldMap(), limits: Limits | None = None,
               in_archive: bool = False) -> list[ParsedDocument]:
    limits = limits or Limits()
    ext = _extension(name)
    if ext not in SUPPORTED:
        raise ImportProblem(f"unsupported file type {ext or '(no extension)'!r}; supported: {', '.join(SUPPORTED)}")
    if len(raw) > limits.max_file_bytes:
        raise ImportProblem(f"the file is {len(raw):,} bytes, over the limit of {limits.max_file_bytes:,} bytes")
    if not raw.strip():
        raise ImportProblem("the file is empty")
    if ext in ARCHIVE_FORMATS:
        if in_archive:
            raise ImportProblem("archives inside archives are not imported; unpack the inner archive first")
        return _parse_zip(raw, fields=fields, limits=limits)
    if ext in TEXT_FORMATS | RECORD_FORMATS and looks_binary(raw):
        raise ImportProblem(f"the file is binary, not {ext} text")
    digest = hashlib.sha256(raw).hexdigest()
    if ext in TEXT_FORMATS:
        docs = [_text_document(_decode(raw), default_title=posixpath.basename(name).rsplit(".", 1)[0])]
    elif ext in {".jsonl", ".ndjson"}:
        docs = list(_parse_jsonl(_decode(raw), fields))
    elif ext == ".json":
        docs = list(_parse_json(_decode(raw), fields))
    elif ext == ".csv":
        docs = list(_parse_csv(_decode(raw), fields))
    elif ext == ".pdf":
        docs = [_text_document(_pdf_text(raw), default_title=posixpath.basename(name).rsplit(".", 1)[0])]
    else:
        docs = [_text_document(_docx_text(raw), default_title=posixpath.basename(name).rsplit(".", 1)[0])]
    if len(docs) > limits.max_documents:
        raise ImportProblem(f"the file holds {len(docs):,} documents, over the limit of {limits.max_documents:,}")
    for doc in docs:
        doc.origin_filename, doc.origin_size, doc.origin_sha256 = name, len(raw), digest
    return docs


def _decode(raw: bytes) -> str:
    try:
        return decode_bytes(raw)
    except (DecodeError, UnicodeDecodeError) as exc:
        raise ImportProblem(str(exc)) from None


def _text_document(text: str, *, default_title: str) -> ParsedDocument:
    text = normalize_text(text)
    if not text:
        raise ImportProblem("the file has no text")
    first = text.split("\n", 1)[0].strip()
    title = first.lstrip("#").strip() if first.startswith("#") else default_title
    return ParsedDocument(text=text, title=normalize_text(title, repair_wraps=False)[:500])


def _record(obj, fields: FieldMap, locator: str) -> ParsedDocument:
    if not isinstance(obj, dict):
        raise ImportProblem(f"expected a JSON object, got {type(obj).__name__}", locator=locator)
    if fields.text not in obj:
        raise ImportProblem(f"no {fields.text!r} field (fields: {', '.join(map(str, obj)) or 'none'})", locator=locator)
    text = obj[fields.text]
    if not isinstance(text, str):
        raise ImportProblem(f"the {fields.text!r} field must be a string, got {type(text).__name__}", locator=locator)
    text = normalize_text(text)
    if not text:
        raise ImportProblem(f"the {fields.text!r} field is empty", locator=locator)
    title = obj.get(fields.title) or ""
    external_id = obj.get(fields.id)
    metadata = {k: v for k, v in obj.items() if k not in {fields.text, fields.title, fields.id}}
    return ParsedDocument(
        text=text,
        title=normalize_text(str(title), repair_wraps=False)[:500],
        external_id="" if external_id is None else str(external_id)[:300],
        metadata=metadata,
        locator=locator,
    )


def _parse_jsonl(text: str, fields: FieldMap) -> Iterator[ParsedDocument]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportProblem(f"invalid JSON ({exc.msg} at column {exc.colno})", locator=f"line {number}") from None
        yield _record(obj, fields, f"line {number}")


def _parse_json(text: str, fields: FieldMap) -> Iterator[ParsedDocument]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportProblem(f"invalid JSON ({exc.msg})", locator=f"line {exc.lineno}") from None
    if isinstance(data, dict) and fields.text not in data:
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise ImportProblem(f"expected a list of records, or an object with one list of records or a {fields.text!r} field")
        data = lists[0]
    records = data if isinstance(data, list) else [data]
    for index, obj in enumerate(records):
        yield _record(obj, fields, f"record {index}")


def _parse_csv(text: str, fields: FieldMap) -> Iterator[ParsedDocument]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    if fields.text not in columns:
        raise ImportProblem(f"no {fields.text!r} column (columns: {', '.join(columns) or 'none'})", locator="row 1")
    for number, row in enumerate(reader, start=2):
        if None in row:
            raise ImportProblem("more cells than header columns", locator=f"row {number}")
        yield _record(row, fields, f"row {number}")


def _pdf_text(raw: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise ImportProblem("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ImportProblem:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ImportProblem(f"the PDF could not be read ({exc})") from None
    text = "\n\n".join(pages)
    if not text.strip():
        raise ImportProblem("the PDF has no text layer (a scan?); run OCR first")
    return text


def _docx_text(raw: bytes) -> str:
    import docx

    try:
        document = docx.Document(io.BytesIO(raw))
    except Exception as exc:  # python-docx raises several types for files that are not Word documents
        raise ImportProblem(f"the DOCX could not be read ({type(exc).__name__})") from None
    blocks = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            blocks.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n\n".join(b for b in blocks if b.strip())


def _parse_zip(raw: bytes, *, fields: FieldMap, limits: Limits) -> list[ParsedDocument]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise ImportProblem("the archive is not a valid ZIP file") from None
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > limits.max_archive_members:
        raise ImportProblem(f"the archive has {len(members):,} files, over the limit of {limits.max_archive_members:,}")
    docs: list[ParsedDocument] = []
    total = 0
    for info in members:
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in name.split("/"):
            raise ImportProblem("absolute or '..' paths are not allowed in archives", locator=info.filename)
        base = posixpath.basename(name)
        if name.startswith("__MACOSX/") or base.startswith("."):
            continue  # macOS resource forks and hidden files
        data = _read_member(archive, info, limit=limits.max_archive_bytes - total)
        total += len(data)
        try:
            parsed = parse_file(name, data, fields=fields, limits=limits, in_archive=True)
        except ImportProblem as exc:
            raise ImportProblem(exc.reason, locator=" ".join(filter(None, [name, exc.locator]))) from None
        docs.extend(parsed)
        if len(docs) > limits.max_documents:
            raise ImportProblem(f"the archive holds more than {limits.max_documents:,} documents")
    if not docs:
        raise ImportProblem("the archive holds no importable files")
    return docs


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int) -> bytes:
    """Read while counting: the sizes in a ZIP's headers can lie (zip bombs)."""
    out = bytearray()
    with archive.open(info) as stream:
        while chunk := stream.read(1 << 20):
            out += chunk
            if len(out) > limit:
                raise ImportProblem("the archive expands beyond the size limit (a zip bomb?)", locator=info.filename)
    return bytes(out)
