"""Files the document tests generate: every format and encoding the import accepts, and bad ones."""

from __future__ import annotations

import io
import json
import unicodedata
import zipfile
import zlib

KO = "대한민국은 민주공화국이다. 대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다."
KO2 = "국가는 개인이 가지는 불가침의 기본적 인권을 확인하고 이를 보장할 의무를 진다."


def pdf(*lines: str) -> bytes:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HYSMyeongJo-Medium"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.setFont("HYSMyeongJo-Medium", 11)
    for i, line in enumerate(lines):
        c.drawString(60, 780 - 16 * i, line)
    c.showPage()
    c.save()
    return buf.getvalue()


def pdf_without_text() -> bytes:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.rect(50, 50, 100, 100)
    c.showPage()
    c.save()
    return buf.getvalue()


def docx(*paragraphs: str) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    for p in paragraphs:
        document.add_paragraph(p)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def jsonl(*records) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records).encode()


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# --- Hostile files: what a careless or malicious upload can hold. ---------------------------------------------------


def _patch_zip(raw: bytes, *, flags: int | None = None, method: int | None = None) -> bytes:
    """Rewrite the flag bits or compression method of every entry, in the local headers and the central directory."""
    import struct

    out = bytearray(raw)
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = out.find(signature)
        while at != -1:
            if flags is not None:
                struct.pack_into("<H", out, at + flag_at, struct.unpack_from("<H", out, at + flag_at)[0] | flags)
            if method is not None:
                struct.pack_into("<H", out, at + method_at, method)
            at = out.find(signature, at + 4)
    return bytes(out)


def zip_encrypted() -> bytes:
    return _patch_zip(zip_of({"a.txt": KO.encode()}), flags=0x1)


def zip_unknown_method() -> bytes:
    return _patch_zip(zip_of({"a.txt": KO.encode()}), method=99)


def zip_bad_crc() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a.txt", KO.encode())
    raw = bytearray(buf.getvalue())
    at = raw.find(KO.encode())
    raw[at] ^= 0xFF  # the stored bytes no longer match the CRC-32 in the headers
    return bytes(raw)


def zip_corrupt_deflate() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", (KO * 50).encode())
    raw = bytearray(buf.getvalue())
    start = 30 + len("a.txt")  # the first local header, then the compressed data
    raw[start : start + 40] = b"\xff" * 40
    return bytes(raw)


def zip_bomb(size: int = 1024**3, name: str = "bomb.txt") -> bytes:
    """A ZIP whose one member expands to `size` bytes (streamed in, so building it takes little memory)."""
    buf = io.BytesIO()
    block = b"\x20" * (1 << 20)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            for _ in range(size // len(block)):
                member.write(block)
    return buf.getvalue()


def docx_bomb(size: int = 400 * 1024**2) -> bytes:
    """A valid DOCX whose word/document.xml expands to `size` bytes of XML (one huge paragraph)."""
    source = zipfile.ZipFile(io.BytesIO(docx(KO)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info in source.infolist():
            if info.filename != "word/document.xml":
                archive.writestr(info.filename, source.read(info))
                continue
            head, tail = source.read(info).split(b"</w:t>", 1)
            bomb = zipfile.ZipInfo(info.filename)
            bomb.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(bomb, "w", force_zip64=True) as member:
                member.write(head)
                block = b"a" * (1 << 20)
                for _ in range(size // len(block)):
                    member.write(block)
                member.write(b"</w:t>" + tail)
    return buf.getvalue()


def docx_without_document() -> bytes:
    source = zipfile.ZipFile(io.BytesIO(docx(KO)))
    return zip_of({i.filename: source.read(i) for i in source.infolist() if i.filename != "word/document.xml"})


def docx_broken_xml() -> bytes:
    source = zipfile.ZipFile(io.BytesIO(docx(KO)))
    members = {i.filename: source.read(i) for i in source.infolist()}
    members["word/document.xml"] = members["word/document.xml"][:200]  # cut mid-element
    return zip_of(members)


def pdf_raw(content: bytes, *, flate: bool = False) -> bytes:
    """A one-page PDF around a given content stream, with a correct cross-reference table."""
    import zlib

    data = zlib.compress(content, 9) if flate else content
    filters = b" /Filter /FlateDecode" if flate else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d%s >>\nstream\n" % (len(data), filters) + data + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def pdf_deflate_bomb() -> bytes:
    """Text drawn after a content stream that inflates past pypdf's output limit (LimitReachedError)."""
    return pdf_raw(b"BT /F1 12 Tf 72 720 Td (bomb) Tj ET\n" + b" " * 80_000_000, flate=True)


def pdf_pages_cycle() -> bytes:
    """A page tree whose /Kids holds the tree itself."""
    return pdf_raw(b"BT /F1 12 Tf 72 720 Td (x) Tj ET").replace(b"/Kids [3 0 R] /Count 1", b"/Kids [2 0 R] /Count 1")


# --- HWP and HWPX -----------------------------------------------------------------------------------------------------

HWP_SOURCE = "source.hwp"  # Hangul's own HWP 5.0: two paragraphs and a one-row table (tests/fixtures/README.md)
HWP_DISTRIBUTION = "distribution.hwp"  # a distribution document (배포용) saved by Hangul


def hwp_fixture(name: str) -> bytes:
    from tests.conftest import FIXTURES

    return (FIXTURES / "hwp" / name).read_bytes()


def hwp_with_password() -> bytes:
    """The HWP fixture with the FileHeader's password bit set (bit 1 of the properties at byte 36, HWP 5.0 spec)."""
    raw = bytearray(hwp_fixture(HWP_SOURCE))
    at = raw.find(b"HWP Document File")
    raw[at + 36] |= 0x02
    return bytes(raw)


_HWPX_NS = 'xmlns:hs="http://www.hancom.co.kr/hwpml/2011/section" xmlns:hp="http://www.hancom.co.kr/hwpml/2011/paragraph"'


def _owpml_paragraph(inner: str) -> str:
    return f'<hp:p id="0" paraPrIDRef="0" styleIDRef="0"><hp:run charPrIDRef="0">{inner}</hp:run></hp:p>'


def _owpml_text(text: str) -> str:
    from xml.sax.saxutils import escape

    return _owpml_paragraph(f"<hp:t>{escape(text)}</hp:t>")


def _owpml_table(rows: list[list[str]]) -> str:
    trs = []
    for r, row in enumerate(rows):
        tcs = "".join(
            f'<hp:tc><hp:subList>{_owpml_text(cell)}</hp:subList><hp:cellAddr colAddr="{c}" rowAddr="{r}"/>'
            f'<hp:cellSpan colSpan="1" rowSpan="1"/></hp:tc>'
            for c, cell in enumerate(row)
        )
        trs.append(f"<hp:tr>{tcs}</hp:tr>")
    return _owpml_paragraph(f'<hp:tbl rowCnt="{len(rows)}" colCnt="{len(rows[0])}">{"".join(trs)}</hp:tbl>')


def hwpx(*blocks, sections: int = 1, encrypted: bool = False, section_xml: bytes | None = None) -> bytes:
    """An HWPX package as Hangul writes it (OWPML: mimetype first and stored, version, manifest, content.hpf, body
    sections). A block is a paragraph's text or a table as a list of rows; blocks are dealt out over `sections`."""
    size = -(-len(blocks) // sections)
    per_section = [blocks[i * size : (i + 1) * size] for i in range(sections)]
    items = "".join(
        f'<opf:item id="section{i}" href="Contents/section{i}.xml" media-type="application/xml"/>' for i in range(sections)
    )
    spine = "".join(f'<opf:itemref idref="section{i}"/>' for i in range(sections))
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><odf:manifest xmlns:odf="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
    )
    if encrypted:
        manifest += (
            '<odf:file-entry odf:full-path="Contents/section0.xml" odf:media-type="application/xml">'
            '<odf:encryption-data odf:checksum-type="SHA1" odf:checksum="AAAA"><odf:algorithm '
            'odf:algorithm-name="AES"/></odf:encryption-data></odf:file-entry>'
        )
    manifest += "</odf:manifest>"
    members = {
        "version.xml": '<?xml version="1.0" encoding="UTF-8"?><hv:HCFVersion xmlns:hv="http://www.hancom.co.kr/hwpml/'
        '2011/version" tagetApplication="WORDPROCESSOR" major="5" minor="1" micro="1" buildNumber="0" '
        'xmlVersion="1.4"/>',
        "META-INF/container.xml": '<?xml version="1.0" encoding="UTF-8"?><ocf:container xmlns:ocf="urn:oasis:names:tc:'
        'opendocument:xmlns:container"><ocf:rootfiles><ocf:rootfile full-path="Contents/'
        'content.hpf" media-type="application/hwpml-package+xml"/></ocf:rootfiles>'
        "</ocf:container>",
        "META-INF/manifest.xml": manifest,
        "Contents/content.hpf": '<?xml version="1.0" encoding="UTF-8"?><opf:package xmlns:opf="http://www.idpf.org/'
        f'2007/opf/"><opf:manifest>{items}</opf:manifest><opf:spine>{spine}</opf:spine>'
        "</opf:package>",
    }
    for i, section in enumerate(per_section):
        body = "".join(_owpml_table(b) if isinstance(b, list) else _owpml_text(b) for b in section)
        members[f"Contents/section{i}.xml"] = f'<?xml version="1.0" encoding="UTF-8"?><hs:sec {_HWPX_NS}>{body}</hs:sec>'
    if section_xml is not None:
        members["Contents/section0.xml"] = section_xml
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/hwp+zip")  # stored, as the format asks
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def hwpx_bomb(size: int = 400 * 1024**2) -> bytes:
    """A valid HWPX whose section0.xml expands to `size` bytes (one huge paragraph)."""
    source = zipfile.ZipFile(io.BytesIO(hwpx(KO)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info in source.infolist():
            if info.filename != "Contents/section0.xml":
                archive.writestr(info, source.read(info))
                continue
            head, tail = source.read(info).split(b"</hp:t>", 1)
            bomb = zipfile.ZipInfo(info.filename)
            bomb.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(bomb, "w", force_zip64=True) as member:
                member.write(head)
                block = b"a" * (1 << 20)
                for _ in range(size // len(block)):
                    member.write(block)
                member.write(b"</hp:t>" + tail)
    return buf.getvalue()


def hwp_bomb(size: int = 200 * 1024**2) -> bytes:
    """The HWP fixture with its body section replaced by deflate data that expands to `size` bytes of zeros, the OLE
    container rewritten by hwpkit (an HWP 5.0 writer)."""
    import tempfile

    from hwpkit.cfb import dump, load
    from hwpkit.pipeline import section0_sid

    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b"\x00" * (1 << 20)
    data = b"".join(deflate.compress(block) for _ in range(size // len(block))) + deflate.flush()
    with tempfile.TemporaryDirectory() as folder:
        source, out = f"{folder}/source.hwp", f"{folder}/bomb.hwp"
        with open(source, "wb") as f:
            f.write(hwp_fixture(HWP_SOURCE))
        entries = load(source)
        dump(entries, out, target_sid_to_replace=section0_sid(entries), new_data=data)
        with open(out, "rb") as f:
            return f.read()


# --- PDF bills as a printer lays them out ------------------------------------------------------------------------------


def wrap_fixed(text: str, width: int) -> list[str]:
    """Lines of `width` characters, cut anywhere (Hangul typesetting breaks mid-word); a space at a break stays at
    the end of the line, as word processors hang it."""
    lines, pos = [], 0
    while pos < len(text):
        line = text[pos : pos + width]
        pos += width
        if pos < len(text) and text[pos] == " ":
            line += " "
            pos += 1
        lines.append(line)
    return lines


def pdf_bill(
    paragraphs: list[str],
    *,
    header: str,
    table: list[tuple[str, str]] = (),
    width: int = 34,
    lines_per_page: int = 30,
    cell_width: int = 18,
) -> bytes:
    """A bill printed as the National Assembly prints them: paragraphs hard-wrapped at a fixed width and flowed over
    pages (a page break may fall mid-sentence and mid-word), a running header on every page and "- N -" at its foot,
    then a two-column comparison table that is drawn a cell at a time, left column first, inside ruled boxes."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    font = "HYSMyeongJo-Medium"
    pdfmetrics.registerFont(UnicodeCIDFont(font))
    lines = [line for p in paragraphs for line in wrap_fixed(p, width)]
    pages = [lines[i : i + lines_per_page] for i in range(0, len(lines), lines_per_page)]
    buf = io.BytesIO()
    c = canvas.Canvas(buf)

    def furniture(number: int) -> None:
        c.setFont(font, 9)
        c.drawString(60, 805, header)
        c.drawCentredString(300, 30, f"- {number} -")
        c.setFont(font, 11)

    for number, page in enumerate(pages, start=1):
        furniture(number)
        for i, line in enumerate(page):
            c.drawString(60, 770 - 22 * i, line)
        c.showPage()
    if table:
        furniture(len(pages) + 1)
        y = 770
        for left, right in table:
            cells = [wrap_fixed(left, cell_width), wrap_fixed(right, cell_width)]
            height = 16 * max(map(len, cells))
            for column, cell in enumerate(cells):
                for i, line in enumerate(cell):
                    c.drawString(60 + 240 * column, y - 16 * i, line)
                c.rect(55 + 240 * column, y - height + 12, 240, height)
            y -= height + 4
        c.showPage()
    c.save()
    return buf.getvalue()
