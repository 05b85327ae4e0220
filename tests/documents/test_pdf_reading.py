"""PDF bills read as a reader sees them, through the real upload: no running headers or page numbers in the text or
its chunks, sentences and words that a page break split joined again, and a table's cells kept in their rows."""

from __future__ import annotations

import itertools
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import PASSWORD, SHARED_DATA
from tests.documents import files
from workbench.documents.models import Chunk, SourceDocument

BILLS = sorted((SHARED_DATA / "kobill").glob("*.txt"))
PAGE_NUMBER = re.compile(r"^-\s*\d+\s*-$")
TABLE = [
    ("현      행", "개   정   안"),
    ("제63조(휴직) ① (생 략)", "제63조(휴직) ① (현행과 같음)"),
    (
        "4. 만 6세 이하의 초등학교 취학 전 자녀를 양육하기 위하여",
        "4. 만 8세 이하(취학 중인 경우에는 초등학교 2학년 이하를 말한다)의 자녀를 양육하기 위하여",
    ),
]


def bill_paragraphs(path) -> list[str]:
    """The bill's prose as its author wrote it, up to its comparison table (which the PDF carries as a table of its
    own), read from the extracted copy by its layout: a paragraph starts on an indented line, page numbers and blank
    lines are dropped, and lines are joined as they were cut (a line that ends in a space ended a word)."""
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    paragraphs, current = [], ""
    for line in text.split("\n"):
        if "구조문대비표" in line.replace(" ", ""):
            break
        if not line.strip() or PAGE_NUMBER.match(line.strip()):
            continue
        if line.startswith("  ") and current:
            paragraphs.append(current)
            current = ""
        current += line
    paragraphs.append(current)
    return [p for p in (" ".join(p.split()) for p in paragraphs) if len(p) >= 20]


def upload(client, project, name, raw):
    client.login(username="owner", password=PASSWORD)
    response = client.post(f"/api/projects/{project.slug}/documents", {"files": [SimpleUploadedFile(name, raw)]})
    assert response.status_code == 200, response.json()
    return SourceDocument.objects.get(project=project, origin_filename=name)


@pytest.mark.parametrize("path", BILLS, ids=lambda p: p.name)
def test_pdf_bill_reads_without_page_furniture_and_with_pages_joined(client, project, path):
    paragraphs = bill_paragraphs(path)
    header = f"제18대 국회 의안 제{path.stem[-4:]}호"
    raw = files.pdf_bill(paragraphs, header=header, table=TABLE)
    doc = upload(client, project, path.stem + ".pdf", raw)
    lines = [line.strip() for line in doc.text.split("\n")]
    assert not [line for line in lines if PAGE_NUMBER.match(line) or header in line]
    # Every paragraph reads on, in order, over line and page breaks (spacing aside: the hard-wrap repair decides a
    # space at a break by the line's trailing space; the word split by a page break is checked exactly below).
    flat = "".join(doc.text.split())
    assert [p for p in paragraphs if "".join(p.split()) not in flat] == []
    chunks = list(Chunk.objects.filter(document=doc).values_list("text", flat=True))
    assert chunks and not [c for c in chunks if header in c or any(PAGE_NUMBER.match(line.strip()) for line in c.split("\n"))]


def test_pdf_table_cells_stay_in_their_rows(client, project):
    raw = files.pdf_bill(bill_paragraphs(BILLS[0]), header="제18대 국회 의안 제9890호", table=TABLE)
    doc = upload(client, project, "bill.pdf", raw)
    expected = []
    for left, right in TABLE:
        for a, b in itertools.zip_longest(files.wrap_fixed(left, 18), files.wrap_fixed(right, 18), fillvalue=""):
            expected.append(" | ".join(" ".join(cell.split()) for cell in (a, b) if cell.strip()))
    lines = [line.strip() for line in doc.text.split("\n")]
    assert lines[-len(expected) :] == expected


def test_a_word_split_by_a_page_break_is_whole_in_text_and_chunks(client, project):
    """1809896's "보완함으 / - 1 - / - 2 - / 로써": the PDF is laid out so that the page break falls inside the word."""
    path = SHARED_DATA / "kobill" / "1809896.txt"
    paragraphs = bill_paragraphs(path)
    for width in range(28, 44):  # the first wrap width that ends a line inside the word
        lines = [line for p in paragraphs for line in files.wrap_fixed(p, width)]
        breaks = [i for i, line in enumerate(lines) if line.endswith(("보완", "보완함", "보완함으", "보완함으로"))]
        if breaks:
            break
    assert breaks, "no wrap width splits the word"
    raw = files.pdf_bill(paragraphs, header="제18대 국회 의안 제9896호", width=width, lines_per_page=breaks[0] + 1)
    doc = upload(client, project, "1809896.pdf", raw)
    assert "보완함으로써" in doc.text
    assert any("보완함으로써" in c for c in Chunk.objects.filter(document=doc).values_list("text", flat=True))
