"""Every format and encoding imports into the same normalised text."""

from __future__ import annotations

import codecs
import unicodedata

import pytest

from tests.documents import files
from tests.documents.files import KO, KO2
from workbench.documents.importers import FieldMap
from workbench.documents.models import SourceDocument
from workbench.documents.services import documents_import


def run(project, *pairs, **kwargs):
    return documents_import(project=project, files=list(pairs), **kwargs)


def texts(project):
    return list(SourceDocument.objects.filter(project=project).order_by("id").values_list("text", flat=True))


@pytest.mark.parametrize(
    "name,raw",
    [
        ("plain.txt", KO.encode("utf-8")),
        ("bom.txt", codecs.BOM_UTF8 + KO.encode("utf-8")),
        ("utf16.txt", KO.encode("utf-16")),
        ("utf16be.txt", codecs.BOM_UTF16_BE + KO.encode("utf-16-be")),
        ("windows.txt", (KO + "\r\n" + KO2 + "\r\n").encode("cp949")),
        ("euckr.md", (KO + "\n\n" + KO2).encode("euc-kr")),
        ("mac.txt", files.nfd(KO).encode("utf-8")),
        ("crlf.md", (KO + "\r\n\r\n" + KO2).encode("utf-8")),
        ("control.txt", ("\x00" * 0 + KO + "\x07\x1b" + KO2).encode("utf-8")),
    ],
)
def test_text_encodings_are_decoded_and_normalised(project, name, raw):
    report = run(project, (name, raw))
    assert report.ok, report.as_dict()
    (text,) = texts(project)
    assert text.startswith(KO)
    assert unicodedata.is_normalized("NFC", text)
    assert "\r" not in text and "\x07" not in text and "\x1b" not in text and "\ufeff" not in text


def test_nfd_and_nfc_versions_are_one_document(project):
    run(project, ("a.txt", KO.encode()), ("b.txt", files.nfd(KO).encode()))
    assert SourceDocument.objects.filter(project=project).count() == 1


def test_markdown_title_from_heading(project):
    run(project, ("doc.md", f"# 헌법 전문\n\n{KO}".encode()))
    assert SourceDocument.objects.get(project=project).title == "헌법 전문"


def test_jsonl_records_with_metadata(project):
    raw = files.jsonl({"id": 7, "title": "제1조", "text": KO, "source": "law"}, {"id": "b", "text": KO2})
    report = run(project, ("laws.jsonl", raw))
    assert report.files[0].documents_created == 2
    doc = SourceDocument.objects.get(project=project, external_id="7")
    assert (doc.title, doc.metadata, doc.origin_locator) == ("제1조", {"source": "law"}, "line 1")


def test_json_list_and_configured_fields(project):
    data = f'[{{"premise": "{KO}", "guid": "x1"}}, {{"premise": "{KO2}", "guid": "x2"}}]'
    report = run(project, ("klue.json", data.encode()), fields=FieldMap(text="premise", id="guid"))
    assert report.ok and report.files[0].documents_created == 2
    assert set(SourceDocument.objects.values_list("external_id", flat=True)) == {"x1", "x2"}


def test_csv_by_column_in_cp949(project):
    raw = f'id,title,text\n1,첫째,"{KO}"\n2,둘째,{KO2}\n'.encode("cp949")
    report = run(project, ("sheet.csv", raw))
    assert report.ok, report.as_dict()
    assert set(SourceDocument.objects.values_list("title", flat=True)) == {"첫째", "둘째"}


def test_pdf_text_layer(project):
    report = run(project, ("bill.pdf", files.pdf("대한민국은 민주공화국이다.", "모든 권력은 국민으로부터 나온다.")))
    assert report.ok, report.as_dict()
    assert "대한민국은 민주공화국이다." in texts(project)[0]


def test_docx_paragraphs(project):
    report = run(project, ("memo.docx", files.docx(KO, KO2)))
    assert report.ok
    assert texts(project) == [f"{KO}\n\n{KO2}"]


def test_zip_of_formats(project):
    archive = files.zip_of(
        {
            "docs/a.txt": KO.encode(),
            "docs/b.jsonl": files.jsonl({"text": KO2}),
            "docs/c.docx": files.docx("세 번째 문서입니다."),
            "__MACOSX/docs/._a.txt": b"\x00\x05\x16\x07",
        }
    )
    report = run(project, ("bundle.zip", archive))
    assert report.ok, report.as_dict()
    assert report.files[0].documents_created == 3
    assert set(SourceDocument.objects.values_list("origin_filename", flat=True)) == {"docs/a.txt", "docs/b.jsonl", "docs/c.docx"}


def test_origin_name_size_and_hash_are_kept(project):
    import hashlib

    raw = KO.encode("cp949")
    run(project, ("old.txt", raw))
    doc = SourceDocument.objects.get(project=project)
    assert (doc.origin_filename, doc.origin_size, doc.origin_sha256) == ("old.txt", len(raw), hashlib.sha256(raw).hexdigest())


def test_reimport_creates_nothing_new(project):
    first = run(project, ("a.jsonl", files.jsonl({"text": KO}, {"text": KO2})))
    second = run(project, ("renamed.jsonl", files.jsonl({"text": KO2}, {"text": KO})))
    assert first.files[0].documents_created == 2
    assert (second.files[0].status, second.files[0].documents_created, second.files[0].documents_existing) == ("unchanged", 0, 2)
    assert SourceDocument.objects.filter(project=project).count() == 2


def test_same_text_in_two_projects_is_two_documents(project, owner):
    from tests.factories import make_project

    other = make_project(admins=[owner])
    run(project, ("a.txt", KO.encode()))
    run(other, ("a.txt", KO.encode()))
    assert SourceDocument.objects.count() == 2
