"""Parsers from uploaded files to documents: text, Markdown, JSON Lines, JSON, CSV, PDF, DOCX, HWP, HWPX and ZIP archives.

A parser reads a whole file before anything is written, and raises `ImportProblem` naming the file, the line, row or
record, and why; the import service then writes nothing for that file. Files are untrusted: archives are read while
counting the bytes they expand to, DOCX and HWPX packages and HWP body streams are checked before their readers parse
them, and values PostgreSQL
cannot store (NUL characters, NaN, lone surrogates) are cleaned or refused here rather than failing the write.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import lzma
import math
import posixpath
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings

from workbench.documents.text import DecodeError, decode_text, looks_binary, normalize_text, reading_text

TEXT_FORMATS = {".txt", ".md", ".markdown"}
RECORD_FORMATS = {".jsonl", ".ndjson", ".json", ".csv"}
HWP_FORMATS = {".hwp", ".hwpx"}
BINARY_FORMATS = {".pdf", ".docx"} | HWP_FORMATS
ARCHIVE_FORMATS = {".zip"}
SUPPORTED = sorted(TEXT_FORMATS | RECORD_FORMATS | BINARY_FORMATS | ARCHIVE_FORMATS)

MAX_NAME_CHARS = 500  # SourceDocument.origin_filename
MAX_NESTING = 64  # levels of nested objects and lists kept as a record's metadata
MAX_EXTERNAL_ID = 300  # characters of a record's id (SourceDocument.external_id)
MAX_TITLE = 500  # characters of a title (SourceDocument.title); a longer one is shown cut, and kept whole in metadata
# A DOCX or HWPX member (or an HWP body stream) that expands more than this many times, to more than this many bytes,
# is a zip bomb: XML and HWP records parse into several times their size, so it is refused before the reader sees it
# (ordinary Word XML, OWPML and HWP records expand 5-20 times).
DOCX_BOMB_RATIO = 100
DOCX_BOMB_MIN_BYTES = 10 * 1024 * 1024
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
_HWP_SIGNATURE = b"HWP Document File"
_HWP_COMPRESSED, _HWP_PASSWORD, _HWP_DISTRIBUTION = 0x1, 0x2, 0x4  # FileHeader property bits (HWP 5.0 spec)
_HWPX_SECTION = re.compile(r"^Contents/section(\d+)\.xml$", re.IGNORECASE)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)


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
    encoding: str = ""  # the text encoding the file was read in (text, JSON, CSV)


def _extension(name: str) -> str:
    base = posixpath.basename(name.replace("\\", "/")).lower()
    return "." + base.rsplit(".", 1)[1] if "." in base else ""


def parse_file(
    name: str, raw: bytes, *, fields: FieldMap = FieldMap(), limits: Limits | None = None, in_archive: bool = False
) -> list[ParsedDocument]:
    limits = limits or Limits()
    if len(name) > MAX_NAME_CHARS:
        raise ImportProblem(f"the file's name is {len(name):,} characters long, over the limit of {MAX_NAME_CHARS}")
    if "\x00" in name or _SURROGATE.search(name):
        raise ImportProblem("the file's name holds a NUL character or a lone surrogate")
    ext = _extension(name)
    if ext not in SUPPORTED:
        raise ImportProblem(f"unsupported file type {ext or '(no extension)'!r}; supported: {', '.join(SUPPORTED)}")
    if len(raw) > limits.max_file_bytes:
        raise ImportProblem(f"the file is {len(raw):,} bytes, over the limit of {limits.max_file_bytes:,} bytes")
    if not raw or raw.isspace():
        raise ImportProblem("the file is empty")
    if ext in ARCHIVE_FORMATS:
        if in_archive:
            raise ImportProblem("archives inside archives are not imported; unpack the inner archive first")
        return _parse_zip(raw, fields=fields, limits=limits)
    if ext in TEXT_FORMATS | RECORD_FORMATS and looks_binary(raw):
        raise ImportProblem(f"the file is binary, not {ext} text")
    digest = hashlib.sha256(raw).hexdigest()
    encoding = ""
    if ext in TEXT_FORMATS | RECORD_FORMATS:
        text, encoding = _decode(raw)
    if ext in TEXT_FORMATS:
        docs = [_text_document(text, default_title=posixpath.basename(name).rsplit(".", 1)[0])]
    elif ext in {".jsonl", ".ndjson"}:
        docs = list(_parse_jsonl(text, fields))
    elif ext == ".json":
        docs = list(_parse_json(text, fields))
    elif ext == ".csv":
        docs = list(_parse_csv(text, fields))
    elif ext == ".pdf":
        docs = [_text_document(_pdf_text(raw), default_title=posixpath.basename(name).rsplit(".", 1)[0])]
    elif ext in HWP_FORMATS:
        # HWP paragraphs and table rows are whole: there are no hard wraps to repair.
        docs = [
            _text_document(_hwp_text(raw, limits), default_title=posixpath.basename(name).rsplit(".", 1)[0], repair_wraps=False)
        ]
    else:
        docs = [_text_document(_docx_text(raw, limits), default_title=posixpath.basename(name).rsplit(".", 1)[0])]
    if len(docs) > limits.max_documents:
        raise ImportProblem(f"the file holds {len(docs):,} documents, over the limit of {limits.max_documents:,}")
    for doc in docs:
        doc.origin_filename, doc.origin_size, doc.origin_sha256 = name, len(raw), digest
        doc.encoding = encoding
    return docs


def _decode(raw: bytes) -> tuple[str, str]:
    try:
        return decode_text(raw)
    except (DecodeError, UnicodeDecodeError) as exc:
        raise ImportProblem(str(exc)) from None


def _unicode_text(value: str, what: str, locator: str = "") -> str:
    """Text PostgreSQL can store: NUL characters dropped, lone surrogates (which no UTF-8 can encode) refused."""
    match = _SURROGATE.search(value)
    if match:
        raise ImportProblem(
            f"{what} holds a lone surrogate (\\u{ord(match.group()):04x}), which is not Unicode text", locator=locator
        )
    return value.replace("\x00", "")


def _metadata(value, locator: str, depth: int = 0):
    if depth > MAX_NESTING:
        raise ImportProblem(f"the record is nested more than {MAX_NESTING} levels deep", locator=locator)
    if isinstance(value, str):
        return _unicode_text(value, "a field", locator)
    if isinstance(value, dict):
        return {_unicode_text(str(k), "a field name", locator): _metadata(v, locator, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_metadata(v, locator, depth + 1) for v in value]
    return value


def _shown_title(title: str) -> str:
    """What the title column holds: a title longer than it ends in an ellipsis, so the cut shows."""
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


def _text_document(text: str, *, default_title: str, repair_wraps: bool = True) -> ParsedDocument:
    text = normalize_text(_unicode_text(text, "the text"), repair_wraps=repair_wraps)
    if not text:
        raise ImportProblem("the file has no text")
    first = text.split("\n", 1)[0].strip()
    title = first.lstrip("#").strip() if first.startswith("#") else default_title
    return ParsedDocument(text=text, title=_shown_title(normalize_text(title, repair_wraps=False)))


def _record(obj, fields: FieldMap, locator: str) -> ParsedDocument:
    if not isinstance(obj, dict):
        raise ImportProblem(f"expected a JSON object, got {type(obj).__name__}", locator=locator)
    if fields.text not in obj:
        raise ImportProblem(f"no {fields.text!r} field (fields: {', '.join(map(str, obj)) or 'none'})", locator=locator)
    text = obj[fields.text]
    if not isinstance(text, str):
        raise ImportProblem(f"the {fields.text!r} field must be a string, got {type(text).__name__}", locator=locator)
    text = normalize_text(_unicode_text(text, f"the {fields.text!r} field", locator))
    if not text:
        raise ImportProblem(f"the {fields.text!r} field is empty", locator=locator)
    title = _unicode_text(str(obj.get(fields.title) or ""), f"the {fields.title!r} field", locator)
    external_id = obj.get(fields.id)
    if external_id is not None:
        # The id names the document (replacing it on a later import, finding it in exports): never Python's text of
        # an object, never silently cut to what the column holds, where two long ids would become one.
        if isinstance(external_id, bool) or not isinstance(external_id, str | int):
            raise ImportProblem(
                f"the {fields.id!r} field must be a string or an integer, got {type(external_id).__name__}", locator=locator
            )
        external_id = normalize_text(_unicode_text(str(external_id), f"the {fields.id!r} field", locator), repair_wraps=False)
        if len(external_id) > MAX_EXTERNAL_ID:
            raise ImportProblem(
                f"the {fields.id!r} field is {len(external_id):,} characters long, over the limit of {MAX_EXTERNAL_ID}",
                locator=locator,
            )
    metadata = _metadata({k: v for k, v in obj.items() if k not in {fields.text, fields.title, fields.id}}, locator)
    title = normalize_text(title, repair_wraps=False)
    if len(title) > MAX_TITLE:
        metadata[fields.title] = title  # the title column shows the start; the whole title is kept with the record
    return ParsedDocument(
        text=text,
        title=_shown_title(title),
        external_id="" if external_id is None else external_id,
        metadata=metadata,
        locator=locator,
    )


def _refuse_constant(name: str):
    raise ImportProblem(f"invalid JSON ({name} is not a JSON number)")


def _finite_float(text: str) -> float:
    """A JSON number as a float, refused when it overflows to infinity (1e999): the database stores no infinity."""
    value = float(text)
    if math.isinf(value):
        raise ImportProblem(f"invalid JSON (the number {text[:40]} is too large)")
    return value


def _json_loads(text: str, *, locator: str = "", column: bool = False):
    """json.loads with every way it fails on hostile input turned into a message."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        where = f" at column {exc.colno}" if column else ""
        raise ImportProblem(f"invalid JSON ({exc.msg}{where})", locator=locator or f"line {exc.lineno}") from None
    except ImportProblem as exc:
        raise ImportProblem(exc.reason, locator=locator) from None
    except RecursionError:
        raise ImportProblem("invalid JSON (nested too deeply)", locator=locator) from None
    except ValueError as exc:  # integers longer than sys.get_int_max_str_digits()
        reason = "a number has too many digits" if "digits" in str(exc) else str(exc)
        raise ImportProblem(f"invalid JSON ({reason})", locator=locator) from None


def _parse_jsonl(text: str, fields: FieldMap) -> Iterator[ParsedDocument]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        obj = _json_loads(line, locator=f"line {number}", column=True)
        yield _record(obj, fields, f"line {number}")


def _parse_json(text: str, fields: FieldMap) -> Iterator[ParsedDocument]:
    data = _json_loads(text)
    if isinstance(data, dict) and fields.text not in data:
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise ImportProblem(f"expected a list of records, or an object with one list of records or a {fields.text!r} field")
        data = lists[0]
    records = data if isinstance(data, list) else [data]
    for number, obj in enumerate(records, start=1):  # counted from 1, as JSONL lines and CSV rows are
        yield _record(obj, fields, f"record {number}")


def _parse_csv(text: str, fields: FieldMap) -> Iterator[ParsedDocument]:
    # A document's text may fill a cell far past the csv module's default field limit (131,072 characters); the file
    # size limit bounds it instead. The limit is process-wide, and only ever raised.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    number = 1
    try:
        columns = reader.fieldnames or []
        if fields.text not in columns:
            raise ImportProblem(f"no {fields.text!r} column (columns: {', '.join(columns) or 'none'})", locator="row 1")
        for number, row in enumerate(reader, start=2):
            if None in row:
                raise ImportProblem("more cells than header columns", locator=f"row {number}")
            yield _record(row, fields, f"row {number}")
    except csv.Error as exc:
        raise ImportProblem(f"invalid CSV ({exc})", locator=f"row {number + 1}") from None


def _pdf_text(raw: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise ImportProblem("the PDF is encrypted")
        pages = [_page_lines(page) for page in reader.pages]
    except ImportProblem:
        raise
    except PdfReadError as exc:
        raise ImportProblem(f"the PDF could not be read ({_short(exc)})") from None
    except Exception as exc:  # pypdf raises many types on malformed files (LimitReachedError, RecursionError, ...)
        raise ImportProblem(f"the PDF could not be read ({type(exc).__name__}: {_short(exc)})") from None
    if not any(line.strip() for page in pages for _, line in page):
        raise ImportProblem("the PDF has no text layer (a scan?); run OCR first")
    return reading_text(pages)


def _page_lines(page) -> list[tuple[float, str]]:
    """A page's lines as a reader sees them. pypdf gives the text in the order the page draws it, which for a table is
    often a cell at a time, down one column and then the next; the lines are kept in that order, except that lines at
    the same height (the cells of one table row) are put on one line, left to right, joined by " | ". Each line comes
    with its height on the page, which tells headers and footers."""
    lines: list[list] = []  # [y, x, tolerance, text]
    open_line: list | None = None

    def visit(text, cm, tm, font, size):
        nonlocal open_line
        for i, piece in enumerate(text.split("\n")):
            if i:
                open_line = None
            if not piece:
                continue
            if open_line is None:
                x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                scale = abs(tm[3] * cm[3]) or abs(tm[2] * cm[1]) or 1.0
                open_line = [y, x, max(1.0, 0.3 * abs(size or 0) * scale), ""]
                lines.append(open_line)
            open_line[3] += piece

    page.extract_text(visitor_text=visit)
    rows: dict[int, list[list]] = {}  # lines by height, in the order the page first reaches each height
    for line in lines:
        if not line[3].strip():
            continue
        key = round(line[0] / line[2])
        row = rows.get(key) or rows.get(key - 1) or rows.get(key + 1)
        if row is None:
            rows[key] = row = []
        row.append(line)
    out = []
    for row in rows.values():
        if len(row) == 1:
            out.append((row[0][0], row[0][3]))
        else:
            out.append((row[0][0], " | ".join(" ".join(cell[3].split()) for cell in sorted(row, key=lambda cell: cell[1]))))
    return out


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "…"


def _check_docx_package(raw: bytes, limits: Limits, kind: str = "DOCX") -> list[zipfile.ZipInfo]:
    """A DOCX or HWPX is a ZIP of XML parts: check what they expand to before the reader reads them whole."""
    try:
        members = zipfile.ZipFile(io.BytesIO(raw)).infolist()
    except _ZIP_ERRORS:
        raise ImportProblem(f"the {kind} could not be read (not a ZIP package)") from None
    total = 0
    for info in members:
        total += info.file_size
        if total > limits.max_file_bytes:
            raise ImportProblem(
                f"the {kind} expands beyond the limit of {limits.max_file_bytes:,} bytes (a zip bomb?)",
                locator=_shorten(info.filename),
            )
        if info.file_size > DOCX_BOMB_MIN_BYTES and info.file_size > DOCX_BOMB_RATIO * max(info.compress_size, 1):
            raise ImportProblem(
                f"the {kind} expands {info.file_size // max(info.compress_size, 1):,} times, to "
                f"{info.file_size:,} bytes (a zip bomb?)",
                locator=_shorten(info.filename),
            )
    return members


def _docx_text(raw: bytes, limits: Limits) -> str:
    import docx

    _check_docx_package(raw, limits)
    try:
        document = docx.Document(io.BytesIO(raw))
        blocks = [p.text for p in document.paragraphs]
        for table in document.tables:
            for row in table.rows:
                blocks.append(" | ".join(cell.text.strip() for cell in row.cells))
    except Exception as exc:  # python-docx and lxml raise many types for files that are not Word documents
        raise ImportProblem(f"the DOCX could not be read ({type(exc).__name__})") from None
    return "\n\n".join(b for b in blocks if b.strip())


_HWP_LOCKED = "the {kind} is {what}; open it in Hangul and save it {how} first"


def _hwp_text(raw: bytes, limits: Limits) -> str:
    """Paragraphs and tables of an HWP 5.0 or HWPX document in reading order, read by syhwp (told apart by content,
    not by the file's extension); a table becomes one line per row, its cells joined by " | ", as for DOCX."""
    if raw.startswith(_OLE_MAGIC):
        kind = "HWP"
        _check_hwp5(raw, limits)
    elif raw.startswith(_ZIP_MAGIC):
        kind = "HWPX"
        raw = _check_hwpx(raw, limits)
    elif raw.startswith(_HWP_SIGNATURE):
        raise ImportProblem(
            "the file is an HWP 3.0 (or older) document, which is not read; save it as HWP or HWPX in a current Hangul first"
        )
    else:
        raise ImportProblem("the file is not an HWP 5.0 or HWPX document")
    import syhwp

    # syhwp reads from a path (it tells the formats apart by the file's first bytes).
    with tempfile.NamedTemporaryFile(suffix=".hwpx" if kind == "HWPX" else ".hwp") as copy:
        copy.write(raw)
        copy.flush()
        try:
            document = syhwp.open(copy.name)
        except syhwp.EncryptedDocumentError:
            raise ImportProblem(_HWP_LOCKED.format(kind=kind, what="password-protected", how="without a password")) from None
        except Exception as exc:  # syhwp, olefile and ElementTree raise many types on malformed files
            raise ImportProblem(f"the {kind} could not be read ({type(exc).__name__}: {_short(exc)})") from None
    blocks = []
    for block in document.blocks:
        if isinstance(block, syhwp.Table):
            rows = [" | ".join(" ".join(cell.split()) for cell in row) for row in block.grid()]
            blocks.append("\n".join(row for row in rows if row.replace("|", "").strip()))
        elif not isinstance(block, syhwp.Image):  # a picture has no text, only syhwp's "[그림]" placeholder
            blocks.append(block.text)
    return "\n\n".join(b for b in blocks if b.strip())


def _check_hwp5(raw: bytes, limits: Limits) -> None:
    """An HWP 5.0 file is an OLE container whose body streams are deflated: read its FileHeader for a password or a
    distribution lock, and inflate the body in bounded steps, counting, before syhwp inflates it whole."""
    import olefile

    try:
        ole = olefile.OleFileIO(raw)
    except Exception as exc:  # olefile raises many types on damaged containers
        raise ImportProblem(f"the HWP could not be read (damaged OLE container: {_short(exc)})") from None
    try:
        if not ole.exists("FileHeader"):
            raise ImportProblem("the HWP could not be read (no FileHeader stream)")
        header = ole.openstream("FileHeader").read()
        if not header.startswith(_HWP_SIGNATURE) or len(header) < 40:
            raise ImportProblem("the file is not an HWP document (no HWP signature in its FileHeader)")
        flags = int.from_bytes(header[36:40], "little")
        if flags & _HWP_PASSWORD:
            raise ImportProblem(_HWP_LOCKED.format(kind="HWP", what="password-protected", how="without a password"))
        if flags & _HWP_DISTRIBUTION:
            raise ImportProblem(
                _HWP_LOCKED.format(
                    kind="HWP",
                    what="a distribution document (배포용), locked by its author against copying",
                    how="as an ordinary document",
                )
            )
        sections = [entry for entry in ole.listdir() if len(entry) == 2 and entry[0] == "BodyText"]
        if not sections:
            raise ImportProblem("the HWP could not be read (no BodyText sections)")
        total = 0
        for entry in sections:
            data = ole.openstream(entry).read()
            if flags & _HWP_COMPRESSED:
                size = _inflated_size(data, limit=limits.max_file_bytes - total, locator="/".join(entry))
                if size > DOCX_BOMB_MIN_BYTES and size > DOCX_BOMB_RATIO * max(len(data), 1):
                    raise ImportProblem(
                        f"the HWP expands {size // max(len(data), 1):,} times, to {size:,} bytes (a zip bomb?)",
                        locator="/".join(entry),
                    )
                total += size
    except ImportProblem:
        raise
    except Exception as exc:
        raise ImportProblem(f"the HWP could not be read ({type(exc).__name__}: {_short(exc)})") from None
    finally:
        ole.close()


def _inflated_size(data: bytes, *, limit: int, locator: str) -> int:
    """What raw deflate data expands to, counted 1 MiB at a time and given up past the limit."""
    inflater = zlib.decompressobj(-15)
    size = 0
    try:
        while data:
            size += len(inflater.decompress(data, 1 << 20))
            if size > limit:
                raise ImportProblem("the HWP expands beyond the size limit (a zip bomb?)", locator=locator)
            data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise ImportProblem(f"the HWP is damaged ({_short(exc)})", locator=locator) from None
    return size


def _check_hwpx(raw: bytes, limits: Limits) -> bytes:
    """An HWPX is a ZIP of OWPML parts: sizes checked as for DOCX, then encryption, then each body section parsed, so
    that a section the reader would skip is reported instead of silently left out. Returns the package to read: syhwp
    reads sections in the order of their names, so section10.xml would come before section2.xml; a package of ten or
    more sections is handed over with the numbers zero-padded."""
    import xml.etree.ElementTree as ET

    members = _check_docx_package(raw, limits, "HWPX")
    archive = zipfile.ZipFile(io.BytesIO(raw))
    try:
        manifest = archive.read("META-INF/manifest.xml") if "META-INF/manifest.xml" in archive.namelist() else b""
    except _ZIP_ERRORS as exc:
        raise ImportProblem(f"the HWPX is damaged ({type(exc).__name__}: {_short(exc)})") from None
    if any(info.flag_bits & 0x1 for info in members) or b"encryption-data" in manifest:
        raise ImportProblem(
            _HWP_LOCKED.format(
                kind="HWPX",
                what="password-protected or a distribution document (배포용)",
                how="as an ordinary document without a password",
            )
        )
    sections = [info for info in members if _HWPX_SECTION.match(info.filename)]
    if not sections:
        raise ImportProblem("the HWPX could not be read (no Contents/section*.xml)")
    for info in sections:
        try:
            ET.fromstring(archive.read(info))
        except ET.ParseError as exc:
            raise ImportProblem(
                f"the HWPX could not be read (the section is not well-formed XML: {exc})", locator=info.filename
            ) from None
        except _ZIP_ERRORS as exc:
            raise ImportProblem(f"the HWPX is damaged ({type(exc).__name__}: {_short(exc)})", locator=info.filename) from None
    if len(sections) < 10:
        return raw
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as ordered:
        for info in members:
            match = _HWPX_SECTION.match(info.filename)
            name = f"Contents/section{int(match.group(1)):06d}.xml" if match else info.filename
            ordered.writestr(name, archive.read(info))
    return buf.getvalue()


def _parse_zip(raw: bytes, *, fields: FieldMap, limits: Limits) -> list[ParsedDocument]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        members = [info for info in archive.infolist() if not info.is_dir()]
    except _ZIP_ERRORS:
        raise ImportProblem("the archive is not a valid ZIP file") from None
    if len(members) > limits.max_archive_members:
        raise ImportProblem(f"the archive has {len(members):,} files, over the limit of {limits.max_archive_members:,}")
    docs: list[ParsedDocument] = []
    total = 0
    for info in members:
        name = member_name(info).replace("\\", "/")
        if len(name) > MAX_NAME_CHARS:
            raise ImportProblem(
                f"a path in the archive is {len(name):,} characters long, over the limit of {MAX_NAME_CHARS}",
                locator=_shorten(name),
            )
        if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in name.split("/"):
            raise ImportProblem("absolute or '..' paths are not allowed in archives", locator=info.filename)
        base = posixpath.basename(name)
        if name.startswith("__MACOSX/") or base.startswith("."):
            continue  # macOS resource forks and hidden files
        data = _read_member(archive, info, limit=limits.max_archive_bytes - total, file_limit=limits.max_file_bytes)
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


def member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as its maker wrote it. With the UTF-8 flag zipfile already decoded it; without it, zipfile
    read the bytes as CP437, which is what Linux `zip` (UTF-8 bytes, no flag) and Korean Windows (CP949 bytes) do
    not write: the bytes are taken back and decoded strictly as UTF-8, then as CP949, else left as CP437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for encoding in ("utf-8", "cp949"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def _shorten(name: str, limit: int = 120) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int, file_limit: int) -> bytes:
    """Read while counting: the sizes in a ZIP's headers can lie (zip bombs), so the declared size is checked before
    reading and the bytes actually produced are counted while reading; a member never exceeds a file's size limit."""
    locator = _shorten(info.filename)
    if info.flag_bits & 0x1:
        raise ImportProblem("the file is encrypted (password-protected archives are not imported)", locator=locator)
    if info.file_size > file_limit:
        raise ImportProblem(
            f"the file expands to {info.file_size:,} bytes, over the limit of {file_limit:,} bytes", locator=locator
        )
    if info.file_size > limit:
        raise ImportProblem("the archive expands beyond the size limit (a zip bomb?)", locator=locator)
    parts: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise ImportProblem("the archive expands beyond the size limit (a zip bomb?)", locator=locator)
                if size > file_limit:
                    raise ImportProblem(f"the file expands beyond the limit of {file_limit:,} bytes", locator=locator)
                parts.append(chunk)
    except NotImplementedError:
        raise ImportProblem(
            f"the file is compressed with an unsupported method ({info.compress_type})", locator=locator
        ) from None
    except RuntimeError as exc:  # zipfile: "File ... is encrypted, password required for extraction"
        raise ImportProblem(f"the file could not be extracted ({_short(exc)})", locator=locator) from None
    except _ZIP_ERRORS as exc:
        raise ImportProblem(
            f"the file is damaged in the archive ({type(exc).__name__}: {_short(exc)})", locator=locator
        ) from None
    return b"".join(parts)
